/* summary: the human-readable report and the --json object. */
#include "report.h"
#include "../util/cfg.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

static const char *strategy_label(const StratOptions *opt)
{
    return opt->zero1 ? "zero1" : opt->kind == STRAT_DDP ? "ddp" : strat_sharding_name(opt->sharding);
}

static void print_layout(const Report *r, FILE *out)
{
    const StratLayout *lay = &r->info->layout;
    const StratOptions *opt = r->opt;
    fprintf(out, "strategy     %s",
            opt->zero1 ? "ZeRO-1 (optimizer state sharded)" : opt->kind == STRAT_DDP ? "DDP" : "FSDP ");
    if (opt->kind == STRAT_FSDP) {
        if (opt->fsdp_version == 2)
            fprintf(out, "fully_shard (FSDP2), ");
        fprintf(out, "%s", strat_sharding_name(opt->sharding));
        if (opt->sharding == SHARD_HYBRID_SHARD || opt->sharding == SHARD_HYBRID_ZERO2)
            fprintf(out, ": shard groups of %d GPUs, %d replicas", lay->shard_size,
                    lay->replicate_size);
        else if (opt->sharding != SHARD_NO_SHARD && lay->tp * lay->pp > 1)
            fprintf(out, ": sharded over the %d GPUs of each data-parallel group", lay->shard_size);
        else if (opt->sharding != SHARD_NO_SHARD)
            fprintf(out, ": sharded over all %d GPUs", lay->shard_size);
    } else {
        fprintf(out, ": %d replicas", lay->replicate_size);
    }
    fprintf(out, "\n             %s\n", r->info->wrap_description);
    if (opt->kind == STRAT_FSDP && opt->fsdp_version == 2) {
        int raf = opt->reshard_after_forward;
        if (raf < 0)
            raf = opt->sharding == SHARD_FULL_SHARD || opt->sharding == SHARD_HYBRID_SHARD;
        fprintf(out, "             reshard_after_forward=");
        if (raf > 1)
            fprintf(out, "%d", raf);
        else
            fprintf(out, "%s", raf ? "True" : "False");
        fprintf(out, ", per-parameter shards (dim 0), implicit prefetch, cpu_offload=%s\n",
                opt->cpu_offload ? "true" : "false");
    } else if (opt->kind == STRAT_FSDP)
        fprintf(out,
                "             backward_prefetch=%s forward_prefetch=%s limit_all_gathers=%s "
                "cpu_offload=%s\n",
                strat_prefetch_name(opt->backward_prefetch),
                opt->forward_prefetch ? "true" : "false", opt->limit_all_gathers ? "true" : "false",
                opt->cpu_offload ? "true" : "false");
    /* printed only when on: runs without it read as before, byte for byte */
    if (opt->offload_optimizer)
        fprintf(out, "             offload_optimizer=cpu (DeepSpeed ZeRO-Offload): fp32 master "
                     "weights, Adam state and the step (DeepSpeedCPUAdam) on the host\n");
    fprintf(out, "             ");
    if (opt->mixed_precision)
        fprintf(out, "mixed precision: param_dtype %s, reduce_dtype %s",
                hw_dtype_name(opt->param_dtype), hw_dtype_name(strat_grad_reduce_dtype(opt)));
    else
        fprintf(out, "full precision (fp32%s)",
                opt->allow_tf32 ? ", matmuls on TF32 tensor cores" : ", matmuls in fp32");
    if (opt->fp8_format != STRAT_FP8_OFF)
        fprintf(out, "; fp8 linear layers (Transformer Engine, %s)",
                strat_fp8_format_name(opt->fp8_format));
    if (r->model->compiled)
        fprintf(out, "; torch.compile");
    if (r->model->nchw_convs > 0)
        fprintf(out, "; NCHW tensors: cuDNN transposes around %d convolutions",
                r->model->nchw_convs);
    else if (opt->channels_last)
        fprintf(out, "; channels_last");
    if (opt->activation_checkpointing && opt->checkpoint_every > 1)
        fprintf(out, "; activation checkpointing on every %d blocks", opt->checkpoint_every);
    else
        fprintf(out, "; activation checkpointing %s", opt->activation_checkpointing ? "on" : "off");
    if (opt->recompute_selective)
        fprintf(out, "; selective recomputation (attention cores)%s",
                strat_recomputes_every_block(opt)  ? ": no effect, every block is recomputed whole"
                : opt->activation_checkpointing ? " in the blocks not checkpointed"
                                                : "");
    fprintf(out, "\n");
}

