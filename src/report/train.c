/* report: checkpoints and time to train, from the simulated step and the machine's file system
 * and batch rules. Analytic and O(1): a training run is steps x the simulated step plus what
 * saving, restarting and the job limit add to it.
 *
 * Checkpoint content: the fp32 parameters (the master weights under mixed precision) and the
 * optimizer state, 4 + 8 bytes per parameter for Adam(W); what torch.save of model.state_dict()
 * and optimizer.state_dict() writes.
 *
 * FULL_STATE_DICT (FullStateDictConfig(offload_to_cpu=True, rank0_only=True)): FSDP all-gathers
 * one unit at a time, copies it to the CPU and keeps it on rank 0 only
 * (torch/distributed/fsdp/_state_dict_utils.py _full_post_state_dict_hook); the optimizer state
 * is gathered the same way (FSDP.optim_state_dict, _optim_utils.py). Rank 0 then holds the whole
 * checkpoint in host memory and writes one file from one node: the gather through rank 0's link,
 * the copies over its PCIe link and the write at one node's file-system bandwidth, one after the
 * other. Loading it, every rank reads the whole file (torch.load on every rank, then
 * load_state_dict shards it): the file system serves world x the checkpoint, which is why full
 * state dicts take over an hour to resume on a few thousand ranks (huggingface/accelerate#4099).
 *
 * SHARDED_STATE_DICT with torch.distributed.checkpoint (DCP): every rank copies its shard to the
 * host and writes it; the nodes write in parallel, bounded by each node's and the file system's
 * aggregate bandwidth. dcp.async_save blocks only for the copy to host memory and writes in the
 * background (torch/distributed/checkpoint/state_dict_saver.py async_save).
 *
 * Not modelled: metadata and file-creation costs of many small files (DCP writes one file per
 * rank), GPFS contention from other jobs, process launch and NCCL initialisation at restart. */
#include "report.h"

#include <cJSON.h>
#include <math.h>
#include <string.h>

static void checkpoint_build(Report *r)
{
    const ReportTrainOptions *o = r->train_opt;
    const HwTopology *t = r->topo;
    const StratLayout *lay = &r->info->layout;
    ReportCheckpoint *c = &r->checkpoint;
    double state = model_optimizer_state_bytes(r->model->training.optimizer);
    double world = lay->world, nodes = lay->nodes, gpn = lay->gpus_per_node;
    c->present = true;
    /* frozen parameters are saved, but have no optimizer state */
    c->bytes =
        (double)r->model->params * 4 + (double)(r->model->params - r->model->frozen_params) * state;
    if (o->state_dict == REPORT_STATE_DICT_FULL) {
        /* into rank 0: over its NIC from the other nodes, over NVLink inside one node */
        double link = nodes > 1 ? t->nic_Bps : t->gpu_link_Bps;
        double gather_s = world > 1 ? c->bytes * (world - 1) / world / link : 0;
        double d2h_s = c->bytes / t->pcie_Bps;
        double write_s = c->bytes / t->storage_write_Bps_per_node;
        c->save_s = gather_s + d2h_s + (o->async_save ? 0 : write_s);
        c->save_background_s = o->async_save ? write_s : 0;
        c->rank0_host_bytes = c->bytes;
        /* one FSDP unit's fp32 parameters and optimizer state, gathered unsharded on the GPU
         * before the copy to the CPU; DDP and ZeRO-1 replicas already hold the parameters */
        c->rank0_gpu_bytes =
            r->opt->kind == STRAT_FSDP
                ? (double)r->info->largest_unit_numel * (4 + (r->model->frozen_params ? 0 : state))
                : 0;
        double per_node_s = gpn * c->bytes / t->storage_read_Bps_per_node;
        double aggregate_s = world * c->bytes / t->storage_read_Bps;
        c->load_s = MAX(per_node_s, aggregate_s) + c->bytes / t->pcie_Bps / world;
        c->load_host_bytes_per_node = gpn * c->bytes;
    } else {
        double shard = c->bytes / world;
        double d2h_s = shard / t->pcie_Bps;
        double write_s =
            MAX(c->bytes / nodes / t->storage_write_Bps_per_node, c->bytes / t->storage_write_Bps);
        c->save_s = d2h_s + (o->async_save ? 0 : write_s);
        c->save_background_s = o->async_save ? write_s : 0;
        c->rank0_host_bytes = shard; /* the shard staged in host memory */
        c->rank0_gpu_bytes = 0;
        c->load_s =
            MAX(c->bytes / nodes / t->storage_read_Bps_per_node, c->bytes / t->storage_read_Bps) +
            shard / t->pcie_Bps;
        c->load_host_bytes_per_node = gpn * shard;
    }
    if (c->rank0_host_bytes > t->host_memory_bytes) {
        char *need = report_bytes(c->rank0_host_bytes), *have = report_bytes(t->host_memory_bytes);
        report_warn(
            r,
            "memory: checkpoint: a full state dict gathers %s (fp32 parameters and optimizer "
            "state) into rank 0's host memory, more than a %s node's %s: the save "
            "fails; use --state-dict sharded (torch.distributed.checkpoint)",
            need, t->name, have);
        g_free(need), g_free(have);
    }
    if (o->state_dict == REPORT_STATE_DICT_FULL &&
        c->load_host_bytes_per_node > t->host_memory_bytes) {
        char *need = report_bytes(c->load_host_bytes_per_node),
             *have = report_bytes(t->host_memory_bytes);
        report_warn(
            r,
            "memory: checkpoint: loading a full state dict, each of a node's %d ranks reads the "
            "whole file into host memory: %s per node, more than the node's %s",
            lay->gpus_per_node, need, have);
        g_free(need), g_free(have);
    }
}

