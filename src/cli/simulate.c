/* fsdpsim (no subcommand): simulate one training job and print what it costs. */
#include "cli.h"
#include "parallel.h"
#include "budget.h"
#include "figures.h"
#include "train.h"
#include "../coll/coll.h"
#include "../compact/compact.h"
#include "../core/sim.h"
#include "../hw/hw.h"
#include "../ir/ir.h"
#include "../kern/kern.h"
#include "../model/model.h"
#include "../report/report.h"
#include "../strategy/init.h"
#include "../strategy/strategy.h"
#include "../util/cfg.h"
#include "simulate_cache.h"
#include "../search/search.h"

#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "simulate_priv.h"


/* --max-memory's check of each program generated for a run that may be compact: a compact
 * one of `micro_batches`, or (0) the whole one where no compact one can run (CompactCheck). */
typedef struct {
    const Model *model;
    const HwTopology *topo;
    const StratOptions *opt;
    const StratLayout *layout;
    bool json_outputs;
    double limit;
} MemoryCheck;

static bool memory_check(void *ctx, int micro_batches, GError **error)
{
    const MemoryCheck *w = ctx;
    if (!w->model)
        return true;
    StratOptions sized = *w->opt;
    if (micro_batches > 0)
        sized.grad_accum = micro_batches;
    return cli_memory_check_run(w->model, w->topo, &sized, w->layout, w->json_outputs, w->limit,
                                w->opt->grad_accum, error);
}

/* With --schedule the report describes the run from the options (the generator's StratInfo), so
 * the options the file already fixes must be the file's: its meta against the meta of the
 * schedule the options generate. tp and pp absent mean 1, as the generators write them only
 * when above 1; model, topology and strategy are compared when the file names them. */
static bool schedule_options_agree(const char *file, const IrSchedule *sched,
                                   const IrSchedule *gen, GError **error)
{
    static const struct {
        const char *key, *option, *absent;
    } fixed[] = {{"tp", "--tp", "1"},
                 {"pp", "--pp", "1"},
                 {"pp_schedule", "--pp-schedule", NULL},
                 {"strategy", "--strategy/--sharding", NULL},
                 {"fsdp_version", "--fsdp-version", "1"},
                 {"model", "--model", NULL},
                 {"topology", "--topology", NULL}};
    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++) {
        const char *in_file = g_hash_table_lookup(sched->meta, fixed[i].key);
        const char *in_options = g_hash_table_lookup(gen->meta, fixed[i].key);
        if (!in_file && !fixed[i].absent)
            continue; /* a hand-written schedule that does not say */
        in_file = in_file ? in_file : fixed[i].absent;
        in_options = in_options ? in_options : (fixed[i].absent ? fixed[i].absent : "(none)");
        if (strcmp(in_file, in_options) != 0) {
            cfg_set_error(error, file, "meta", fixed[i].key,
                          "the schedule has \"%s\", the options give \"%s\"; options that "
                          "a --schedule file fixes must agree with it: expected option %s to "
                          "give \"%s\"",
                          in_file, in_options, fixed[i].option, in_file);
            return false;
        }
    }
    /* A schedule fsdpsim wrote (its meta names the strategy) must be the one the options
     * generate, op for op: the report's tokens, FLOPs and units come from the options, and a
     * file made with --grad-accum 8 reported without it gave 8 times too few tokens per second.
     * A hand-written or edited schedule (no meta.strategy) is simulated as it is, described by
     * the options. */
    if (!g_hash_table_lookup(sched->meta, "strategy"))
        return true;
    char *where = ir_schedule_diff(sched, gen);
    if (where && sched->version < IR_VERSION) {
        /* an older fsdpsim's file: its kernels may be what that version generated (version 6
         * marks misaligned GEMMs), so the options are not to blame */
        cfg_set_error(error, file, "", "version",
                      "the schedule (version %d) is not the one these options generate with "
                      "this fsdpsim (version %d schedules; %s); an older fsdpsim wrote it, "
                      "whose kernels may differ: expected a schedule written again with "
                      "--emit-schedule (and the options it was made with), or no meta.strategy "
                      "to simulate it as it is",
                      sched->version, IR_VERSION, where);
        g_free(where);
        return false;
    }
    if (where) {
        cfg_set_error(error, file, "", "classes",
                      "the schedule is not the one the options generate (%s); expected the "
                      "options it was made with (--grad-accum, --micro-batches, --seq-len, "
                      "--micro-batch, --wrap, --attention, ...), or no meta.strategy for a "
                      "schedule edited by hand",
                      where);
        g_free(where);
        return false;
    }
    return true;
}

static int run_point(CliOptions *cli, CliSimPoint *point, GError **error);

static int run(CliOptions *cli, GError **error)
{
    return run_point(cli, NULL, error);
}

/* point NULL: the command line (files loaded here, the summary or --json printed); otherwise
 * files come from point->cache and the --json object (or the bound) is left in point->result. */
