/* search: the space (ranges, point order, keys, flags), constraints and global batch parsing,
 * the analytic bound's arithmetic, and one point's evaluation against a fake simulation: each
 * pruning reason, the grad-accum that the global batch implies, and the objectives' arithmetic. */
#include "testutil.h"
#include "search/search.h"

static void test_space_ranges(void **state)
{
    SearchSpace sp;
    search_space_init(&sp);
    GError *e = NULL;
    assert_true(search_space_add_vary(&sp, "nodes=1..64:x2", &e));
    assert_true(search_space_add_vary(&sp, "checkpoint-every=1..9:+2", &e));
    assert_true(search_space_add_vary(&sp, "strategy=full, hybrid", &e));
    assert_true(search_space_add_vary(&sp, "compile=on,off", &e));
    assert_int_equal(search_space_size(&sp), 7 * 5 * 2 * 2);
    const char *v[4];
    search_space_point(&sp, 0, v);
    assert_string_equal(v[0], "1");
    search_space_point(&sp, 1, v); /* the last dimension varies fastest */
    assert_string_equal(v[3], "off");
    assert_string_equal(v[0], "1");
    search_space_point(&sp, 7 * 5 * 2 * 2 - 1, v);
    assert_string_equal(v[0], "64");
    assert_string_equal(v[1], "9");
    assert_string_equal(v[2], "hybrid");
    char *key = search_point_key(&sp, v);
    assert_string_equal(key, "nodes=64 checkpoint-every=9 strategy=hybrid compile=off");
    g_free(key);
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    search_space_point(&sp, 2, v); /* nodes 1, every 1, hybrid, compile on */
    search_point_argv(&sp, v, argv);
    assert_int_equal(argv->len, 4);
    assert_string_equal(g_ptr_array_index(argv, 2), "--strategy=hybrid");
    assert_string_equal(g_ptr_array_index(argv, 3), "--compile"); /* on: the flag; off: none */
    g_ptr_array_free(argv, TRUE);
    assert_false(search_space_add_vary(&sp, "tp=4..1", &e));
    assert_non_null(strstr(e->message, "option --vary tp"));
    g_clear_error(&e);
    assert_false(search_space_add_vary(&sp, "=1,2", &e));
    g_clear_error(&e);
    search_space_clear(&sp);
}

static void test_spec_parsing(void **state)
{
    SearchSpec spec;
    search_spec_default(&spec);
    GError *e = NULL;
    assert_true(search_constraint_parse(&spec, "fits:headroom=2GiB", &e));
    assert_true(spec.headroom_bytes == 2147483648.0);
    assert_true(search_constraint_parse(&spec, "fits:headroom=0.1", &e));
    assert_true(spec.headroom_fraction == 0.1);
    assert_true(search_constraint_parse(&spec, "walltime<=24h", &e));
    assert_true(spec.walltime_s == 86400);
    assert_true(search_constraint_parse(&spec, "nodes<=128", &e));
    assert_int_equal(spec.max_nodes, 128);
    assert_false(search_constraint_parse(&spec, "walltime<=soon", &e));
    g_clear_error(&e);
    assert_true(search_global_batch_parse(&spec, "4Mtok", &e));
    assert_true(spec.global_batch == 4194304 && spec.global_batch_tokens);
    assert_true(search_global_batch_parse(&spec, "1536", &e));
    assert_true(spec.global_batch == 1536 && !spec.global_batch_tokens);
    SearchObjective o;
    assert_true(search_objective_parse("core-hours", &o) && o == SEARCH_OBJ_CORE_HOURS);
    assert_false(search_objective_parse("hours", &o));
}

/* Llama-2-7B, FSDP full_shard on 4 x 4 GPUs: the fp32 shard and Adam's state, 12 bytes a
 * parameter over 16 GPUs, plus the saved activations, below the simulated peak of the same run; the
 * compute floor above the bare peak's (no kernel beats the peak) and below the simulated compute
 * time. */