void report_print_summary(const Report *r, FILE *out)
{
    const Model *m = r->model;
    const StratLayout *lay = &r->info->layout;
    const ModelTraining *t = &m->training;
    fprintf(out, "fsdpsim: %s on %s, %d node%s x %d GPUs = %d x %s\n", m->name, r->topo->name,
            lay->nodes, lay->nodes == 1 ? "" : "s", lay->gpus_per_node, lay->world,
            r->topo->gpu.name);
    fprintf(out, "model        %.3f B parameters", (double)m->params / 1e9);
    if (m->token_input)
        fprintf(out,
                ", sequence %d, micro-batch %d, gradient accumulation %d -> %.0f tokens per GPU "
                "per step\n",
                t->seq_len, t->micro_batch, r->opt->grad_accum, r->info->tokens_per_step);
    else
        fprintf(out,
                ", micro-batch %d, gradient accumulation %d -> %.0f samples per GPU per step\n",
                t->micro_batch, r->opt->grad_accum, r->info->samples_per_step);
    fprintf(out, "             optimizer %s", model_optimizer_name(t->optimizer));
    if (m->frozen_params > 0)
        fprintf(out, "; %.4g M of the parameters train, the rest are frozen (LoRA)",
                (double)(m->params - m->frozen_params) / 1e6);
    fprintf(out, "\n");
    print_layout(r, out);
    report_parallel_print(r, out);

    char *step = report_seconds(r->step_time_s), *comp = report_seconds(r->compute_s);
    char *exp = report_seconds(r->exposed_comm_s), *idle = report_seconds(r->idle_s);
    fprintf(out,
            "\nstep time    %s  (GPU computing %s, exposed communication %s, waiting for the host "
            "%s)\n",
            step, comp, exp, idle);
    g_free(step), g_free(comp), g_free(exp), g_free(idle);
    if (r->band.present) {
        char *lo = report_seconds(r->step_time_s * r->band.factor_low);
        char *hi = report_seconds(r->step_time_s * r->band.factor_high);
        const char *kind = strcmp(r->band.family, "*") == 0 ? "training" : r->band.family;
        char *from = r->band.sources > 1 ? g_strdup_printf(" from %d sources", r->band.sources)
                                         : g_strdup("");
        fprintf(out,
                "             likely %s to %s: the 10th-90th percentile of this tool's error on "
                "%d published %s runs%s on such GPUs (README, How far to trust it)\n",
                lo, hi, r->band.rows, kind, from);
        g_free(from);
        g_free(lo), g_free(hi);
    }
    double pace = hw_gpu_pace(&r->topo->gpu, r->info->layout.world);
    if (pace > 1.0005)
        fprintf(out, "slowest GPU  compute %.1f %% slower than one GPU alone: the slowest of %d GPUs "
                     "(speed spread %.2f %%) paces the job\n",
                100 * (pace - 1), r->info->layout.world, 100 * r->topo->gpu.speed_spread);
    if (r->overlap_cost_s > 0) {
        char *cost = report_seconds(r->overlap_cost_s);
        fprintf(out, "overlap cost %s of the computing: kernels slowed by NCCL running beside them "
                     "(its SMs and HBM traffic)\n", cost);
        g_free(cost);
    }
    if (m->token_input)
        fprintf(out, "throughput   %.0f tokens/s (%.0f per GPU)\n", r->tokens_per_s,
                r->tokens_per_s / lay->world);
    else
        fprintf(out, "throughput   %.1f samples/s (%.1f per GPU)\n", r->samples_per_s,
                r->samples_per_s / lay->world);
    fprintf(out, "compute      %.1f model TFLOP/s per GPU, MFU %.1f %%\n", r->tflops_per_gpu,
            100 * r->mfu);

    char *peak = report_bytes(r->mem_peak_bytes), *cap = report_bytes(r->mem_capacity_bytes);
    fprintf(out, "\nmemory/GPU   peak %s of %s: %s\n", peak, cap,
            r->oom ? "OUT OF MEMORY" : "fits");
    g_free(peak), g_free(cap);
    fprintf(out, "             at the peak:");
    for (int i = 0; i < IR_MEM_CATEGORY_COUNT; i++) {
        char *b = report_bytes(r->mem_breakdown[i]);
        fprintf(out, " %s %s,", ir_mem_category_name((IrMemCategory)i), b);
        g_free(b);
    }
    char *res = report_bytes(r->mem_reserved_bytes);
    fprintf(out, " reserved %s\n", res);
    g_free(res);

    char *sent = report_bytes(r->comm_bytes_per_gpu),
         *inter = report_bytes(r->inter_node_bytes_per_gpu);
    /* the rows sum nccl-tests' sizes (an all-gather's whole output), not the bytes sent: said
     * here, as the links' caption says what theirs are; a send's size is what it sends */
    bool kinds = r->send.count > 0 || r->recv.count > 0;
    for (int k = 0; k < IR_COLL_KIND_COUNT; k++)
        kinds = kinds || r->coll[k].count > 0;
    /* a pipeline's stages communicate differently (the first sends activations and receives
     * gradients, the last the other way round; each holds its own layers' collectives): the
     * figures say whose they are */
    char *whose =
        r->comm_stage >= 0 ? g_strdup_printf("GPU of stage %d", r->comm_stage) : g_strdup("GPU");
    fprintf(out, "\ncommunication per %s per step: %s sent, %s of it across nodes%s\n", whose, sent,
            inter,
            kinds ? " (by kind: calls, sizes as nccl-tests gives them, time in flight)" : "");
    g_free(whose), g_free(sent), g_free(inter);
    for (int k = 0; k < IR_COLL_KIND_COUNT + 2; k++) {
        const ReportCollStats *s = k < IR_COLL_KIND_COUNT    ? &r->coll[k]
                                   : k == IR_COLL_KIND_COUNT ? &r->send
                                                             : &r->recv;
        if (!s->count)
            continue;
        const char *name = k < IR_COLL_KIND_COUNT    ? ir_coll_kind_name((IrCollKind)k)
                           : k == IR_COLL_KIND_COUNT ? "send"
                                                     : "recv";
        char *bytes = report_bytes(s->bytes), *time = report_seconds(s->time_s);
        fprintf(out, "  %-15s %5d calls  %12s  %12s in flight\n", name, s->count, bytes, time);
        g_free(bytes), g_free(time);
    }
    if (r->sim->n_links > 0) {
        /* the busy time too: links loaded alike but for when (a pipeline's stages' NICs) are
         * rows of their own, which looked like one row repeated */
        fprintf(out, "busiest links (flow model: time their bytes take at full rate, time with "
                     "load, peak use):\n");
        for (int i = 0; i < MIN(r->sim->n_links, 4); i++) {
            const SimLink *l = &r->sim->links[i];
            char *bytes = report_bytes(l->stats.bytes);
            char *full = report_seconds(l->stats.bytes / l->capacity_Bps);
            char *busy = report_seconds(sim_ns_to_s(l->stats.busy_ns));
            char *alike =
                l->alike > 1 ? g_strdup_printf(" (and %d more alike)", l->alike - 1) : g_strdup("");
            fprintf(out, "  %-20s %12s  %12s at %.0f GB/s, busy %s, peak %3.0f %%%s\n", l->name,
                    bytes, full, l->capacity_Bps / 1e9, busy, 100 * l->stats.peak_util, alike);
            g_free(bytes), g_free(full), g_free(busy), g_free(alike);
        }
    }
    if (r->init) {
        fprintf(out, "\ninitialisation (once):\n");
        for (int i = 0; i < r->init->n_modes; i++) {
            const InitMode *im = &r->init->modes[i];
            char *gp = report_bytes(im->gpu_peak_bytes), *tm = report_seconds(im->time_s);
            fprintf(out, "  %-5s GPU peak %10s%s", im->name, gp, im->gpu_oom ? " (OOM)" : "");
            if (im->host_bytes_per_node > 0) {
                char *hb = report_bytes(im->host_bytes_per_node);
                fprintf(out, ", host %s per node%s", hb, im->host_oom ? " (OOM)" : "");
                g_free(hb);
            }
            fprintf(out, ", %s  %s\n", tm, im->description);
            g_free(gp), g_free(tm);
        }
        if (r->init->sync_module_states_s > 0) {
            char *bs = report_seconds(r->init->sync_module_states_s);
            fprintf(out, "  %s: %s\n", r->init->sync_description, bs);
            g_free(bs);
        } else if (r->init->sync_description) {
            fprintf(out, "  %s\n", r->init->sync_description);
        }
    }
    report_train_print(r, out);
    if (r->errors && r->errors->len) {
        fprintf(out, "\nerrors:\n");
        for (guint i = 0; i < r->errors->len; i++)
            fprintf(out, "  - %s\n", (const char *)r->errors->pdata[i]);
    }
    if (r->warnings->len) {
        fprintf(out, "\nwarnings:\n");
        for (guint i = 0; i < r->warnings->len; i++)
            fprintf(out, "  - %s\n", (const char *)r->warnings->pdata[i]);
    }
}