/* The initialisation a restart repeats: deferred (meta) for FSDP, on the GPU otherwise, as the
 * report's initialisation section computes them (src/strategy/init.c). */
static double init_time_s(const Report *r)
{
    if (!r->init)
        return 0;
    const char *want = r->opt->kind == STRAT_FSDP ? "meta" : "cuda";
    for (int i = 0; i < r->init->n_modes; i++)
        if (strcmp(r->init->modes[i].name, want) == 0)
            return r->init->modes[i].time_s;
    return 0;
}

static void train_build(Report *r)
{
    const ReportTrainOptions *o = r->train_opt;
    const StratLayout *lay = &r->info->layout;
    ReportTrain *tr = &r->train;
    const ReportCheckpoint *c = &r->checkpoint;
    double step = r->step_time_s;
    double tokens_per_step = r->tokens_per_s * step; /* the whole job's */
    tr->present = true;
    tr->steps = o->steps > 0 ? o->steps : ceil(o->tokens / tokens_per_step);
    tr->tokens = tr->steps * tokens_per_step;
    tr->compute_s = tr->steps * step;
    /* the job's mean time between failures, and Young's interval sqrt(2 C M) with Daly's
     * first-order correction - C (J. W. Young, CACM 17(9) 1974; J. T. Daly, FGCS 22(3) 2006) */
    double mtbf_s =
        o->failures_per_node_hour > 0 ? 3600 / (o->failures_per_node_hour * lay->nodes) : INFINITY;
    if (o->save_every > 0) {
        tr->save_every_steps = o->save_every;
    } else if (isfinite(mtbf_s)) {
        double cost = MAX(c->save_s, 1e-9);
        double interval = cost < mtbf_s / 2 ? sqrt(2 * cost * mtbf_s) - cost : mtbf_s;
        tr->save_every_steps = MAX(1, round(interval / step));
        tr->young_daly = true;
    }
    tr->max_job_s = o->max_job_s > 0 ? o->max_job_s : r->topo->max_job_s;
    if (tr->max_job_s <= 0) {
        tr->max_job_s = 24 * 3600; /* JSC's batch limit (topologies/juwels-booster.json) */
        tr->max_job_assumed = true;
    }
    tr->init_s = init_time_s(r);
    tr->restart_s = tr->init_s + c->load_s;
    double saves = tr->save_every_steps > 0 ? floor(tr->steps / tr->save_every_steps) : 0;
    double work = tr->compute_s + saves * c->save_s;
    /* expected failures over the run, each losing half an interval of work and a restart */
    double interval_s = tr->save_every_steps > 0 ? tr->save_every_steps * step + c->save_s : work;
    double failures = isfinite(mtbf_s) ? work / mtbf_s : 0;
    tr->failure_loss_s = failures * (interval_s / 2 + tr->restart_s);
    work += tr->failure_loss_s;
    /* every job but the last ends with a save before the limit, and every job but the first
     * starts by loading one: jobs = 1 + ceil((work - first job's share) / later jobs' share) */
    double first = tr->max_job_s - tr->init_s;
    double later = tr->max_job_s - tr->restart_s - c->save_s;
    if (work <= first) {
        tr->jobs = 1;
    } else if (later <= 0) {
        char *limit = report_seconds(tr->max_job_s), *restart = report_seconds(tr->restart_s);
        report_warn(r,
                    "host: time to train: a restart (%s, initialisation and checkpoint load) and a "
                    "save leave no time in a job of %s; not counted in jobs",
                    restart, limit);
        g_free(limit), g_free(restart);
        tr->jobs = 1;
    } else {
        tr->jobs = 1 + (int)ceil((work - (first - c->save_s)) / later);
    }
    tr->checkpoint_overhead_s = saves * c->save_s + (tr->jobs - 1) * c->save_s;
    tr->time_s = work + (tr->jobs - 1) * c->save_s + tr->init_s + (tr->jobs - 1) * tr->restart_s;
    tr->node_hours = lay->nodes * tr->time_s / 3600;
    tr->core_hours = tr->node_hours * r->topo->cores_per_node;
}