static int run_point(CliOptions *cli, CliSimPoint *point, GError **error)
{
    g_autofree char *model_default = cli_default_path("models/gpt.json");
    g_autofree char *topo_default = cli_default_path("topologies/juwels-booster.json");
    g_autofree char *model_named = NULL, *topo_named = NULL; /* -m llama3-8b, -t jusuf */
    if ((cli->model && !cli_data_file("model", "models", cli->model, &model_named, error)) ||
        (cli->topology &&
         !cli_data_file("topology", "topologies", cli->topology, &topo_named, error)))
        return 2;
    const char *model_file = model_named ? model_named : model_default;
    const char *topo_file = topo_named ? topo_named : topo_default;
    if (!cli_check_writable("trace", cli->trace, error) ||
        !cli_check_writable("emit-schedule", cli->emit_schedule, error) ||
        !cli_figures_check(cli->plot, cli->report, cli->plot_format, error))
        return 2;
    /* The integer options start as UNSET so that an explicit 0 is an error, not the default. */
    struct {
        const char *name;
        int *v;
    } given[] = {{"nodes", &cli->nodes},
                 {"gpus-per-node", &cli->gpus_per_node},
                 {"seq-len", &cli->seq_len},
                 {"micro-batch", &cli->micro_batch},
                 {"grad-accum", &cli->grad_accum},
                 {"checkpoint-every", &cli->checkpoint_every}};
    for (size_t i = 0; i < G_N_ELEMENTS(given); i++) {
        if (*given[i].v == UNSET)
            *given[i].v =
                0; /* 0 from here on: take the model's, the topology's or the built-in default */
        else if (*given[i].v < 1)
            return cfg_input_error(error, "option --%s: expected a positive number, got %d",
                                   given[i].name, *given[i].v),
                   2;
    }
    if (cli->seq_len < 0 || cli->seq_len > (1 << 22))
        return cfg_input_error(error, "option --seq-len: expected 1..4194304, got %d",
                               cli->seq_len),
               2;
    if (cli->micro_batch < 0 || cli->micro_batch > (1 << 20))
        return cfg_input_error(error, "option --micro-batch: expected 1..1048576, got %d",
                               cli->micro_batch),
               2;
    int flash = cli->no_flash_attention ? 0 : -1;
    ModelAttnKernel kernel = MODEL_ATTN_FLASH2;
    if (cli->attention) {
        if (g_ascii_strcasecmp(cli->attention, "eager") == 0)
            flash = 0;
        else if (model_attention_kernel_parse(cli->attention, &kernel))
            flash = 1;
        else
            return cfg_input_error(error, "option --attention: expected flash, flash1, triton or "
                                          "eager, got \"%s\"%s",
                                   cli->attention,
                                   cli_did_you_mean(cli->attention,
                                                    (const char *const[]){"flash", "flash1", "triton",
                                                                          "eager", NULL})),
                   2;
        if (cli->no_flash_attention && flash != 0)
            return cfg_input_error(error, "options --no-flash-attention and --attention %s disagree",
                                   cli->attention),
                   2;
    }
    ModelLossImpl loss = MODEL_LOSS_HF;
    if (cli->loss_impl && !model_loss_impl_parse(cli->loss_impl, &loss))
        return cfg_input_error(error, "option --loss-impl: expected hf, fused, fused-inplace, "
                                      "megatron, liger or torchtitan, got \"%s\"%s",
                               cli->loss_impl,
                               cli_did_you_mean(cli->loss_impl,
                                                (const char *const[]){"hf", "fused", "fused-inplace",
                                                                      "megatron", "liger", "torchtitan",
                                                                      NULL})),
               2;
    ModelOverrides ov = {cli->seq_len,       cli->micro_batch, cli->param_dtype, cli->optimizer,
                         flash,              kernel,           cli->compile,     loss};
    HwTopology *topo = point ? cli_sim_cache_topology(point->cache, topo_file, error)
                             : hw_topology_load(topo_file, error);
    if (!topo)
        return 2;
    Model *model = NULL;
    IrSchedule *sched = NULL;
    CompactPlan plan = {0};   /* a compact schedule's left-out ops (src/compact) */
    MemoryCheck mcheck = {0}; /* --max-memory for each program generated (compact_generate) */
    SimResult *sim = NULL;
    StratInfo info = {0};
    StratOptions opt = {0};
    int status = 2;
    int gpn = cli->gpus_per_node > 0 ? cli->gpus_per_node : topo->gpus_per_node;
    int nodes = cli->nodes > 0 ? cli->nodes : 4;
    if (cli->nodes < 0 || nodes > topo->nodes_max) {
        cfg_input_error(error, "option --nodes: %s has %d nodes; expected 1..%d, got %d",
                        topo->name, topo->nodes_max, topo->nodes_max, nodes);
        goto out;
    }
    if (cli->gpus_per_node < 0 || gpn > topo->gpus_per_node) {
        cfg_input_error(error,
                        "option --gpus-per-node: a %s node has %d GPUs; expected 1..%d, got %d",
                        topo->name, topo->gpus_per_node, topo->gpus_per_node, cli->gpus_per_node);
        goto out;
    }
    double memory_limit = 0;
    if (!cli_memory_limit(cli->max_memory, &memory_limit, error))
        goto out;
    /* outputs of the whole program; of them only a --report folder holds per-op data in memory
     * (its figures; the JSON files are streamed: budget.c) */
    bool json_outputs = cli->trace || cli->emit_schedule || cli->report;
    bool json_in_memory = cli->report;
    if (point) { /* in process: the cache's copy of the model, loaded once */
        model = cli_sim_cache_model(point->cache, model_file, &ov, error);
        if (!model || !cli_make_options(cli, model, &opt, error))
            goto out;
        goto model_ready;
    }
    model = model_load(model_file, &ov, error);
    if (model && model->note)
        g_printerr("fsdpsim: note: %s\n", model->note); /* once, on stderr: stdout stays the report */
    if (!model || !cli_make_options(cli, model, &opt, error))
        goto out;
model_ready:
    if (opt.fp8_format != STRAT_FP8_OFF) {
        if (!(topo->gpu.peak_flops[HW_DTYPE_FP8] > 0)) {
            cfg_input_error(error,
                            "option --fp8-format: the GPU of %s (%s) has no fp8 tensor cores; "
                            "expected a Hopper GPU or later (a topology with "
                            "gpu.peak_tflops_fp8), or no --fp8-format",
                            topo->name, topo->gpu.name);
            goto out;
        }
        int fp8_leaves = 0;
        for (int i = 0; i < model->n_modules; i++)
            fp8_leaves += strat_fp8_leaf(model, i);
        if (fp8_leaves == 0) {
            cfg_input_error(error,
                            "option --fp8-format: %s has no linear layer inside a transformer "
                            "block (Transformer Engine's fp8 runs those; convolutions and heads "
                            "stay in %s); expected a transformer model, or no --fp8-format",
                            model_file, hw_dtype_name(opt.param_dtype));
            goto out;
        }
    }
    strat_memory_format_apply(model, topo, &opt);
    cli->par.grad_accum = cli->grad_accum;
    cli->par.wrap = cli->wrap;
    if (!cli_parallel_options(&cli->par, model, gpn, &opt, error) ||
        !cli_lora_options(&cli->train, model, &opt, error))
        goto out;
    if (opt.ep > 1 && (opt.fsdp_version == 2 || model->frozen_params > 0)) {
        cfg_input_error(error, "option --ep is modelled with FSDP1 and all parameters trained; "
                               "expected no --fsdp-version 2 and no --lora-rank with it");
        goto out;
    }
    StratLayout layout;
    if (!strat_layout_make(&opt, nodes, gpn, &layout, error))
        goto out;
    ReportTrainOptions train;
    /* a search's --tokens: the time to train them as `fsdpsim --tokens` reckons it (checkpoints,
     * restarts, 24 h jobs: src/report/train.c), where the machine states its file system and
     * the point's own options ask no other length (cli is the point's copy, cli_sim_run) */
    char *search_tokens = NULL;
    if (point && point->train_tokens > 0 && point->train_tokens <= 1e18 && !cli->train.tokens &&
        !cli->train.steps && model->token_input && topo->storage_write_Bps > 0)
        cli->train.tokens = search_tokens = g_strdup_printf("%.0f", point->train_tokens);
    bool train_ok = cli_train_options(&cli->train, model, topo, &train, error);
    if (search_tokens)
        cli->train.tokens = NULL, g_free(search_tokens);
    if (!train_ok)
        goto out;
    CollModel coll;
    coll_model_analytic_init(&coll, topo);
    if (cli->nccl_algo && coll_algo_parse(cli->nccl_algo, &coll.force_algo) &&
        (coll.force_algo == COLL_ALGO_NVLS || coll.force_algo == COLL_ALGO_NVLS_TREE) &&
        !coll_topology_has_nvls(topo)) {
        cfg_input_error(error,
                        "option --nccl-algo: %s needs NVLink SHARP (Hopper or later, node.nvls in "
                        "the topology), which %s does not have; expected ring or tree",
                        cli->nccl_algo, topo->name);
        goto out;
    }
    if (cli->nccl_algo && coll_algo_parse(cli->nccl_algo, &coll.force_algo) &&
        (coll.force_algo == COLL_ALGO_COLLNET_DIRECT ||
         coll.force_algo == COLL_ALGO_COLLNET_CHAIN) &&
        !coll_topology_has_sharp(topo)) {
        cfg_input_error(error,
                        "option --nccl-algo: %s needs SHARP in the InfiniBand switches "
                        "(network.sharp in the topology), which %s does not state; expected ring "
                        "or tree",
                        cli->nccl_algo, topo->name);
        goto out;
    }
    if (cli->nccl_algo && !coll_algo_parse(cli->nccl_algo, &coll.force_algo)) {
        cfg_input_error(error,
                        "option --nccl-algo: expected ring, tree, nvls, nvlstree, pat, "
                        "collnetdirect or collnetchain, got \"%s\"%s",
                        cli->nccl_algo,
                        cli_did_you_mean(cli->nccl_algo,
                                         (const char *const[]){"ring", "tree", "nvls", "nvlstree",
                                                               "pat", "collnetdirect",
                                                               "collnetchain", NULL}));
        goto out;
    }
    if (cli->nccl_proto && !coll_proto_parse(cli->nccl_proto, &coll.force_proto)) {
        cfg_input_error(error, "option --nccl-proto: expected LL, LL128 or Simple, got \"%s\"%s",
                        cli->nccl_proto,
                        cli_did_you_mean(cli->nccl_proto,
                                         (const char *const[]){"LL", "LL128", "Simple", NULL}));
        goto out;
    }
    if (!cli_nccl_version(cli->nccl_version, &coll.nccl_version, error))
        goto out;
    /* fsdpsim search's first rung: the analytic bounds, before any schedule is made */
    if (point && point->fidelity == CLI_SIM_BOUND) {
        point->result = search_bound_json(model, topo, &opt, &layout);
        status = 0;
        goto out;
    }
    if (cli->schedule) {
        sched = cli_memory_check_file(cli->schedule, memory_limit, error)
                    ? ir_schedule_read(cli->schedule, error)
                    : NULL;
        if (!sched || !cli_memory_check_ops(cli_schedule_ops(sched), json_in_memory, memory_limit,
                                            cli->schedule, error))
            goto out;
        if (!(topo->gpu.peak_flops[HW_DTYPE_FP8] > 0) &&
            kern_schedule_has_dtype(sched, HW_DTYPE_FP8)) {
            cfg_input_error(
                error,
                "%s: field 'kernel_lists': the schedule has fp8 GEMMs (--fp8-format) and "
                "the GPU of %s (%s) has no fp8 tensor cores; expected a Hopper GPU or "
                "later (gpu.peak_tflops_fp8)",
                cli->schedule, topo->name, topo->gpu.name);
            goto out;
        }
        /* ops that say what their kernels are (version 3) are costed for this GPU */
        kern_schedule_retime(sched, &topo->gpu);
        if (sched->gpus_per_node != gpn || sched->nodes != nodes) {
            cfg_input_error(error,
                            "%s: field 'nodes'/'gpus_per_node': the schedule is for %d x %d GPUs; "
                            "pass --nodes %d --gpus-per-node %d",
                            cli->schedule, sched->nodes, sched->gpus_per_node, sched->nodes,
                            sched->gpus_per_node);
            goto out;
        }
        /* the report needs the generator's view of the layout, which must be the file's */
        IrSchedule *gen = strat_generate(model, topo, &opt, &layout, &info, error);
        bool same = gen && schedule_options_agree(cli->schedule, sched, gen, error);
        ir_schedule_free(gen);
        if (!same)
            goto out;
    } else {
        /* compact (src/compact) unless an output lists every op with its name; --max-memory
         * sizes the program made: the compact one, and the whole one if it must run instead */
        bool try_compact = !json_outputs && !cli->plot && compact_applies(&opt, &layout);
        mcheck = (MemoryCheck){model, topo, &opt, &layout, json_in_memory, memory_limit};
        if (!try_compact && !memory_check(&mcheck, 0, error))
            goto out;
        sched = compact_generate(model, topo, &opt, &layout, try_compact, &info, &plan,
                                 memory_check, &mcheck, error);
        if (!sched)
            goto out;
    }
    if (!cli_check_op_times(sched, topo, cli->schedule ? cli->schedule : model_file, error))
        goto out;
    NetTopo *net = net_topo_new(topo, nodes, gpn);
    SimConfig cfg = {topo, &coll, net};
    sim = compact_run(model, topo, &opt, &layout, &cfg, &sched, &info, &plan, memory_check, &mcheck,
                      error);
    net_topo_free(net);
    if (!sim)
        goto out;
    /* after the simulation: a schedule that cannot run is not written */
    if (cli->emit_schedule && !ir_schedule_write(sched, cli->emit_schedule, error))
        goto out;
    InitEstimate init;
    strat_init_estimate(model, topo, &coll, &opt, &layout, &info, &init);
    Report rep = {.model = model,
                  .topo = topo,
                  .opt = &opt,
                  .info = &info,
                  .sched = sched,
                  .sim = sim,
                  .init = &init,
                  .train_opt = &train};
    /* a search's points read the band file once, through their cache */
    if (!cli_sim_cache_band(point ? point->cache : NULL, report_band_family(&opt, &layout),
                            topo->gpu.name, &rep.band, error))
        goto out;
    report_build(&rep);
    /* the files first (each written whole, to a temporary file renamed into place), the
     * summary last: a run that fails writing prints nothing */
    if (cli->trace) {
        if (!report_trace_save(cli->trace, sched, sim, topo, error)) {
            g_prefix_error(error, "option --trace: ");
            report_clear(&rep);
            goto out;
        }
    }
    if (!cli_figures_write(cli->plot, cli->report, cli->plot_format, cli->command, &rep,
                           error)) {
        report_clear(&rep);
        goto out;
    }
    if (point) {
        /* printed and parsed back on purpose: cJSON prints 15 significant digits where they
         * are within DBL_EPSILON of the value, so a search's records in memory are then the ones
         * its --out file holds, and a fresh search prints what --resume and --merge print (the
         * unprinted object differed in the last digit of objectives and of the CSV). Costs a
         * print and a parse of ~4 KB per simulated point: libcjson is 0.7 % of the CPU samples
         * of the Llama-2 search of tests/bench/bench_search.sh (perf). */
        char *text = report_to_json(&rep);
        point->result = cJSON_Parse(text);
        cJSON_free(text);
    } else if (cli->json) {
        char *text = report_to_json(&rep);
        printf("%s\n", text);
        cJSON_free(text);
    } else {
        report_print_summary(&rep, stdout);
    }
    report_clear(&rep);
    status = 0;
out:
    compact_plan_clear(&plan);
    g_free(opt.pp_partition);
    strat_info_clear(&info);
    sim_result_free(sim);
    ir_schedule_free(sched);
    if (!point) {
        model_free(model);
        hw_topology_free(topo);
    } else
        cli_sim_cache_model_release(model);
    return status;
}