char *report_to_json(const Report *r)
{
    const StratLayout *lay = &r->info->layout;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_name", r->model->name);
    cJSON_AddStringToObject(o, "topology", r->topo->name);
    cJSON_AddStringToObject(o, "strategy", strategy_label(r->opt));
    if (r->opt->recompute_selective) /* absent when off: the object of earlier runs unchanged */
        cJSON_AddStringToObject(o, "recompute_granularity", "selective");
    cJSON_AddNumberToObject(o, "nodes", lay->nodes);
    cJSON_AddNumberToObject(o, "gpus_per_node", lay->gpus_per_node);
    cJSON_AddNumberToObject(o, "world_size", lay->world);
    cJSON_AddNumberToObject(o, "step_time_s", r->step_time_s);
    if (r->band.present) {
        cJSON_AddNumberToObject(o, "step_time_s_low", r->step_time_s * r->band.factor_low);
        cJSON_AddNumberToObject(o, "step_time_s_high", r->step_time_s * r->band.factor_high);
    }
    if (r->model->token_input)
        cJSON_AddNumberToObject(o, "tokens_per_s", r->tokens_per_s);
    if (r->model->token_input && r->band.present) {
        cJSON_AddNumberToObject(o, "tokens_per_s_low", r->tokens_per_s / r->band.factor_high);
        cJSON_AddNumberToObject(o, "tokens_per_s_high", r->tokens_per_s / r->band.factor_low);
    }
    cJSON_AddNumberToObject(o, "samples_per_s", r->samples_per_s);
    cJSON_AddNumberToObject(o, "tflops_per_gpu", r->tflops_per_gpu);
    cJSON_AddNumberToObject(o, "mfu", r->mfu);
    cJSON *time = cJSON_AddObjectToObject(o, "time");
    cJSON_AddNumberToObject(time, "compute_s", r->compute_s);
    cJSON_AddNumberToObject(time, "communication_s", r->comm_s);
    cJSON_AddNumberToObject(time, "exposed_communication_s", r->exposed_comm_s);
    cJSON_AddNumberToObject(time, "host_wait_s", r->idle_s);
    cJSON_AddNumberToObject(time, "overlap_cost_s", r->overlap_cost_s);
    for (int p = 0; p < IR_PHASE_COUNT; p++) {
        char key[64];
        g_snprintf(key, sizeof key, "%s_compute_s", ir_phase_name((IrPhase)p));
        cJSON_AddNumberToObject(time, key, r->time_by_phase[p]);
    }
    cJSON *mem = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(mem, "peak_bytes", r->mem_peak_bytes);
    cJSON_AddNumberToObject(mem, "capacity_bytes", r->mem_capacity_bytes);
    cJSON_AddBoolToObject(mem, "oom", r->oom);
    cJSON_AddNumberToObject(mem, "peak_time_s", r->mem_peak_time_s);
    cJSON *bd = cJSON_AddObjectToObject(mem, "breakdown");
    for (int i = 0; i < IR_MEM_CATEGORY_COUNT; i++)
        cJSON_AddNumberToObject(bd, ir_mem_category_name((IrMemCategory)i), r->mem_breakdown[i]);
    cJSON_AddNumberToObject(bd, "reserved", r->mem_reserved_bytes);
    cJSON *comm = cJSON_AddObjectToObject(o, "communication");
    cJSON_AddNumberToObject(comm, "bytes_per_gpu", r->comm_bytes_per_gpu);
    cJSON_AddNumberToObject(comm, "inter_node_bytes_per_gpu", r->inter_node_bytes_per_gpu);
    cJSON_AddNumberToObject(comm, "exposed_s", r->exposed_comm_s);
    cJSON *kinds = cJSON_AddObjectToObject(comm, "collectives");
    for (int k = 0; k < IR_COLL_KIND_COUNT; k++) {
        if (!r->coll[k].count)
            continue;
        cJSON *c = cJSON_AddObjectToObject(kinds, ir_coll_kind_name((IrCollKind)k));
        cJSON_AddNumberToObject(c, "count", r->coll[k].count);
        cJSON_AddNumberToObject(c, "bytes", r->coll[k].bytes);
        cJSON_AddNumberToObject(c, "time_s", r->coll[k].time_s);
    }
    /* added beside "collectives" (whose sizes are nccl-tests'), not in it: a pipeline's
     * sends and receives, and the stage the figures are of */
    if (r->comm_stage >= 0)
        cJSON_AddNumberToObject(comm, "stage", r->comm_stage);
    cJSON *p2p = r->send.count || r->recv.count
                     ? cJSON_AddObjectToObject(comm, "point_to_point")
                     : NULL; /* absent without: other runs' JSON as it was */
    const ReportCollStats *p2p_stats[] = {&r->send, &r->recv};
    for (int k = 0; p2p && k < 2; k++) {
        if (!p2p_stats[k]->count)
            continue;
        cJSON *c = cJSON_AddObjectToObject(p2p, k ? "recv" : "send");
        cJSON_AddNumberToObject(c, "count", p2p_stats[k]->count);
        cJSON_AddNumberToObject(c, "bytes", p2p_stats[k]->bytes);
        cJSON_AddNumberToObject(c, "time_s", p2p_stats[k]->time_s);
    }
    cJSON *links = cJSON_AddArrayToObject(comm, "busiest_links");
    for (int i = 0; i < r->sim->n_links; i++) {
        const SimLink *l = &r->sim->links[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", l->name);
        cJSON_AddStringToObject(j, "kind", net_link_kind_name(l->kind));
        cJSON_AddNumberToObject(j, "capacity_Bps", l->capacity_Bps);
        cJSON_AddNumberToObject(j, "bytes", l->stats.bytes);
        cJSON_AddNumberToObject(j, "busy_s", sim_ns_to_s(l->stats.busy_ns));
        cJSON_AddNumberToObject(j, "peak_utilisation", l->stats.peak_util);
        cJSON_AddNumberToObject(j, "links_alike", l->alike);
        cJSON_AddItemToArray(links, j);
    }
    cJSON *model = cJSON_AddObjectToObject(o, "model");
    cJSON_AddNumberToObject(model, "params", (double)r->model->params);
    cJSON_AddNumberToObject(model, "trainable_params",
                            (double)(r->model->params - r->model->frozen_params));
    cJSON_AddNumberToObject(model, "flops_per_step_per_gpu", r->model_flops_per_gpu);
    cJSON_AddNumberToObject(model, "seq_len", r->model->training.seq_len);
    cJSON_AddNumberToObject(model, "micro_batch_size", r->model->training.micro_batch);
    cJSON_AddNumberToObject(model, "grad_accum", r->opt->grad_accum);
    if (r->opt->fp8_format != STRAT_FP8_OFF) /* only then: other runs' JSON as before */
        cJSON_AddStringToObject(model, "fp8_format", strat_fp8_format_name(r->opt->fp8_format));
    if (r->opt->kind == STRAT_FSDP) {
        cJSON *f = cJSON_AddObjectToObject(o, "fsdp");
        cJSON_AddStringToObject(f, "sharding_strategy", strat_sharding_name(r->opt->sharding));
        cJSON_AddNumberToObject(f, "version", r->opt->fsdp_version);
        cJSON_AddNumberToObject(f, "padded_params", (double)r->info->padded_params);
        cJSON_AddNumberToObject(f, "units", r->info->n_units);
        cJSON_AddNumberToObject(f, "largest_unit_params", (double)r->info->largest_unit_numel);
        cJSON_AddNumberToObject(f, "shard_group_size", lay->shard_size);
        cJSON_AddNumberToObject(f, "replicate_group_size", lay->replicate_size);
        cJSON_AddStringToObject(f, "backward_prefetch",
                                strat_prefetch_name(r->opt->backward_prefetch));
        cJSON_AddBoolToObject(f, "forward_prefetch", r->opt->forward_prefetch);
        cJSON_AddBoolToObject(f, "limit_all_gathers", r->opt->limit_all_gathers);
        cJSON_AddBoolToObject(f, "cpu_offload", r->opt->cpu_offload);
        if (r->opt->offload_optimizer) /* absent when off: other runs' JSON as before */
            cJSON_AddStringToObject(f, "offload_optimizer", "cpu");
    } else {
        cJSON *d = cJSON_AddObjectToObject(o, "ddp");
        cJSON_AddNumberToObject(d, "buckets", r->info->n_buckets);
        cJSON_AddNumberToObject(d, "bucket_cap_mb", r->opt->bucket_cap_mb);
    }
    report_parallel_json(r, o);
    if (r->init) {
        cJSON *init = cJSON_AddObjectToObject(o, "init");
        for (int i = 0; i < r->init->n_modes; i++) {
            const InitMode *im = &r->init->modes[i];
            cJSON *mo = cJSON_AddObjectToObject(init, im->name);
            cJSON_AddNumberToObject(mo, "gpu_peak_bytes", im->gpu_peak_bytes);
            cJSON_AddNumberToObject(mo, "host_bytes_per_node", im->host_bytes_per_node);
            cJSON_AddNumberToObject(mo, "time_s", im->time_s);
            cJSON_AddBoolToObject(mo, "gpu_oom", im->gpu_oom);
            cJSON_AddBoolToObject(mo, "host_oom", im->host_oom);
        }
        cJSON_AddNumberToObject(init, "sync_module_states_s", r->init->sync_module_states_s);
    }
    report_train_json(r, o);
    cJSON *e = cJSON_AddArrayToObject(o, "errors");
    for (guint i = 0; r->errors && i < r->errors->len; i++)
        cJSON_AddItemToArray(e, cJSON_CreateString(r->errors->pdata[i]));
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (guint i = 0; i < r->warnings->len; i++)
        cJSON_AddItemToArray(w, cJSON_CreateString(r->warnings->pdata[i]));
    cJSON *sim = cJSON_AddObjectToObject(o, "simulation");
    cJSON_AddNumberToObject(sim, "events", (double)r->sim->events);
    cJSON_AddNumberToObject(sim, "ops", sim_op_count(&r->sim->classes[0], r->sched->classes[0]));
    cJSON_AddNumberToObject(sim, "rank_classes", r->sched->n_classes);
    char *text = cfg_json_print(o, true);
    cJSON_Delete(o);
    return text;
}
