/* parallel: what tensor and pipeline parallelism add to the report (issue 5): one row per
 * pipeline stage with its memory peak and its bubble, measured on the simulated timeline.
 *
 * The bubble of a stage is the time its compute stream is not doing forward or backward work
 * (TP exchanges included, since they block that stream) between the first forward anywhere in
 * the pipeline and the last backward anywhere: the pipeline fill and drain that Narayanan et al.
 * count as (p-1)/m of the ideal time, plus whatever waiting for activations adds. */
#include "report.h"

#include <cjson/cJSON.h>
#include <string.h>

static bool pipeline_op(int compute_stream, const IrOp *op)
{
    return op->stream == compute_stream &&
           (op->phase == IR_PHASE_FORWARD || op->phase == IR_PHASE_BACKWARD) &&
           (op->kind == IR_OP_COMPUTE || op->kind == IR_OP_COLL);
}

/* Model-parallel layouts that waste the machine, with or without a pipeline. */
static void parallel_warnings(Report *r)
{
    const StratLayout *lay = &r->info->layout;
    if (lay->tp > 1 && lay->stride[PAR_DIM_TP] * lay->tp > lay->gpus_per_node)
        g_ptr_array_add(r->warnings,
                        g_strdup_printf("communication: tensor parallelism over %d GPUs spans nodes of %d GPUs: "
                                        "its blocking all-reduces (4 "
                                        "per layer per micro-batch) cross the inter-node network "
                                        "instead of NVLink; Megatron "
                                        "keeps TP inside a node (--tp %d or fewer)",
                                        lay->tp, lay->gpus_per_node, lay->gpus_per_node));
    if (lay->pp > 1 && r->opt->grad_accum < lay->pp)
        g_ptr_array_add(
            r->warnings,
            g_strdup_printf("compute: %d micro-batches for %d pipeline stages: the pipeline never fills, "
                            "every stage idles "
                            "at least %d%% of the time; use --micro-batches of %d or more",
                            r->opt->grad_accum, lay->pp,
                            (int)(100.0 * (lay->pp - 1) / (r->opt->grad_accum + lay->pp - 1)),
                            4 * lay->pp));
}

void report_parallel_build(Report *r)
{
    const StratInfo *info = r->info;
    const IrSchedule *s = r->sched;
    if (!info->class_stage || info->n_class_stage != s->n_classes) {
        parallel_warnings(r); /* TP without a pipeline: one rank class, the plain report */
        return;
    }
    int n_stages = info->layout.pp;
    r->n_stages = n_stages;
    r->stages = g_new0(ReportStage, n_stages);
    int64_t first = INT64_MAX, last = 0;
    double *busy = g_new0(double, s->n_classes);
    double flops_sum = 0, ranks = 0;
    for (int ci = 0; ci < s->n_classes; ci++) {
        const IrClass *c = s->classes[ci];
        const SimClassResult *cr = &r->sim->classes[ci];
        int compute = ir_stream_find(c, "compute"); /* once per class: a strcmp per op was 3 % */
        double flops = 0;
        for (int i = 0; i < sim_op_count(cr, c); i++) {
            const IrOp *op = ir_op(c, sim_op_ir(cr, i));
            if (op->kind == IR_OP_COMPUTE)
                flops += ir_op_compute(c, op)->model_flops;
            if (!pipeline_op(compute, op))
                continue;
            int64_t start = sim_op_start_ns(cr, i), end = sim_op_end_ns(cr, i);
            first = MIN(first, start);
            last = MAX(last, end);
            busy[ci] += sim_ns_to_s(end - start);
        }
        ReportStage *st = &r->stages[info->class_stage[ci]];
        double peak = (double)cr->mem.peak + r->mem_reserved_bytes;
        if (peak > st->peak_bytes) {
            st->peak_bytes = peak;
            for (int k = 0; k < IR_MEM_CATEGORY_COUNT; k++)
                st->breakdown[k] = (double)cr->mem.at_peak[k];
            st->oom = peak > r->mem_capacity_bytes;
        }
        st->model_flops = flops;
        st->sent_bytes = MAX(st->sent_bytes, cr->coll_bytes_sent);
        st->inter_node_bytes = MAX(st->inter_node_bytes, cr->inter_node_bytes_sent);
        flops_sum += flops * c->n_ranks;
        ranks += c->n_ranks;
    }
    double window = first < last ? sim_ns_to_s(last - first) : 0;
    double fraction = 0, bubble = 0;
    for (int ci = 0; ci < s->n_classes; ci++) {
        ReportStage *st = &r->stages[info->class_stage[ci]];
        st->busy_s = busy[ci];
        st->bubble_s = MAX(0, window - busy[ci]);
    }
    for (int k = 0; k < n_stages; k++) {
        bubble += r->stages[k].bubble_s / n_stages;
        fraction += (r->stages[k].busy_s > 0 ? r->stages[k].bubble_s / r->stages[k].busy_s : 0) / n_stages;
    }
    r->pp_bubble_s = bubble;
    r->pp_bubble_fraction = fraction;
    /* Stage 0's bubble is time spent waiting on a posted receive (counted as exposed
     * communication by the timeline metrics) or on nothing (counted as host wait): report it as
     * the bubble instead, so that step = compute + exposed communication + host wait + bubble. */
    double b0 = r->stages[info->class_stage[0]].bubble_s;
    double in_comm = MIN(r->exposed_comm_s, b0);
    r->exposed_comm_s -= in_comm;
    r->idle_s = MAX(0, r->idle_s - (b0 - in_comm));
    /* the job's throughput counts every stage, the memory verdict the fullest one */
    double step = r->step_time_s > 0 ? r->step_time_s : 1e-30;
    r->model_flops_per_gpu = ranks > 0 ? flops_sum / ranks : 0;
    r->tflops_per_gpu = r->model_flops_per_gpu / step / 1e12;
    r->mfu = r->model_flops_per_gpu / step / r->topo->gpu.peak_flops[strat_compute_dtype(r->model, r->opt)];
    int worst = 0;
    for (int k = 1; k < n_stages; k++)
        if (r->stages[k].peak_bytes > r->stages[worst].peak_bytes)
            worst = k;
    r->mem_peak_bytes = r->stages[worst].peak_bytes;
    memcpy(r->mem_breakdown, r->stages[worst].breakdown, sizeof r->mem_breakdown);
    r->oom = r->mem_peak_bytes > r->mem_capacity_bytes;
    g_free(busy);

    parallel_warnings(r);
}