static int simulate_main(int argc, char **argv, CliSimPoint *point);

int cli_simulate(int argc, char **argv)
{
    return simulate_main(argc, argv, NULL);
}

struct CliSimOptions {
    CliOptions cli;
};

static void options_clear(CliOptions *cli);

CliSimOptions *cli_sim_options_parse(int argc, char **argv, GError **error)
{
    CliSimOptions *o = NULL;
    CliSimPoint point = {.fidelity = CLI_SIM_PARSE, .parsed = &o};
    simulate_main(argc, argv, &point);
    if (point.error) {
        g_propagate_error(error, point.error);
        return NULL;
    }
    return o;
}

void cli_sim_options_free(CliSimOptions *o)
{
    if (!o)
        return;
    options_clear(&o->cli);
    g_free(o);
}

bool cli_sim_run(CliSimCache *cache, const CliSimOptions *o, CliSimFidelity fidelity,
                 int grad_accum, double train_tokens, cJSON **result, GError **error)
{
    /* run_point settles the options it reads (UNSET to 0, the parallel options): on a copy,
     * so that a point's bound and simulation start from the same parse. The strings stay
     * o's. */
    CliOptions cli = o->cli;
    if (grad_accum > 0)
        cli.grad_accum = grad_accum;
    CliSimPoint point = {.cache = cache, .fidelity = fidelity, .train_tokens = train_tokens};
    int status = run_point(&cli, &point, error);
    *result = point.result;
    return status == 0;
}

