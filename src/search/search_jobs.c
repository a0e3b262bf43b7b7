/* search: --emit-jobs DIR, the top configurations as jobs for JUWELS Booster: an sbatch script
 * that starts the user's training script with srun + torchrun, with the PyTorch settings the
 * simulation assumed spelled out (FSDP(...) arguments, or fully_shard on a DeviceMesh with TP and
 * pipelining for 2D/3D, or Megatron-LM's arguments for its DDP), and an fsdprun job that runs the
 * simulated schedule on the same nodes to check the prediction first. */
#include "search.h"
#include "../util/cfg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static const cJSON *get(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *key, const char *absent)
{
    const cJSON *v = get(o, key);
    return cJSON_IsString(v) ? v->valuestring : absent;
}

/* the value of a simulation option at this point: varied, else fixed ("--x v", "--x=v"), else
 * NULL; a flag given without a value reads "on" */
static const char *option_of(const cJSON *rec, GPtrArray *fixed, const char *name)
{
    const char *v = str(get(rec, "options"), name, NULL);
    if (v)
        return v;
    size_t n = strlen(name);
    for (guint i = 0; i < fixed->len; i++) {
        const char *a = g_ptr_array_index(fixed, i);
        if (strncmp(a, "--", 2) || strncmp(a + 2, name, n))
            continue;
        if (a[2 + n] == '=')
            return a + 3 + n;
        if (a[2 + n] == '\0')
            return i + 1 < fixed->len && ((char *)g_ptr_array_index(fixed, i + 1))[0] != '-'
                       ? g_ptr_array_index(fixed, i + 1)
                       : "on";
    }
    return NULL;
}