void report_train_build(Report *r)
{
    memset(&r->checkpoint, 0, sizeof r->checkpoint);
    memset(&r->train, 0, sizeof r->train);
    if (!r->train_opt || !r->train_opt->checkpoint)
        return;
    checkpoint_build(r);
    if (r->train_opt->tokens > 0 || r->train_opt->steps > 0)
        train_build(r);
}

/* Days above a day, else the report's seconds. */
static char *duration(double s)
{
    return s >= 86400 ? g_strdup_printf("%.2f days", s / 86400) : report_seconds(s);
}

void report_train_print(const Report *r, FILE *out)
{
    const ReportCheckpoint *c = &r->checkpoint;
    const ReportTrain *tr = &r->train;
    if (!c->present)
        return;
    char *size = report_bytes(c->bytes), *save = report_seconds(c->save_s);
    char *load = report_seconds(c->load_s), *host = report_bytes(c->rank0_host_bytes);
    char *gpu = report_bytes(c->rank0_gpu_bytes);
    fprintf(out, "\ncheckpoint   %s state dict%s to %s: %s (fp32 parameters and optimizer state)\n",
            r->train_opt->state_dict == REPORT_STATE_DICT_FULL ? "full (rank 0)" : "sharded (DCP)",
            r->train_opt->async_save ? ", async save" : "",
            r->topo->storage_name ? r->topo->storage_name : "the file system", size);
    fprintf(out, "             save blocks training %s", save);
    if (c->save_background_s > 0) {
        char *bg = report_seconds(c->save_background_s);
        fprintf(out, " (then %s written in the background)", bg);
        g_free(bg);
    }
    fprintf(out,
            ", load at restart %s\n             rank 0 needs %s of host memory and %s more "
            "GPU memory to save\n",
            load, host, gpu);
    g_free(size), g_free(save), g_free(load), g_free(host), g_free(gpu);
    if (!tr->present)
        return;
    char *wall = duration(tr->time_s), *training = duration(tr->compute_s);
    if (r->model->token_input)
        fprintf(out, "time to train %.4g tokens (%.0f steps)", tr->tokens, tr->steps);
    else
        fprintf(out, "time to train %.0f steps (%.4g samples)", tr->steps,
                tr->steps * r->samples_per_s * r->step_time_s);
    fprintf(out, ": %s wall-clock in %d job%s of at most %.0f h%s\n", wall, tr->jobs,
            tr->jobs == 1 ? "" : "s", tr->max_job_s / 3600,
            tr->max_job_assumed ? " (assumed: the topology has no accounting section)" : "");
    char *ck = report_seconds(tr->checkpoint_overhead_s), *rs = report_seconds(tr->restart_s);
    fprintf(out, "             training %s; checkpoints %s (", training, ck);
    g_free(wall), g_free(training);
    if (tr->save_every_steps > 0)
        fprintf(out, "every %.0f steps%s", tr->save_every_steps,
                tr->young_daly ? ", Young/Daly's interval" : "");
    else
        fprintf(out, "none during a job");
    fprintf(out, "%s); each restart %s\n", tr->jobs > 1 ? ", plus one at the end of each job" : "",
            rs);
    g_free(ck), g_free(rs);
    if (tr->failure_loss_s > 0) {
        char *fl = report_seconds(tr->failure_loss_s);
        fprintf(out, "             failures cost %s (rework and restarts)\n", fl);
        g_free(fl);
    }
    fprintf(out, "             charged %.*f node-hours", tr->node_hours >= 100 ? 0 : 3,
            tr->node_hours);
    if (r->topo->cores_per_node > 0)
        fprintf(out, " = %.4g core-hours (whole nodes x wall-clock x %d cores)", tr->core_hours,
                r->topo->cores_per_node);
    fprintf(out, "\n");
}