static void test_bound(void **state)
{
    Run r;
    run_start(&r, "models/llama2-7b.json", "topologies/juwels-booster.json", 4, 4);
    r.opt.kind = STRAT_FSDP;
    r.opt.sharding = SHARD_FULL_SHARD;
    run_sim(&r);
    const Model *m = r.model;
    cJSON *b = search_bound_json(m, r.topo, &r.opt, &r.layout);
    /* without checkpointing: the state and one micro-batch's saved activations, below the peak */
    double bytes = cJSON_GetObjectItem(b, "memory_bound_bytes")->valuedouble;
    assert_true(bytes > (double)m->params / 16 * 12 + r.rep.mem_breakdown[IR_MEM_ACTIVATIONS] / 2);
    assert_true(bytes < r.rep.mem_peak_bytes);
    double floor_s = cJSON_GetObjectItem(b, "step_floor_per_micro_batch_s")->valuedouble;
    double bare = model_flops_train_per_sample(m) * m->training.micro_batch /
                  r.topo->gpu.peak_flops[strat_compute_dtype(m, &r.opt)];
    assert_true(floor_s > bare);
    assert_true(floor_s < r.rep.compute_s);
    assert_true(floor_s > 0.5 * r.rep.compute_s); /* a useful bound, not 0 */
    assert_true(cJSON_GetObjectItem(b, "pipeline_fill_micro_batches")->valuedouble == 0);
    cJSON_Delete(b);
    StratOptions opt = r.opt;
    /* the state, fp32 grads and foreach AdamW's denominator at the step: 20 bytes over 16 GPUs */
    opt.activation_checkpointing = true;
    b = search_bound_json(m, r.topo, &opt, &r.layout);
    assert_float_equal(cJSON_GetObjectItem(b, "memory_bound_bytes")->valuedouble,
                       (double)m->params / 16 * 20 + r.topo->gpu.reserved_bytes, 1);
    cJSON_Delete(b);
    opt.sharding = SHARD_NO_SHARD; /* replicated: the whole model state on each GPU */
    b = search_bound_json(m, r.topo, &opt, &r.layout);
    assert_float_equal(cJSON_GetObjectItem(b, "memory_bound_bytes")->valuedouble,
                       (double)m->params * 20 + r.topo->gpu.reserved_bytes, 1);
    cJSON_Delete(b);
    run_end(&r);
}

/* --fp8-format: the compute floor takes the blocks' GEMMs at the fp8 rate, so it drops below
 * the bf16 floor and stays below the simulated compute of the fp8 run (a floor at bf16 rates
 * could exceed it and prune a layout that wins) */
static void test_bound_fp8(void **state)
{
    Run r;
    run_start(&r, "models/llama2-7b.json", "topologies/hgx-h100-ndr400.json", 1, 8);
    r.opt.kind = STRAT_FSDP;
    r.opt.sharding = SHARD_FULL_SHARD;
    r.opt.fp8_format = STRAT_FP8_HYBRID;
    run_sim(&r);
    cJSON *b = search_bound_json(r.model, r.topo, &r.opt, &r.layout);
    double fp8_floor = cJSON_GetObjectItem(b, "step_floor_per_micro_batch_s")->valuedouble;
    cJSON_Delete(b);
    StratOptions bf16 = r.opt;
    bf16.fp8_format = STRAT_FP8_OFF;
    b = search_bound_json(r.model, r.topo, &bf16, &r.layout);
    double bf16_floor = cJSON_GetObjectItem(b, "step_floor_per_micro_batch_s")->valuedouble;
    cJSON_Delete(b);
    assert_true(fp8_floor < 0.8 * bf16_floor);
    assert_true(fp8_floor < r.rep.compute_s);
    run_end(&r);
}

/* Mixtral-8x7B under expert parallelism (--ep 8), SHARD_GRAD_OP and FULL_SHARD on 2 x 4 GPUs:
 * a GPU gathers only its 1/8 of each layer's experts, so the memory bound (which counted all
 * of them unsharded, 1.5 to 2 times the simulated peak) must stay below the peak; the compute
 * floor below the simulated compute time. */
static void test_bound_expert_parallel(void **state)
{
    static const ShardingStrategy shardings[] = {SHARD_SHARD_GRAD_OP, SHARD_FULL_SHARD};
    for (size_t i = 0; i < G_N_ELEMENTS(shardings); i++) {
        Run r;
        run_start(&r, "models/mixtral-8x7b.json", "topologies/juwels-booster.json", 2, 4);
        r.opt.kind = STRAT_FSDP;
        r.opt.sharding = shardings[i];
        r.opt.ep = 8;
        run_sim(&r);
        cJSON *b = search_bound_json(r.model, r.topo, &r.opt, &r.layout);
        double bytes = cJSON_GetObjectItem(b, "memory_bound_bytes")->valuedouble;
        assert_true(bytes <= r.rep.mem_peak_bytes);
        assert_true(bytes > 0.9 * r.rep.mem_peak_bytes); /* still a useful bound */
        assert_true(cJSON_GetObjectItem(b, "step_floor_per_micro_batch_s")->valuedouble <
                    r.rep.compute_s);
        cJSON_Delete(b);
        run_end(&r);
    }
}