static bool on(const char *v)
{
    return v && (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"));
}

/* The simulation's command line of this point, to reproduce it: the fixed options, the varied
 * ones and the grad-accum a global batch set. */
static char *fsdpsim_command(const SearchSpace *space, const cJSON *rec, GPtrArray *fixed)
{
    GString *s = g_string_new("fsdpsim");
    for (guint i = 0; i < fixed->len; i++) {
        char *q = g_shell_quote(g_ptr_array_index(fixed, i));
        g_string_append_printf(s, " %s", q);
        g_free(q);
    }
    for (guint d = 0; d < space->dims->len; d++) {
        const SearchDim *dim = g_ptr_array_index(space->dims, d);
        const char *v = str(get(rec, "options"), dim->option, "off");
        if (!strcmp(v, "on"))
            g_string_append_printf(s, " --%s", dim->option);
        else if (strcmp(v, "off"))
            g_string_append_printf(s, " --%s=%s", dim->option, v);
    }
    if (cJSON_IsNumber(get(rec, "grad_accum")))
        g_string_append_printf(s, " --grad-accum=%.0f", num(rec, "grad_accum"));
    return g_string_free(s, FALSE);
}

static const char *sharding_enum(const char *s)
{
    return !strcmp(s, "shard_grad_op")  ? "ShardingStrategy.SHARD_GRAD_OP"
           : !strcmp(s, "no_shard")     ? "ShardingStrategy.NO_SHARD"
           : !strcmp(s, "hybrid_shard") ? "ShardingStrategy.HYBRID_SHARD"
           : !strcmp(s, "hybrid_zero2") ? "ShardingStrategy._HYBRID_SHARD_ZERO2"
                                        : "ShardingStrategy.FULL_SHARD";
}

/* the PyTorch (or Megatron-LM) settings, as comments of the batch script */
static void pytorch_settings(GString *s, const cJSON *rec, GPtrArray *fixed)
{
    const cJSON *f = get(rec, "figures"), *model = get(f, "model"), *fsdp = get(f, "fsdp");
    int tp = MAX(1, (int)num(get(f, "tp"), "size")), pp = MAX(1, (int)num(get(f, "pp"), "size"));
    int dp = MAX(1, (int)num(get(f, "dp"), "size"));
    if (tp == 1 && pp == 1)
        dp = (int)num(f, "world_size");
    int mb = (int)num(model, "micro_batch_size"), ga = MAX(1, (int)num(model, "grad_accum"));
    const char *granularity = option_of(rec, fixed, "recompute-granularity");
    bool selective = granularity && !strcmp(granularity, "selective");
    bool ac = on(option_of(rec, fixed, "activation-checkpointing")) ||
              option_of(rec, fixed, "checkpoint-every") ||
              (granularity && !strcmp(granularity, "full"));
    const char *every = option_of(rec, fixed, "checkpoint-every");
    const char *wrap = option_of(rec, fixed, "wrap");
    const char *dtype = option_of(rec, fixed, "param-dtype");
    dtype = dtype && !strcmp(dtype, "fp16")   ? "torch.float16"
            : dtype && !strcmp(dtype, "fp32") ? "torch.float32"
                                              : "torch.bfloat16";
    g_string_append_printf(s,
                           "# Per GPU: micro-batch %d sequences of %d tokens, %d micro-batches per "
                           "optimizer step (global batch %d).\n",
                           mb, (int)num(model, "seq_len"), ga, mb * ga * dp);
    if (fsdp && tp == 1 && pp == 1) {
        const char *sh = str(fsdp, "sharding_strategy", "full_shard");
        g_string_append_printf(
            s,
            "# PyTorch FSDP (torch.distributed.fsdp), as simulated:\n"
            "#   model = FSDP(model,\n"
            "#       sharding_strategy=%s,\n"
            "#       auto_wrap_policy=%s,\n"
            "#       backward_prefetch=%s,\n"
            "#       forward_prefetch=%s,\n"
            "#       limit_all_gathers=%s,\n"
            "#       mixed_precision=MixedPrecision(param_dtype=%s, reduce_dtype=%s),\n"
            "#       cpu_offload=CPUOffload(offload_params=%s),\n",
            sharding_enum(sh),
            wrap && !strcmp(wrap, "none") ? "None"
            : wrap && g_str_has_prefix(wrap, "size")
                ? "functools.partial(size_based_auto_wrap_policy, min_num_params=...)"
                : "functools.partial(transformer_auto_wrap_policy, "
                  "transformer_layer_cls={DecoderLayer})",
            !strcmp(str(fsdp, "backward_prefetch", ""), "backward_post")
                ? "BackwardPrefetch.BACKWARD_POST"
            : !strcmp(str(fsdp, "backward_prefetch", ""), "none") ? "None"
                                                                  : "BackwardPrefetch.BACKWARD_PRE",
            cJSON_IsTrue(get(fsdp, "forward_prefetch")) ? "True" : "False",
            cJSON_IsFalse(get(fsdp, "limit_all_gathers")) ? "False" : "True", dtype, dtype,
            cJSON_IsTrue(get(fsdp, "cpu_offload")) ? "True" : "False");
        if (g_str_has_prefix(sh, "hybrid"))
            g_string_append_printf(s,
                                   "#       device_mesh=init_device_mesh(\"cuda\", (%d, %d)),  "
                                   "# (replicate, shard)\n",
                                   (int)num(fsdp, "replicate_group_size"),
                                   (int)num(fsdp, "shard_group_size"));
        g_string_append(s, "#       device_id=torch.cuda.current_device())\n");
        if (get(fsdp, "offload_optimizer")) /* present only when simulated with it */
            g_string_append(s, "# simulated with --offload-optimizer cpu: DeepSpeed ZeRO (stage 3 "
                               "for full_shard, 2 for shard_grad_op) with \"offload_optimizer\": "
                               "{\"device\": \"cpu\"}; FSDP above has no such option\n");
    } else if (fsdp) {
        g_string_append_printf(
            s,
            "# PyTorch 2D/3D parallelism, as simulated (torchtitan's recipe):\n"
            "#   mesh = init_device_mesh(\"cuda\", (%d, %d, %d), mesh_dim_names=(\"pp\", \"dp\", "
            "\"tp\"))\n"
            "#   tensor parallel on mesh[\"tp\"] (size %d): parallelize_module(block, "
            "mesh[\"tp\"], "
            "{attention q/k/v and MLP up: ColwiseParallel(), out and down: RowwiseParallel()%s})\n"
            "#   pipeline over mesh[\"pp\"] (%d stages): "
            "torch.distributed.pipelining.PipelineStage "
            "of this rank's layers, Schedule%s(stage, n_microbatches=%d)\n"
            "#   data parallel on mesh[\"dp\"] (size %d): fully_shard(block, mesh=mesh[\"dp\"], "
            "mp_policy=MixedPrecisionPolicy(param_dtype=%s)) for each block, then "
            "fully_shard(model, mesh=mesh[\"dp\"])%s\n",
            pp, dp, tp, tp,
            on(option_of(rec, fixed, "sequence-parallel")) ? ", norms: SequenceParallel()" : "", pp,
            !strcmp(str(get(f, "pp"), "schedule", "1f1b"), "gpipe")         ? "GPipe"
            : !strcmp(str(get(f, "pp"), "schedule", "1f1b"), "interleaved") ? "Interleaved1F1B"
                                                                            : "1F1B",
            ga, dp, dtype,
            strcmp(str(fsdp, "sharding_strategy", "full_shard"), "full_shard")
                ? " (reshard_after_forward=False: SHARD_GRAD_OP)"
                : "");
    } else if (tp > 1 || pp > 1) {
        g_string_append_printf(
            s,
            "# Megatron-LM, as simulated: --tensor-model-parallel-size %d "
            "--pipeline-model-parallel-size %d --micro-batch-size %d "
            "--global-batch-size %d --bf16%s%s%s%s\n",
            tp, pp, mb, mb * ga * dp,
            on(option_of(rec, fixed, "sequence-parallel")) ? " --sequence-parallel" : "",
            on(option_of(rec, fixed, "use-distributed-optimizer")) ? " --use-distributed-optimizer"
                                                                   : "",
            on(option_of(rec, fixed, "overlap-grad-reduce")) ? " --overlap-grad-reduce" : "",
            ac          ? " --recompute-granularity full --recompute-method uniform"
            : selective ? " --recompute-granularity selective"
                        : "");
    } else {
        g_string_append_printf(
            s,
            "# PyTorch DDP, as simulated: model = DDP(model, bucket_cap_mb=%g, "
            "gradient_as_bucket_view=%s), torch.autocast(\"cuda\", dtype=%s)\n",
            num(get(f, "ddp"), "bucket_cap_mb"),
            on(option_of(rec, fixed, "gradient-as-bucket-view")) ? "True" : "False", dtype);
    }
    if (ac)
        g_string_append_printf(s,
                               "# Activation checkpointing: apply_activation_checkpointing(model, "
                               "check_fn=lambda m: isinstance(m, DecoderLayer)) on %s\n",
                               every ? "every K-th block (K = --checkpoint-every)" : "every block");
}

bool search_emit_jobs(const SearchSpace *space, GPtrArray *fixed, GPtrArray *ok, int top,
                      const char *dir, GError **error)
{
    if (g_mkdir_with_parents(dir, 0755) != 0)
        return cfg_input_error(error, "option --emit-jobs: cannot create %s: %s", dir,
                               g_strerror(errno));
    for (guint k = 0; k < ok->len && (int)k < top; k++) {
        const cJSON *rec = g_ptr_array_index(ok, k), *f = get(rec, "figures");
        int nodes = (int)num(f, "nodes"), gpn = (int)num(f, "gpus_per_node");
        char *cmd = fsdpsim_command(space, rec, fixed);
        double step = num(f, "step_time_s");
        /* the job's time: 10 steps and start-up, within JSC's 24 h limit of the booster
         * partition (https://apps.fz-juelich.de/jsc/hps/juwels/batchsystem.html) */
        int minutes = (int)MIN(24 * 60, ceil(10 * step / 60) + 20);
        GString *s = g_string_new("#!/bin/bash\n");
        g_string_append_printf(
            s,
            "# fsdpsim search, rank %u: %s\n"
            "# Simulated: step %.3f s, %.0f tokens/s, MFU %.0f%%, peak %.1f GiB per GPU "
            "(fsdpsim %s; model sha256 %.12s, topology sha256 %.12s).\n"
            "# Reproduce: %s\n"
            "#SBATCH --account=<your project>\n"
            "#SBATCH --partition=booster\n"
            "#SBATCH --nodes=%d\n"
            "#SBATCH --ntasks-per-node=1          # torchrun starts the %d processes of a node\n"
            "#SBATCH --gres=gpu:%d\n"
            "#SBATCH --cpus-per-task=48           # JUWELS Booster: 2 x 24-core EPYC 7402 a node\n"
            "#SBATCH --time=%02d:%02d:00\n",
            k + 1, str(rec, "key", ""), step, num(f, "tokens_per_s"), 100 * num(f, "mfu"),
            num(get(f, "memory"), "peak_bytes") / (1 << 30), str(rec, "fsdpsim_version", "?"),
            str(rec, "model_sha256", "?"), str(rec, "topology_sha256", "?"), cmd, nodes, gpn, gpn,
            minutes / 60, minutes % 60);
        pytorch_settings(s, rec, fixed);
        g_string_append_printf(
            s,
            "module load Stages/2024 GCC OpenMPI PyTorch\n"
            "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK\n"
            "# the rendezvous on the first node's InfiniBand name (JSC: hostname + \"i\")\n"
            "MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)i\n"
            "srun torchrun --nnodes=$SLURM_NNODES --nproc_per_node=%d --rdzv_backend=c10d \\\n"
            "    --rdzv_endpoint=$MASTER_ADDR:29500 --rdzv_id=$SLURM_JOB_ID train.py \"$@\"\n",
            gpn);
        char *name = g_strdup_printf("%s/job-%u.sbatch", dir, k + 1);
        GError *io = NULL;
        bool ok1 = g_file_set_contents(name, s->str, (gssize)s->len, &io);
        g_free(name);
        g_string_truncate(s, 0);
        g_string_append_printf(
            s,
            "#!/bin/bash\n"
            "# Check rank %u's prediction before the training job: fsdprun runs the simulated\n"
            "# schedule on the same nodes (MPI, one rank per GPU) and fsdpsim compare prints the\n"
            "# error per op kind (README: Real runs).\n"
            "#SBATCH --account=<your project>\n"
            "#SBATCH --partition=booster\n"
            "#SBATCH --nodes=%d\n"
            "#SBATCH --ntasks-per-node=%d\n"
            "#SBATCH --cpus-per-task=12\n"
            "#SBATCH --time=00:30:00\n"
            "module load Stages/2024 GCC OpenMPI OpenBLAS\n"
            "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK\n"
            "build/src/%s --emit-schedule s-%u.json --trace sim-%u.json\n"
            "srun build/src/fsdprun --schedule s-%u.json --iters 3 --trace real-%u.json\n"
            "build/src/fsdpsim compare --real real-%u.json --sim sim-%u.json\n",
            k + 1, nodes, gpn, cmd, k + 1, k + 1, k + 1, k + 1, k + 1, k + 1);
        name = g_strdup_printf("%s/validate-%u.sbatch", dir, k + 1);
        bool ok2 = ok1 && g_file_set_contents(name, s->str, (gssize)s->len, &io);
        g_free(name);
        g_string_free(s, TRUE);
        g_free(cmd);
        if (!ok2) {
            cfg_input_error(error, "option --emit-jobs: cannot write in %s: %s", dir, io->message);
            g_error_free(io);
            return false;
        }
    }
    return true;
}