void report_parallel_print(const Report *r, FILE *out)
{
    if (!r->n_stages)
        return;
    const StratLayout *lay = &r->info->layout;
    char *bubble = report_seconds(r->pp_bubble_s);
    fprintf(out, "pipeline     %s, %d stages: bubble %s per stage, %.1f %% of the work (tp %d, dp %d)\n",
            strat_pp_schedule_name(r->opt->pp_schedule), r->n_stages, bubble,
            100 * r->pp_bubble_fraction, lay->tp, lay->dp);
    g_free(bubble);
    if (r->opt->pp_scatter_gather)
        fprintf(out, "             stage boundaries sent as 1/%d per TP rank and all-gathered "
                     "(--pp-scatter-gather %s)\n",
                lay->tp, strat_pp_scatter_gather_name(r->opt->pp_scatter_gather));
    fprintf(out, "             stage  peak memory   busy        bubble      sent (across nodes)\n");
    for (int k = 0; k < r->n_stages; k++) {
        const ReportStage *st = &r->stages[k];
        char *peak = report_bytes(st->peak_bytes), *busy = report_seconds(st->busy_s);
        char *b = report_seconds(st->bubble_s), *sent = report_bytes(st->sent_bytes);
        char *inter = report_bytes(st->inter_node_bytes);
        char *both = g_strdup_printf("%s (%s)", sent, inter);
        fprintf(out, "             %5d  %-12s  %-10s  %-10s  ", k, peak, busy, b);
        if (st->oom)
            fprintf(out, "%-22s  OOM\n", both);
        else
            fprintf(out, "%s\n", both);
        g_free(peak);
        g_free(busy);
        g_free(b);
        g_free(sent);
        g_free(inter);
        g_free(both);
    }
}

void report_parallel_json(const Report *r, void *json_object)
{
    cJSON *o = json_object;
    const StratLayout *lay = &r->info->layout;
    if (lay->tp * lay->pp == 1)
        return;
    cJSON *tp = cJSON_AddObjectToObject(o, "tp");
    cJSON_AddNumberToObject(tp, "size", lay->tp);
    cJSON_AddBoolToObject(tp, "sequence_parallel", r->opt->sequence_parallel && lay->tp > 1);
    cJSON *d = cJSON_AddObjectToObject(o, "dp");
    cJSON_AddNumberToObject(d, "size", lay->dp);
    char *order = strat_order_name(r->opt->order);
    cJSON_AddStringToObject(o, "placement", order);
    g_free(order);
    if (!r->n_stages)
        return;
    cJSON *pp = cJSON_AddObjectToObject(o, "pp");
    cJSON_AddNumberToObject(pp, "size", lay->pp);
    cJSON_AddStringToObject(pp, "schedule", strat_pp_schedule_name(r->opt->pp_schedule));
    cJSON_AddNumberToObject(pp, "virtual_stages",
                            r->opt->pp_schedule == PP_SCHEDULE_INTERLEAVED ? r->opt->virtual_stages : 1);
    cJSON_AddNumberToObject(pp, "micro_batches", r->opt->grad_accum);
    if (r->opt->pp_scatter_gather) /* only when asked: older outputs stay as they were */
        cJSON_AddStringToObject(pp, "scatter_gather",
                                strat_pp_scatter_gather_name(r->opt->pp_scatter_gather));
    cJSON_AddNumberToObject(pp, "bubble_s", r->pp_bubble_s);
    cJSON_AddNumberToObject(pp, "bubble_fraction", r->pp_bubble_fraction);
    cJSON *stages = cJSON_AddArrayToObject(pp, "stages");
    for (int k = 0; k < r->n_stages; k++) {
        const ReportStage *st = &r->stages[k];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "stage", k);
        cJSON_AddNumberToObject(e, "peak_bytes", st->peak_bytes);
        cJSON_AddBoolToObject(e, "oom", st->oom);
        cJSON *bd = cJSON_AddObjectToObject(e, "breakdown");
        for (int i = 0; i < IR_MEM_CATEGORY_COUNT; i++)
            cJSON_AddNumberToObject(bd, ir_mem_category_name((IrMemCategory)i), st->breakdown[i]);
        cJSON_AddNumberToObject(e, "busy_s", st->busy_s);
        cJSON_AddNumberToObject(e, "bubble_s", st->bubble_s);
        cJSON_AddNumberToObject(e, "model_flops", st->model_flops);
        cJSON_AddNumberToObject(e, "sent_bytes", st->sent_bytes);
        cJSON_AddNumberToObject(e, "inter_node_bytes", st->inter_node_bytes);
        cJSON_AddItemToArray(stages, e);
    }
}