/* FSDP2's reshard_after_forward overrides SHARD_GRAD_OP's: True frees each unit after its
 * forward, 2 keeps half of it; the memory bound (which kept all parameters, 1.09 to 1.38 times
 * the simulated peak) stays below the peak; False keeps them all, and a tight bound. GPT-3 XL
 * on 1 x 4 GPUs. */
static void test_bound_reshard_after_forward(void **state)
{
    static const int rafs[] = {1, 2, 0};
    for (size_t i = 0; i < G_N_ELEMENTS(rafs); i++) {
        Run r;
        run_start(&r, "models/gpt.json", "topologies/juwels-booster.json", 1, 4);
        r.opt.kind = STRAT_FSDP;
        r.opt.sharding = SHARD_SHARD_GRAD_OP;
        r.opt.fsdp_version = 2;
        r.opt.reshard_after_forward = rafs[i];
        run_sim(&r);
        cJSON *b = search_bound_json(r.model, r.topo, &r.opt, &r.layout);
        double bytes = cJSON_GetObjectItem(b, "memory_bound_bytes")->valuedouble;
        assert_true(bytes <= r.rep.mem_peak_bytes);
        assert_true(bytes > 0.9 * r.rep.mem_peak_bytes);
        cJSON_Delete(b);
        run_end(&r);
    }
}

/* DeepSpeed's optimizer offload keeps only the bf16 shard on the GPU: the memory bound, which
 * without it counts fp32 parameters, state and gradients (16 B a parameter), stays below the
 * simulated peak. Llama-2-7B, one node of 4, shard_grad_op and full_shard, checkpointed. */
static void test_bound_offload_optimizer(void **state)
{
    static const ShardingStrategy shardings[] = {SHARD_SHARD_GRAD_OP, SHARD_FULL_SHARD};
    for (size_t i = 0; i < G_N_ELEMENTS(shardings); i++) {
        Run r;
        run_start(&r, "models/llama2-7b.json", "topologies/juwels-booster.json", 1, 4);
        r.opt.sharding = shardings[i];
        r.opt.activation_checkpointing = true;
        r.opt.offload_optimizer = true;
        run_sim(&r);
        cJSON *b = search_bound_json(r.model, r.topo, &r.opt, &r.layout);
        double bytes = cJSON_GetObjectItem(b, "memory_bound_bytes")->valuedouble;
        assert_true(bytes <= r.rep.mem_peak_bytes);
        r.opt.offload_optimizer = false; /* the bound without it is beyond this peak */
        cJSON *without = search_bound_json(r.model, r.topo, &r.opt, &r.layout);
        assert_true(cJSON_GetObjectItem(without, "memory_bound_bytes")->valuedouble >
                    r.rep.mem_peak_bytes);
        cJSON_Delete(without);
        cJSON_Delete(b);
        run_end(&r);
    }
}

/* A fake simulation: --nodes=N and --tp=T set the layout (4 GPUs a node, dp = 4N/T), the
 * memory bound is 30 GB / N, the simulated peak 20 GB + 10 GB / N, the step 10 s / N. Counts
 * its parses and simulations; fake_grad_accum is the last simulation's. */
static int fake_calls, fake_parses, fake_grad_accum;

typedef struct {
    int nodes, tp;
} FakeParsed;

static void *fake_parse(void *ctx, int argc, char **argv, GError **error)
{
    (void)ctx;
    FakeParsed *p = g_new(FakeParsed, 1);
    *p = (FakeParsed){1, 1};
    for (int i = 1; i < argc; i++) {
        sscanf(argv[i], "--nodes=%d", &p->nodes);
        sscanf(argv[i], "--tp=%d", &p->tp);
    }
    fake_parses++;
    if (p->tp == 3) {
        g_free(p);
        return cfg_input_error(error, "option --tp: expected a divisor of 4, got 3"), NULL;
    }
    return p;
}

