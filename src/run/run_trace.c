/* run_trace: the real run as a Chrome trace, in the shape of the simulator's (src/report/trace.c):
 * complete ("X") events with the same name, cat (op kind or collective kind) and args (op, phase,
 * bytes), one process per RANK (the simulator has one per rank class) and one thread per stream.
 * Measured iterations only, on each rank's clock from the start of the first measured iteration.
 * otherData.step_time_s lists each iteration's step time: the latest end of any op on any rank
 * after that rank left the barrier that starts the iteration. Both backends write this format
 * (otherData.backend says which); the nccl backend's GPU ops are timed with cudaEvents. */
#include "run.h"

#include "../report/report.h"
#include "../util/cfg.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

/* This rank's events as a JSON array text. */
static char *rank_events(const IrSchedule *s, int rank, const RunTimes *t)
{
    const IrClass *c = s->classes[ir_class_of_rank(s, rank)];
    cJSON *events = cJSON_CreateArray();
    int pid = rank + 1;
    char *pname = g_strdup_printf("rank %d (real)", rank);
    cJSON_AddItemToArray(events, report_trace_meta_event("process_name", pid, 0, pname));
    g_free(pname);
    for (int k = 0; k < c->n_streams; k++)
        cJSON_AddItemToArray(
            events, report_trace_meta_event("thread_name", pid, k + 1, c->streams[k].name));
    for (int it = 0; it < t->iters; it++) {
        int64_t offset = t->iter_t0_ns[it] - t->iter_t0_ns[0];
        for (int i = 0; i < t->n_ops; i++) {
            const IrOp *op = ir_op(c, i);
            if (op->kind == IR_OP_ALLOC || op->kind == IR_OP_FREE)
                continue;
            int64_t start = t->start_ns[(size_t)it * t->n_ops + i];
            int64_t end = t->end_ns[(size_t)it * t->n_ops + i];
            cJSON *e = report_trace_op_event(s, c, i, pid, offset + start, offset + end);
            cJSON_AddNumberToObject(cJSON_GetObjectItem(e, "args"), "iter", it);
            cJSON_AddItemToArray(events, e);
        }
    }
    char *text = cfg_json_print(events, false);
    cJSON_Delete(events);
    return text;
}

static const char *mode_name(RunMode m)
{
    return m == RUN_MODE_CUBLAS ? "cublas" : m == RUN_MODE_GEMM ? "gemm" : "emulate";
}

static const char *coll_name(RunCollImpl c)
{
    return c == RUN_COLL_NCCL ? "nccl" : c == RUN_COLL_RING ? "ring" : "mpi";
}

bool run_trace_write(const IrSchedule *s, const RunOptions *opt, int rank, int world,
                     const RunTimes *t, const char *file, GError **error)
{
    /* step time per iteration: max over this rank's ops, then over ranks */
    double *local = g_new0(double, t->iters), *step = g_new0(double, t->iters);
    for (int it = 0; it < t->iters; it++)
        for (int i = 0; i < t->n_ops; i++)
            local[it] = MAX(local[it], (double)t->end_ns[(size_t)it * t->n_ops + i] * 1e-9);
    MPI_Reduce(local, step, t->iters, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);

    char *mine = rank_events(s, rank, t);
    int len = (int)strlen(mine);
    int *lens = rank == 0 ? g_new(int, world) : NULL,
        *displs = rank == 0 ? g_new(int, world) : NULL;
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, MPI_COMM_WORLD);
    char *all = NULL;
    if (rank == 0) {
        int total = 0;
        for (int r = 0; r < world; r++) {
            displs[r] = total;
            total += lens[r];
        }
        all = g_malloc((size_t)total + 1);
    }
    MPI_Gatherv(mine, len, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, MPI_COMM_WORLD);
    g_free(mine);
    bool ok = true;
    if (rank == 0) {
        /* Splice the ranks' arrays: "[a,b]" + "[c]" -> "[a,b,c]", then the rest of the object. */
        GString *out = g_string_new("{\"traceEvents\":[");
        bool first = true;
        for (int r = 0; r < world; r++) {
            const char *a = all + displs[r];
            int n = lens[r];
            if (n <= 2)
                continue;
            if (!first)
                g_string_append_c(out, ',');
            g_string_append_len(out, a + 1, n - 2);
            first = false;
        }
        cJSON *other = cJSON_CreateObject();
        cJSON_AddStringToObject(other, "generator", "fsdprun");
        cJSON_AddStringToObject(other, "mode", mode_name(opt->mode));
        cJSON_AddStringToObject(other, "backend", opt->coll == RUN_COLL_NCCL ? "nccl" : "mpi");
        cJSON_AddStringToObject(other, "collectives", coll_name(opt->coll));
        if (opt->device)
            cJSON_AddStringToObject(other, "device", opt->device);
        cJSON_AddNumberToObject(other, "world", world);
        cJSON_AddNumberToObject(other, "warmup", opt->warmup);
        cJSON_AddNumberToObject(other, "iterations", t->iters);
        cJSON_AddItemToObject(other, "step_time_s", cJSON_CreateDoubleArray(step, t->iters));
        const char *keys[] = {"model", "strategy", "topology"};
        for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
            const char *v = s->meta ? g_hash_table_lookup(s->meta, keys[k]) : NULL;
            if (v)
                cJSON_AddStringToObject(other, keys[k], v);
        }
        char *other_text = cfg_json_print(other, false);
        cJSON_Delete(other);
        g_string_append_printf(out, "],\"displayTimeUnit\":\"ms\",\"otherData\":%s}\n", other_text);
        g_free(other_text);
        GError *e = NULL;
        if (!g_file_set_contents(file, out->str, (gssize)out->len, &e)) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_FAILED, "option --trace: %s", e->message);
            g_error_free(e);
            ok = false;
        }
        g_string_free(out, TRUE);
    }
    g_free(all), g_free(lens), g_free(displs), g_free(local), g_free(step);
    return ok;
}