/* point NULL: the command line; otherwise argv is parsed in process, nothing is printed, and
 * the options (point->parsed) or the error (point->error) go to the caller. */
/* --cuda-launch-blocking takes CUDA_LAUNCH_BLOCKING's values too (=1, =0). GOption takes a flag
 * given a value for the flag alone ("--cuda-launch-blocking=0" would set it: the opposite of
 * what the variable means), so the values are read here, before it parses; the last one given
 * counts (*value: -1 none, 0, 1). Other values are an input error. O(arguments). */
static bool launch_blocking_scan(int argc, char **argv, int *value, GError **error)
{
    static const char flag[] = "--cuda-launch-blocking";
    *value = -1;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strncmp(argv[i], flag, sizeof flag - 1) != 0)
            continue;
        const char *v = argv[i] + sizeof flag - 1;
        if (*v == '\0')
            *value = 1;
        else if (strcmp(v, "=1") == 0 || strcmp(v, "=0") == 0)
            *value = v[1] - '0';
        else if (*v == '=')
            return cfg_input_error(error,
                                   "option --cuda-launch-blocking: expected 1 or 0 (the values "
                                   "of CUDA_LAUNCH_BLOCKING) or no value, got \"%s\"",
                                   v + 1);
    }
    return true;
}

static int simulate_main(int argc, char **argv, CliSimPoint *point)
{
    CliOptions cli = {
        .nodes = UNSET,
        .gpus_per_node = UNSET,
        .seq_len = UNSET,
        .micro_batch = UNSET,
        .grad_accum = UNSET,
        .shard_group_size = UNSET,
        .checkpoint_every = UNSET,
        .omp_num_threads = UNSET,
        .par = {.tp = UNSET, .pp = UNSET, .micro_batches = UNSET, .virtual_stages = UNSET,
                .ep = UNSET},
        .train = {.save_every = UNSET, .lora_rank = UNSET},
        .fsdp_version = UNSET};
    GOptionEntry entries[] = {
        {"model", 'm', 0, G_OPTION_ARG_FILENAME, &cli.model,
         "Model: a Hugging Face config.json, an fsdpsim layer list, or a shipped model's name "
         "(fsdpsim list models) [models/gpt.json]",
         "FILE|NAME"},
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &cli.topology,
         "Machine description: a file or a shipped topology's name, e.g. jusuf (fsdpsim list "
         "topologies) [topologies/juwels-booster.json]",
         "FILE|NAME"},
        {"nodes", 'n', 0, G_OPTION_ARG_INT, &cli.nodes, "Number of nodes [4]", "N"},
        {"gpus-per-node", 'g', 0, G_OPTION_ARG_INT, &cli.gpus_per_node,
         "GPUs used per node [all of the node's]", "G"},
        {"strategy", 's', 0, G_OPTION_ARG_STRING, &cli.strategy,
         "ddp, zero1 (optimizer state sharded, parameters and gradients replicated), fsdp, or an "
         "FSDP sharding shorthand: full, grad_op, no_shard, hybrid, hybrid_zero2 [fsdp]",
         "S"},
        {"sharding", 0, 0, G_OPTION_ARG_STRING, &cli.sharding,
         "FSDP ShardingStrategy: full_shard, shard_grad_op, no_shard, hybrid_shard, hybrid_zero2 "
         "[full_shard]",
         "S"},
        {"wrap", 'w', 0, G_OPTION_ARG_STRING, &cli.wrap,
         "FSDP auto-wrap policy: transformer, size:MIN_PARAMS (size_based_auto_wrap_policy), none "
         "[transformer]",
         "POLICY"},
        {"fsdp-version", 0, 0, G_OPTION_ARG_INT, &cli.fsdp_version,
         "1: FullyShardedDataParallel (FlatParameter); 2: fully_shard (per-parameter DTensor "
         "shards) [1]",
         "V"},
        {"reshard-after-forward", 0, 0, G_OPTION_ARG_STRING, &cli.reshard_after_forward,
         "fully_shard: true, false, or N GPUs to reshard to between forward and backward [true "
         "for full and hybrid, false for grad_op and hybrid_zero2]",
         "R"},
        {"backward-prefetch", 0, 0, G_OPTION_ARG_STRING, &cli.backward_prefetch,
         "FSDP BackwardPrefetch: pre, post, none; --fsdp-version 2 has none and ignores it [pre]",
         "P"},
        {"forward-prefetch", 0, 0, G_OPTION_ARG_NONE, &cli.forward_prefetch,
         "FSDP forward_prefetch=True [off]", NULL},
        {"limit-all-gathers", 0, 0, G_OPTION_ARG_STRING, &cli.limit_all_gathers,
         "FSDP rate limiter, at most 2 all-gathers in flight [true]", "BOOL"},
        {"shard-group-size", 0, 0, G_OPTION_ARG_INT, &cli.shard_group_size,
         "hybrid: GPUs per shard group [GPUs per node]", "N"},
        {"param-dtype", 0, 0, G_OPTION_ARG_STRING, &cli.param_dtype,
         "MixedPrecision param_dtype (autocast dtype for DDP): bf16, fp16, fp32 [the model file's, "
         "bf16]",
         "DTYPE"},
        {"reduce-dtype", 0, 0, G_OPTION_ARG_STRING, &cli.reduce_dtype,
         "MixedPrecision reduce_dtype [param dtype for FSDP, fp32 for DDP]", "DTYPE"},
        {"no-mixed-precision", 0, 0, G_OPTION_ARG_NONE, &cli.mixed_precision_off, "Train in fp32",
         NULL},
        {"cpu-offload", 0, 0, G_OPTION_ARG_NONE, &cli.cpu_offload,
         "FSDP CPUOffload(offload_params=True): shards and optimizer on the CPU [off]", NULL},
        {"offload-optimizer", 0, 0, G_OPTION_ARG_STRING, &cli.offload_optimizer,
         "none or cpu: DeepSpeed's offload_optimizer (ZeRO-Offload) on full_shard (ZeRO-3) or "
         "shard_grad_op (ZeRO-2): parameter shards stay on the GPU, each gradient shard goes to "
         "the host, DeepSpeedCPUAdam steps there, the updated shard comes back [none]",
         "DEVICE"},
        {"overlap-grad-reduce", 0, 0, G_OPTION_ARG_NONE, &cli.overlap_grad_reduce,
         "DDP with --tp/--pp: Megatron-Core's --overlap-grad-reduce (gradient buckets all-reduced "
         "during the last micro-batch's backward) [off: after it]",
         NULL},
        {"use-distributed-optimizer", 0, 0, G_OPTION_ARG_NONE, &cli.distributed_optimizer,
         "DDP with --tp/--pp: Megatron's distributed optimizer (ZeRO-1): gradients "
         "reduce-scattered, master weights and optimizer state sharded, parameters all-gathered "
         "[off]",
         NULL},
        {"overlap-param-gather", 0, 0, G_OPTION_ARG_NONE, &cli.overlap_param_gather,
         "With --use-distributed-optimizer: the parameter all-gather overlaps the next forward "
         "[off: after the optimizer step]",
         NULL},
        {"tp-comm-overlap", 0, 0, G_OPTION_ARG_NONE, &cli.tp_comm_overlap,
         "Megatron's --tp-comm-overlap: with --tp and --sequence-parallel, each layer's all-gathers "
         "and reduce-scatters pipelined with its GEMMs [off: blocking]",
         NULL},
        {"cuda-launch-blocking", 0, 0, G_OPTION_ARG_NONE, &cli.cuda_launch_blocking,
         "As with CUDA_LAUNCH_BLOCKING=1: every kernel launch, NCCL's included, returns when the "
         "kernel has finished, so the host never runs ahead of its GPU and pays each launch "
         "before each kernel; =1 and =0 as the variable's values [off]",
         NULL},
        {"compile", 0, 0, G_OPTION_ARG_NONE, &cli.compile,
         "torch.compile: each chain of elementwise kernels fused into one (fewer launches, less "
         "HBM traffic) [off]",
         NULL},
        {"memory-format", 0, 0, G_OPTION_ARG_STRING, &cli.memory_format,
         "channels_last or contiguous (torch.channels_last, torch.contiguous_format): with "
         "contiguous (NCHW) tensors cuDNN transposes around every tensor-core convolution "
         "[contiguous, PyTorch's default]",
         "FORMAT"},
        {"allow-tf32", 0, 0, G_OPTION_ARG_NONE, &cli.allow_tf32,
         "fp32 matmuls on TF32 tensor cores (torch.backends.cuda.matmul.allow_tf32 = True); "
         "convolutions use TF32 anyway, as cuDNN does by default [off]",
         NULL},
        {"fp8-format", 0, 0, G_OPTION_ARG_STRING, &cli.fp8_format,
         "hybrid or e4m3 (Megatron-LM's --fp8-format; Transformer Engine's DelayedScaling "
         "fp8_format): the transformer blocks' linear layers (QKV, attention output, MLP) run "
         "their GEMMs in fp8, with Transformer Engine's casts; attention, embeddings, the LM head "
         "and norms stay in param_dtype. Needs a GPU with fp8 (Hopper: gpu.peak_tflops_fp8) "
         "[off]",
         "FORMAT"},
        {"activation-checkpointing", 0, 0, G_OPTION_ARG_NONE, &cli.activation_checkpointing,
         "Checkpoint every block (decoder layer, Bottleneck) [off]", NULL},
        {"checkpoint-every", 0, 0, G_OPTION_ARG_INT, &cli.checkpoint_every,
         "Selective checkpointing: every K-th block only, counted from 1 as torchtitan's ac_freq "
         "does (fms-fsdp's fraction 1/K checkpoints as many); implies --activation-checkpointing [1]",
         "K"},
        {"recompute-granularity", 0, 0, G_OPTION_ARG_STRING, &cli.recompute_granularity,
         "Megatron's recompute granularity: full (as --activation-checkpointing) or selective "
         "(each attention core keeps only Q, K, V and runs its forward again in backward; "
         "Korthikanti et al. 2022) [off]",
         "GRANULARITY"},
        {"bucket-cap-mb", 0, 0, G_OPTION_ARG_STRING, &cli.bucket_cap_mb,
         "DDP bucket_cap_mb; given, it caps the first bucket too, as PyTorch 2.3+ does [25, the "
         "first bucket 1 MiB]",
         "MB"},
        {"gradient-as-bucket-view", 0, 0, G_OPTION_ARG_NONE, &cli.gradient_as_bucket_view,
         "DDP gradient_as_bucket_view=True [off]", NULL},
        {"seq-len", 0, 0, G_OPTION_ARG_INT, &cli.seq_len, "Tokens per sequence [the model file's]",
         "N"},
        {"micro-batch", 'b', 0, G_OPTION_ARG_INT, &cli.micro_batch,
         "Samples per GPU per micro-step [the model file's]", "N"},
        {"grad-accum", 0, 0, G_OPTION_ARG_INT, &cli.grad_accum,
         "Micro-batches per optimizer step [1]", "N"},
        {"optimizer", 0, 0, G_OPTION_ARG_STRING, &cli.optimizer,
         "adamw, adam, sgd, sgd_momentum [the model file's, adamw]", "OPT"},
        {"optimizer-impl", 0, 0, G_OPTION_ARG_STRING, &cli.optimizer_impl,
         "foreach, fused or forloop: torch.optim's implementation (foreach=True, fused=True, "
         "foreach=False) [foreach; fused with Megatron's options]",
         "IMPL"},
        {"omp-num-threads", 0, 0, G_OPTION_ARG_INT, &cli.omp_num_threads,
         "With --cpu-offload or --offload-optimizer cpu: OMP_NUM_THREADS of each rank, the "
         "threads of the CPU optimizer step [as torchrun sets it: 1 with several GPUs per node, "
         "else the node's cores]",
         "N"},
        {"attention", 0, 0, G_OPTION_ARG_STRING, &cli.attention,
         "flash (FlashAttention-2 kernels, as SDPA), flash1 (FlashAttention v1, flash-attn < 2.0), "
         "triton (FlashAttention's Triton kernel, MPT's attn_impl=triton) or eager (matmul, "
         "softmax, matmul) [flash, or the model file's]",
         "IMPL"},
        {"no-flash-attention", 0, 0, G_OPTION_ARG_NONE, &cli.no_flash_attention,
         "Attention keeps its score matrix (eager attention) [flash]", NULL},
        {"loss-impl", 0, 0, G_OPTION_ARG_STRING, &cli.loss_impl,
         "Whose cross-entropy loss, for what it keeps for backward: hf (transformers' "
         "ForCausalLMLoss: fp32 log-softmax), fused (flash-attn's CrossEntropyLoss, llm-foundry's "
         "fused_crossentropy), fused-inplace (the same with inplace_backward=True), megatron "
         "(vocab_parallel_cross_entropy), liger (LigerFusedLinearCrossEntropyLoss) or torchtitan "
         "(F.cross_entropy on fp32 logits deleted before backward) [hf]",
         "IMPL"},
        {"tp", 0, 0, G_OPTION_ARG_INT, &cli.par.tp,
         "Megatron tensor parallelism: GPUs per TP group, inside a node by default [1]", "T"},
        {"pp", 0, 0, G_OPTION_ARG_INT, &cli.par.pp, "Pipeline parallelism: stages [1]", "P"},
        {"ep", 0, 0, G_OPTION_ARG_INT, &cli.par.ep,
         "Expert parallelism (MoE models, FSDP): GPUs each layer's experts are spread over, with "
         "all-to-all dispatch and combine [1]",
         "E"},
        {"moe-imbalance", 0, 0, G_OPTION_ARG_DOUBLE, &cli.par.moe_imbalance,
         "With --ep: tokens the busiest GPU's experts get, over the mean (load imbalance; it paces "
         "the all-to-alls and the expert GEMMs) [1]",
         "F"},
        {"micro-batches", 0, 0, G_OPTION_ARG_INT, &cli.par.micro_batches,
         "Micro-batches per step (same as --grad-accum) [4 x pp with --pp, else 1]", "M"},
        {"pp-schedule", 0, 0, G_OPTION_ARG_STRING, &cli.par.pp_schedule,
         "gpipe, 1f1b (PipeDream-Flush), interleaved (Megatron's interleaved 1F1B) [1f1b]", "S"},
        {"virtual-stages", 0, 0, G_OPTION_ARG_INT, &cli.par.virtual_stages,
         "Model chunks per rank for the interleaved schedule [1]", "V"},
        {"pp-partition", 0, 0, G_OPTION_ARG_STRING, &cli.par.pp_partition,
         "Decoder layers per (virtual) stage, e.g. 10,12,12,14 [balanced]", "LIST"},
        {"sequence-parallel", 0, 0, G_OPTION_ARG_NONE, &cli.par.sequence_parallel,
         "Megatron sequence parallelism with --tp [off]", NULL},
        {"pp-scatter-gather", 0, 0, G_OPTION_ARG_STRING, &cli.par.pp_scatter_gather,
         "megatron: each TP rank sends 1/tp of a stage boundary and the receiver all-gathers it "
         "(Megatron-LM v2.5-v2.6's default); deepspeed: that, and each stage all-gathers its own "
         "output again before its backward (DeepSpeed's pipeline engine with TP, which also adds "
         "each micro-batch's gradients outside the GEMMs: BF16_Optimizer's fp32 ones in bf16 "
         "with fp32 gradients, autograd's otherwise) [off]",
         "MODE"},
        {"placement", 0, 0, G_OPTION_ARG_STRING, &cli.par.placement,
         "Rank order of tp, pp, dp, fastest first [tp-dp-pp, Megatron's]", "ORDER"},
        {"nccl-algo", 0, 0, G_OPTION_ARG_STRING, &cli.nccl_algo,
         "Force NCCL's algorithm like NCCL_ALGO: ring, tree, nvls, nvlstree, pat [NCCL's choice]",
         "ALGO"},
        {"nccl-proto", 0, 0, G_OPTION_ARG_STRING, &cli.nccl_proto,
         "Force NCCL's protocol like NCCL_PROTO: LL, LL128, Simple [NCCL's choice]", "PROTO"},
        {"nccl-version", 0, 0, G_OPTION_ARG_STRING, &cli.nccl_version,
         "NCCL release whose rules apply, as fsdpsim collective's (LL128: Hopper from 2.15, GH200 "
         "across nodes from 2.27; before 2.12, 2.8.4's latencies and 2.8-2.11's per-channel caps; "
         "2.12-2.22 their own latencies, caps and algorithms) [2.30.7]",
         "X.Y.Z"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &cli.json, "Print one JSON object instead of the summary",
         NULL},
        {"trace", 0, 0, G_OPTION_ARG_FILENAME, &cli.trace,
         "Write a Chrome trace (open in ui.perfetto.dev)", "FILE"},
        {"emit-schedule", 0, 0, G_OPTION_ARG_FILENAME, &cli.emit_schedule,
         "Write the schedule (versioned JSON) that fsdprun executes", "FILE"},
        {"schedule", 0, 0, G_OPTION_ARG_FILENAME, &cli.schedule,
         "Simulate a schedule file instead of generating one", "FILE"},
        {"plot", 0, 0, G_OPTION_ARG_FILENAME, &cli.plot,
         "Write figures (timeline, memory, memory breakdown) with their data and gnuplot scripts "
         "to DIR",
         "DIR"},
        {"plot-format", 0, 0, G_OPTION_ARG_STRING, &cli.plot_format,
         "Image formats for --plot and --report: png, svg, pdf, comma-separated [png,svg,pdf]",
         "LIST"},
        {"report", 0, 0, G_OPTION_ARG_FILENAME, &cli.report,
         "Write a report folder: figures, JSON, CSV, trace and a README.md showing them", "DIR"},
        {"max-memory", 0, 0, G_OPTION_ARG_STRING, &cli.max_memory,
         "Refuse a run whose estimated memory is beyond SIZE (suffixes K, M, G, T) [the memory "
         "available]",
         "SIZE"},
        {"version", 0, 0, G_OPTION_ARG_NONE, &cli.version, "Print the version", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GOptionContext *ctx = g_option_context_new("- simulate distributed training (DDP, FSDP, "
                                               "pipeline and tensor parallel) on HPC machines");
    g_option_context_set_summary(
        ctx,
        "Predicts step time, throughput, peak memory per GPU and where the time goes, for DDP,\n"
        "every FSDP sharding strategy, pipeline and tensor parallelism, on a model of the machine\n"
        "(nodes, GPUs, NVLink, NICs, the fabric).\n\n"
        "Example:\n  fsdpsim --model models/gpt.json --strategy hybrid --nodes 8");
    g_option_context_set_description(ctx, cli_subcommands_help());
    g_option_context_add_main_entries(ctx, entries, NULL);
    cli_train_add_entries(ctx, &cli.train);
    GError *error = NULL;
    int launch_blocking;
    if (!launch_blocking_scan(argc, argv, &launch_blocking, point ? &point->error : &error)) {
        if (!point) {
            fprintf(stderr, "fsdpsim: %s\n", error->message);
            g_error_free(error);
        }
        g_option_context_free(ctx);
        return 2;
    }
    /* In process: parsed here, into point->error, with nothing printed (and no --help that
     * exits); the parse below then sees argv[0] and leftover arguments only. argv is the
     * caller's: GOption removes what it parses, so a copy is parsed. */
    char **argv_copy = point ? g_memdup2(argv, sizeof(char *) * (size_t)(argc + 1)) : NULL;
    if (!point) /* before GOption takes the options out of argv */
        cli.command = cli_command_line("fsdpsim", argc, argv);
    if (point) {
        argv = argv_copy;
        g_option_context_set_help_enabled(ctx, FALSE);
    }
    if (point && !g_option_context_parse(ctx, &argc, &argv, &point->error)) {
        GError *e = point->error;
        g_autofree char *text = cli_option_message(e, entries, NULL);
        point->error = g_error_new_literal(FSD_ERROR, FSD_ERROR_INPUT, text);
        g_error_free(e);
        g_option_context_free(ctx);
        g_free(argv_copy);
        return 2;
    }
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_autofree char *text = cli_option_message(error, entries, "fsdpsim");
        fprintf(stderr, "fsdpsim: %s\n", text);
        g_error_free(error);
        g_option_context_free(ctx);
        g_free(cli.command); /* GOption takes back what it parsed; the command line is ours */
        return 2;
    }
    g_option_context_free(ctx);
    if (launch_blocking >= 0)
        cli.cuda_launch_blocking = launch_blocking;
    int status;
    if (point) {
        status = 0;
        if (argc > 1)
            status = 2, cfg_input_error(&point->error, "unexpected argument '%s'", argv[1]);
        g_free(argv_copy);
        if (!status) { /* the options move to the caller's handle */
            *point->parsed = g_new(CliSimOptions, 1);
            (*point->parsed)->cli = cli;
            return 0;
        }
    } else if (cli.version) {
        printf("fsdpsim %s\n", FSDPSIM_VERSION);
        status = 0;
    } else if (argc > 1) {
        fprintf(stderr, "fsdpsim: unexpected argument '%s' (see fsdpsim --help)\n", argv[1]);
        status = 2;
    } else {
        status = run(&cli, &error);
        if (error)
            status = cli_report_error(error);
    }
    options_clear(&cli);
    return status;
}

static void options_clear(CliOptions *cli)
{
    g_free(cli->model), g_free(cli->topology), g_free(cli->strategy), g_free(cli->sharding);
    g_free(cli->wrap), g_free(cli->backward_prefetch), g_free(cli->limit_all_gathers);
    g_free(cli->param_dtype), g_free(cli->reduce_dtype), g_free(cli->optimizer);
    g_free(cli->offload_optimizer), g_free(cli->fp8_format);
    g_free(cli->nccl_algo), g_free(cli->nccl_proto), g_free(cli->nccl_version), g_free(cli->trace);
    g_free(cli->emit_schedule), g_free(cli->schedule), g_free(cli->bucket_cap_mb);
    g_free(cli->max_memory), g_free(cli->par.pp_schedule), g_free(cli->par.placement);
    g_free(cli->par.pp_partition), g_free(cli->attention), g_free(cli->optimizer_impl);
    g_free(cli->loss_impl);
    g_free(cli->par.pp_scatter_gather);
    cli_train_clear(&cli->train);
    g_free(cli->reshard_after_forward), g_free(cli->memory_format);
    g_free(cli->recompute_granularity);
    g_free(cli->plot), g_free(cli->plot_format), g_free(cli->report), g_free(cli->command);
}