static cJSON *fake_eval(void *ctx, void *parsed, SearchFidelity fid, int grad_accum, GError **error)
{
    (void)ctx, (void)error;
    const FakeParsed *p = parsed;
    int nodes = p->nodes, tp = p->tp;
    fake_calls += fid == SEARCH_FID_FULL;
    if (fid == SEARCH_FID_FULL)
        fake_grad_accum = grad_accum;
    cJSON *o = cJSON_CreateObject();
    if (fid == SEARCH_FID_BOUND) {
        cJSON_AddNumberToObject(o, "world_size", 4 * nodes);
        cJSON_AddNumberToObject(o, "nodes", nodes);
        cJSON_AddNumberToObject(o, "gpus_per_node", 4);
        cJSON_AddNumberToObject(o, "machine_gpus_per_node", 4);
        cJSON_AddNumberToObject(o, "tp", tp);
        cJSON_AddNumberToObject(o, "pp", 1);
        cJSON_AddNumberToObject(o, "dp", 4 * nodes / tp);
        cJSON_AddNumberToObject(o, "micro_batch", 2);
        cJSON_AddNumberToObject(o, "grad_accum", 1);
        cJSON_AddNumberToObject(o, "seq_len", 1000);
        cJSON_AddNumberToObject(o, "memory_bound_bytes", 30e9 / nodes);
        cJSON_AddNumberToObject(o, "capacity_bytes", 40e9);
        cJSON_AddNumberToObject(o, "step_floor_per_micro_batch_s", 1.0 / nodes);
    } else {
        cJSON_AddNumberToObject(o, "step_time_s", 10.0 / nodes);
        /* 2 x dp x 8 sequences of 1000 tokens a step (grad-accum 8, from the global batch) */
        cJSON_AddNumberToObject(o, "tokens_per_s",
                                2.0 * (4 * nodes / tp) * 8 * 1000 / (10.0 / nodes));
        cJSON *mem = cJSON_AddObjectToObject(o, "memory");
        cJSON_AddNumberToObject(mem, "peak_bytes", 20e9 + 10e9 / nodes);
        cJSON_AddBoolToObject(mem, "oom", false);
    }
    return o;
}