void report_train_json(const Report *r, void *json_object)
{
    cJSON *o = json_object;
    const ReportCheckpoint *c = &r->checkpoint;
    const ReportTrain *tr = &r->train;
    if (c->present) {
        cJSON *j = cJSON_AddObjectToObject(o, "checkpoint");
        cJSON_AddStringToObject(j, "state_dict",
                                r->train_opt->state_dict == REPORT_STATE_DICT_FULL ? "full"
                                                                                   : "sharded");
        cJSON_AddBoolToObject(j, "async", r->train_opt->async_save);
        cJSON_AddNumberToObject(j, "bytes", c->bytes);
        cJSON_AddNumberToObject(j, "save_s", c->save_s);
        cJSON_AddNumberToObject(j, "save_background_s", c->save_background_s);
        cJSON_AddNumberToObject(j, "load_s", c->load_s);
        cJSON_AddNumberToObject(j, "rank0_host_bytes", c->rank0_host_bytes);
        cJSON_AddNumberToObject(j, "rank0_gpu_bytes", c->rank0_gpu_bytes);
        cJSON_AddNumberToObject(j, "load_host_bytes_per_node", c->load_host_bytes_per_node);
    }
    if (tr->present) {
        cJSON *j = cJSON_AddObjectToObject(o, "train");
        cJSON_AddNumberToObject(j, "tokens", tr->tokens);
        cJSON_AddNumberToObject(j, "steps", tr->steps);
        cJSON_AddNumberToObject(j, "time_s", tr->time_s);
        cJSON_AddNumberToObject(j, "compute_s", tr->compute_s);
        cJSON_AddNumberToObject(j, "jobs", tr->jobs);
        cJSON_AddNumberToObject(j, "max_job_s", tr->max_job_s);
        cJSON_AddNumberToObject(j, "save_every_steps", tr->save_every_steps);
        cJSON_AddNumberToObject(j, "checkpoint_overhead_s", tr->checkpoint_overhead_s);
        cJSON_AddNumberToObject(j, "restart_s", tr->restart_s);
        cJSON_AddNumberToObject(j, "failure_loss_s", tr->failure_loss_s);
        cJSON_AddNumberToObject(j, "node_hours", tr->node_hours);
        cJSON_AddNumberToObject(j, "core_hours", tr->core_hours);
    }
}