static const char *str(const cJSON *r, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(r, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void test_evaluate(void **state)
{
    SearchSpace sp;
    search_space_init(&sp);
    assert_true(search_space_add_vary(&sp, "nodes=1,2,4", NULL));
    assert_true(search_space_add_vary(&sp, "tp=1,3,8", NULL));
    SearchSpec spec;
    search_spec_default(&spec);
    spec.global_batch = 128; /* sequences: grad-accum = 128 / (dp x 2) */
    spec.headroom_bytes = 12e9;
    spec.tokens = 1e9;
    spec.objective = SEARCH_OBJ_NODE_HOURS;
    GPtrArray *fixed = g_ptr_array_new_with_free_func(g_free);
    static const SearchEvaluator fake = {fake_parse, fake_eval, g_free};
    SearchContext ctx = {&sp, &spec, fixed, &fake, NULL, NULL};
    /* index = nodes index x 3 + tp index */
    cJSON *r = search_evaluate(&ctx, 0); /* 1 node: bound 30 GB > 40 - 12 */
    assert_string_equal(str(r, "reason"), "does not fit (analytic bound)");
    cJSON_Delete(r);
    spec.no_memory_bound = true; /* LoRA: the bound does not prune; the simulation decides */
    r = search_evaluate(&ctx, 0);
    assert_string_equal(str(r, "reason"), "does not fit");
    assert_string_equal(str(r, "stage"), "full");
    cJSON_Delete(r);
    spec.no_memory_bound = false;
    r = search_evaluate(&ctx, 4); /* 2 nodes, tp 3: the simulation refuses it */
    assert_string_equal(str(r, "reason"), "invalid: option --tp");
    assert_string_equal(str(r, "message"), "option --tp: expected a divisor of 4, got 3");
    cJSON_Delete(r);
    r = search_evaluate(&ctx, 5); /* tp 8 > 4 GPUs a node */
    assert_string_equal(str(r, "reason"), "puts TP across nodes");
    cJSON_Delete(r);
    r = search_evaluate(&ctx, 3); /* 2 nodes: bound 15 GB fits, peak 25 GB > 28? no: fits */
    assert_string_equal(str(r, "status"), "ok");
    assert_int_equal(fake_grad_accum, 8); /* 128 / (8 x 2) */
    /* 16000 tokens a step x ceil(1e9 / 16000) steps of 5 s, on 2 nodes */
    double steps = ceil(1e9 / (2.0 * 8 * 8 * 1000));
    assert_float_equal(cJSON_GetObjectItem(r, "objective")->valuedouble, 2 * steps * 5 / 3600,
                       1e-9);
    assert_true(cJSON_GetObjectItem(r, "lower_bound")->valuedouble <=
                cJSON_GetObjectItem(r, "objective")->valuedouble);
    cJSON_Delete(r);
    spec.headroom_bytes = 16e9; /* peak 25 GB + 16 GB > 40 GB: simulated and refused */
    r = search_evaluate(&ctx, 3);
    assert_string_equal(str(r, "reason"), "does not fit");
    assert_string_equal(str(r, "stage"), "full");
    cJSON_Delete(r);
    spec.headroom_bytes = 0;
    spec.global_batch = 100; /* 100 / (dp 8 x 2) is not whole */
    r = search_evaluate(&ctx, 3);
    assert_string_equal(str(r, "reason"), "global batch not a multiple of dp x micro-batch");
    cJSON_Delete(r);
    spec.global_batch = 0;
    spec.max_gpus = 8;
    r = search_evaluate(&ctx, 6); /* 4 nodes, 16 GPUs */
    assert_string_equal(str(r, "reason"), "over the GPU budget");
    cJSON_Delete(r);
    fake_calls = 0;
    spec.max_gpus = 0;
    fake_parses = 0;
    SearchPending *p = NULL; /* ASHA's first rung: the bound only, no simulation */
    assert_null(search_evaluate_bound(&ctx, 6, &p));
    assert_non_null(p);
    assert_int_equal(fake_calls, 0);
    assert_string_equal(search_pending_key(p), "nodes=4 tp=1");
    assert_true(search_pending_lower_bound(p) > 0);
    r = search_pending_simulate(&ctx, p); /* then the simulation, from the same parse */
    assert_string_equal(str(r, "status"), "ok");
    assert_int_equal(fake_calls, 1);
    assert_int_equal(fake_parses, 1);
    cJSON_Delete(r);
    assert_null(search_evaluate_bound(&ctx, 6, &p));
    r = search_pending_drop(&ctx, p, "lower bound above the best");
    assert_string_equal(str(r, "status"), "pruned");
    assert_string_equal(str(r, "stage"), "bound");
    assert_string_equal(str(r, "reason"), "lower bound above the best");
    assert_int_equal(fake_calls, 1);
    cJSON_Delete(r);
    g_ptr_array_free(fixed, TRUE);
    search_space_clear(&sp);
}

/* The time to --tokens without the machine's file system: steps x step, the steps from the
 * tokens of a step, which the figures give as rate x step: 33866.906997406419 tokens/s x
 * 30.961670048 s (Llama-2-7B, 256 x 4096 tokens a step, on one JUPITER node) is
 * 1048575.9999999999, not 2^20; 1000 steps' tokens take 1000 steps, not 1001. Each hours
 * objective is its nodes (or their GPUs, cores) x that time. */
static void test_time_to_tokens(void **state)
{
    SearchSpec spec;
    search_spec_default(&spec);
    spec.tokens = 1048576.0 * 1000;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "step_time_s", 30.961670048);
    cJSON_AddNumberToObject(f, "tokens_per_s", 33866.906997406419);
    double time_s = 1000 * 30.961670048;
    spec.objective = SEARCH_OBJ_TIME;
    assert_float_equal(search_objective_value(&spec, f, 4, 72, 2), time_s, 1e-9 * time_s);
    spec.objective = SEARCH_OBJ_NODE_HOURS;
    assert_float_equal(search_objective_value(&spec, f, 4, 72, 2), 2 * time_s / 3600, 1e-9);
    spec.objective = SEARCH_OBJ_GPU_HOURS;
    assert_float_equal(search_objective_value(&spec, f, 4, 72, 2), 8 * time_s / 3600, 1e-9);
    spec.objective = SEARCH_OBJ_CORE_HOURS;
    assert_float_equal(search_objective_value(&spec, f, 4, 72, 2), 144 * time_s / 3600, 1e-9);
    spec.cores_per_node = 48;
    assert_float_equal(search_objective_value(&spec, f, 4, 72, 2), 96 * time_s / 3600, 1e-9);
    spec.tokens += 1; /* one token more: one step more */
    spec.objective = SEARCH_OBJ_TIME;
    assert_float_equal(search_objective_value(&spec, f, 4, 72, 2), time_s + 30.961670048,
                       1e-9 * time_s);
    cJSON_Delete(f);
}

/* The one Pareto front of the summary and the figure: sorted by (a, b, order), each point whose
 * b is below all before it; a tie keeps the first. Step time against peak memory. */
static void test_pareto(void **state)
{
    (void)state;
    static const double step_mem[][2] = {{3, 6}, {2, 4}, {4, 1}, {1, 8}, {2, 4}};
    GPtrArray *ok = g_ptr_array_new_with_free_func((GDestroyNotify)cJSON_Delete);
    for (size_t i = 0; i < G_N_ELEMENTS(step_mem); i++) {
        cJSON *r = cJSON_CreateObject(), *f = cJSON_AddObjectToObject(r, "figures");
        cJSON_AddNumberToObject(f, "step_time_s", step_mem[i][0]);
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(f, "memory"), "peak_bytes",
                                step_mem[i][1] * (1 << 30));
        g_ptr_array_add(ok, r);
    }
    SearchSpec spec;
    search_spec_default(&spec);
    GArray *p = search_pareto(&spec, ok, SEARCH_OBJ_STEP, SEARCH_OBJ_COUNT);
    static const guint order[] = {3, 1, 4, 0, 2};
    static const bool front[] = {true, true, false, false, true};
    assert_int_equal(p->len, 5);
    for (guint i = 0; i < p->len; i++) {
        const SearchParetoPoint *q = &g_array_index(p, SearchParetoPoint, i);
        assert_int_equal(q->index, order[i]);
        assert_int_equal(q->front, front[i]);
        assert_true(q->a == step_mem[order[i]][0] && q->b == step_mem[order[i]][1]);
    }
    g_array_free(p, TRUE);
    g_ptr_array_free(ok, TRUE);
}

/* Ray Tune's ASHA on 27 trials, grace 1, max_t 27, reduction 3: rungs 1, 3, 9, 27 reached by
 * 27, 9, 3, 1 trials; 18 x 1 + 6 x 3 + 2 x 9 + 1 x 27 = 81 iterations. One slot runs them all
 * in turn; 27 slots end with the longest trial. */
static void test_ray_tune(void **state)
{
    SearchTune t;
    search_tune_default(&t);
    assert_true(search_tune_parse("samples=27,max_t=27,grace=1,reduction=3,concurrent=1,"
                                  "gpus_per_trial=1,step_s=2",
                                  &t, NULL));
    SearchTunePlan p;
    search_tune_plan(&t, 4, 48, &p);
    assert_int_equal(p.rungs, 4);
    int reached[] = {27, 9, 3, 1};
    for (int r = 0; r < 4; r++)
        assert_int_equal(p.rung_trials[r], reached[r]);
    assert_int_equal(p.finished, 1);
    assert_float_equal(p.trial_iters, 81, 1e-9);
    assert_float_equal(p.wall_s, 81 * 2, 1e-9);
    assert_int_equal(p.nodes, 1);
    assert_float_equal(p.node_hours, 162.0 / 3600, 1e-12); /* the whole node is charged */
    assert_float_equal(p.gpu_hours_used, 162.0 / 3600, 1e-12);
    t.concurrent = 27;
    search_tune_plan(&t, 4, 48, &p);
    assert_float_equal(p.wall_s, 27 * 2, 1e-9);
    assert_int_equal(p.nodes, 7); /* 27 one-GPU trials, 4 a node */
    assert_float_equal(p.core_hours, 7 * 48 * 54.0 / 3600, 1e-9);
    t.gpus_per_trial = 8; /* a trial spans 2 nodes */
    t.concurrent = 2;
    search_tune_plan(&t, 4, 48, &p);
    assert_int_equal(p.nodes, 4);
    GError *e = NULL;
    assert_false(search_tune_parse("samples=10,grace=200", &t, &e)); /* grace > max_t */
    assert_non_null(strstr(e->message, "option --ray-tune"));
    g_clear_error(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_ranges),
        cmocka_unit_test(test_spec_parsing),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_bound_fp8),
        cmocka_unit_test(test_bound_expert_parallel),
        cmocka_unit_test(test_evaluate),
        cmocka_unit_test(test_pareto),
        cmocka_unit_test(test_ray_tune),
        cmocka_unit_test(test_time_to_tokens),
        cmocka_unit_test(test_bound_reshard_after_forward),
        cmocka_unit_test(test_bound_offload_optimizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
