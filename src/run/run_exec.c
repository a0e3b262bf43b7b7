/* run_exec: one thread per stream of the rank's class, each running its ops in issue order after
 * their dependencies (the explicit ones and, for GPU streams, the host op that issued them: the
 * same rules as the simulator's engine, src/core/sim.c). What an op does is the backend's (run.h:
 * MPI in run_mpi.c, CUDA/NCCL in run_cuda.c). A watchdog aborts the whole MPI job when nothing
 * has finished for timeout_s, naming the op every stream is stuck on and the ranks it waits for
 * (a stopped or cut-off rank cannot speak for itself). */
#include "run.h"

#include "../core/sim.h"
#include "../util/cfg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Exec Exec;

typedef struct {
    Exec *x;
    int stream;
    GArray *ops;        /* of int: this stream's ops in issue order */
    void *state;        /* the backend's: buffers, device stream */
    atomic_int current; /* op being waited on or run, -1 when idle */
} StreamCtx;

struct Exec {
    const IrSchedule *s;
    const IrClass *c;
    const RunOptions *opt;
    SimConfig cfg;
    RunBackend *be;
    RunProgram prog; /* what the backend sees */
    int rank;
    int n_ops;
    GArray **deps;   /* per op: every op it waits for */
    int *tag;        /* per collective: its sequence number on its group */
    int64_t *dur_ns; /* modelled duration (emulate) */
    uint8_t *done;
    int64_t *start_ns, *end_ns; /* of the current iteration */
    int64_t t0_ns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    StreamCtx *streams;
    atomic_llong last_progress_ns;
    atomic_int phase; /* iteration running, or -1 - k at the barrier before iteration k */
    atomic_bool stop;
    /* the barrier before each iteration (arrival_barrier) */
    MPI_Comm barrier_comm;
    int world;
    atomic_int *arrived; /* per rank: the last iteration it announced, -1 before the first */
};

bool run_comms_build(const IrSchedule *s, int rank, RunComms *comms, GError **error)
{
    comms->n_groups = s->n_groups;
    comms->group_comm = g_new0(MPI_Comm, MAX(1, s->n_groups));
    for (int g = 0; g < s->n_groups; g++) {
        const IrGroup *grp = &s->groups[g];
        if (grp->size < 1 || grp->stride < 1 || s->world % (grp->size * grp->stride) != 0) {
            g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                        "schedule: field 'groups[%d]': expected a family of groups that partitions "
                        "the %d ranks, got size %d stride %d",
                        g, s->world, grp->size, grp->stride);
            return false;
        }
        int *members = g_new(int, grp->size);
        ir_group_members(s, grp, rank, members);
        /* color: the group's lowest rank; key: the world rank, so rings run in rank order and
         * cross each node boundary once per direction, as NCCL's rings do */
        MPI_Comm_split(MPI_COMM_WORLD, members[0], rank, &comms->group_comm[g]);
        g_free(members);
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comms->p2p);
    return true;
}

void run_comms_free(RunComms *comms)
{
    for (int g = 0; g < comms->n_groups; g++)
        MPI_Comm_free(&comms->group_comm[g]);
    g_free(comms->group_comm);
    MPI_Comm_free(&comms->p2p);
}

static void add_dep(GArray *deps, int d)
{
    if (d >= 0)
        g_array_append_val(deps, d);
}

static void exec_prepare(Exec *x)
{
    const IrClass *c = x->c;
    int n = x->n_ops;
    x->deps = g_new(GArray *, n);
    x->tag = g_new0(int, n);
    x->dur_ns = g_new0(int64_t, n);
    x->done = g_new0(uint8_t, n);
    x->start_ns = g_new0(int64_t, n);
    x->end_ns = g_new0(int64_t, n);
    int *group_seq = g_new0(int, MAX(1, x->s->n_groups));
    int last_host = -1;
    int *last_on_stream = g_new(int, c->n_streams);
    for (int i = 0; i < c->n_streams; i++)
        last_on_stream[i] = -1;
    for (int i = 0; i < n; i++) {
        const IrOp *op = ir_op(c, i);
        GArray *d = x->deps[i] = g_array_new(FALSE, FALSE, sizeof(int));
        const uint32_t *explicit_deps = ir_op_deps(c, op);
        for (uint32_t k = 0; k < op->n_deps; k++)
            add_dep(d, (int)explicit_deps[k]);
        /* the previous op on the stream is implied by the thread's order */
        bool host = c->streams[op->stream].host;
        if (!host && last_host != last_on_stream[op->stream])
            add_dep(d, last_host);
        if (host)
            last_host = i;
        last_on_stream[op->stream] = i;
        if (op->kind == IR_OP_COLL)
            x->tag[i] = group_seq[op->u.coll.group]++ % 32000;
        x->dur_ns[i] = sim_op_duration_ns(&x->cfg, c, op);
        g_array_append_val(x->streams[op->stream].ops, i);
    }
    g_free(group_seq);
    g_free(last_on_stream);
}

static void *stream_main(void *arg)
{
    StreamCtx *sc = arg;
    Exec *x = sc->x;
    if (x->be->thread_init)
        x->be->thread_init(x->be);
    for (guint k = 0; k < sc->ops->len; k++) {
        int i = g_array_index(sc->ops, int, k);
        atomic_store(&sc->current, i);
        GArray *deps = x->deps[i];
        pthread_mutex_lock(&x->mu);
        for (guint d = 0; d < deps->len; d++)
            while (!x->done[g_array_index(deps, int, d)])
                pthread_cond_wait(&x->cv, &x->mu);
        pthread_mutex_unlock(&x->mu);
        if (x->be->wait_deps)
            x->be->wait_deps(x->be, sc->state, &x->prog, i, (const int *)deps->data,
                             (int)deps->len);
        int64_t start = run_now_ns();
        x->be->run(x->be, sc->state, &x->prog, i, start);
        int64_t end = run_now_ns();
        pthread_mutex_lock(&x->mu);
        x->start_ns[i] = start - x->t0_ns;
        x->end_ns[i] = end - x->t0_ns;
        x->done[i] = 1;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        atomic_store(&x->last_progress_ns, end);
    }
    atomic_store(&sc->current, -1);
    return NULL;
}

/* Whom an op waits for: a stopped or partitioned rank says nothing, so the ranks that wait on it
 * name it. A send/recv waits for its peer; a collective for the other members of its group (at
 * most 8 listed), one of which is the culprit. */
static void append_peers(GString *msg, const Exec *x, const IrOp *op)
{
    if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV) {
        g_string_append_printf(msg, ", waiting for rank %d", x->rank + op->u.p2p.peer_offset);
        return;
    }
    if (op->kind != IR_OP_COLL)
        return;
    const IrGroup *g = &x->s->groups[op->u.coll.group];
    int *members = g_new(int, g->size);
    ir_group_members(x->s, g, x->rank, members);
    g_string_append_printf(msg, ", waiting for rank%s", g->size > 2 ? "s" : "");
    int listed = 0;
    for (int k = 0; k < g->size; k++) {
        if (members[k] == x->rank)
            continue;
        if (listed == 8) {
            g_string_append(msg, ", ...");
            break;
        }
        g_string_append_printf(msg, "%s %d", listed ? "," : "", members[k]);
        listed++;
    }
    g_string_append_printf(msg, " of group %s", g->name);
    g_free(members);
}

/* The barrier before iteration `it`, by messages rather than MPI_Ibarrier: each rank tells every
 * other that it arrived, so that a rank left waiting here can name the ranks that did not (a
 * stopped, cut-off or dead one). 2 (world - 1) empty messages per rank per iteration on a
 * communicator of their own: nothing next to an iteration at the worlds fsdprun runs. */
static void arrival_barrier(Exec *x, int it)
{
    int n = x->world - 1;
    if (n == 0)
        return;
    MPI_Request *req = g_new(MPI_Request, 2 * (size_t)n);
    int *from = g_new(int, n), *index = g_new(int, n);
    int k = 0;
    for (int r = 0; r < x->world; r++) {
        if (r == x->rank)
            continue;
        from[k] = r;
        MPI_Irecv(NULL, 0, MPI_BYTE, r, it % 32000, x->barrier_comm, &req[k]);
        MPI_Isend(NULL, 0, MPI_BYTE, r, it % 32000, x->barrier_comm, &req[n + k]);
        k++;
    }
    struct timespec pause = {0, (long)x->opt->poll_us * 1000};
    for (int left = n; left > 0;) {
        int got = 0;
        MPI_Testsome(n, req, &got, index, MPI_STATUSES_IGNORE);
        if (got == MPI_UNDEFINED)
            break;
        for (int i = 0; i < got; i++)
            atomic_store(&x->arrived[from[index[i]]], it);
        left -= got;
        if (left > 0 && got == 0)
            nanosleep(&pause, NULL);
    }
    MPI_Waitall(n, req + n, MPI_STATUSES_IGNORE);
    g_free(req), g_free(from), g_free(index);
}

static void *watchdog_main(void *arg)
{
    Exec *x = arg;
    struct timespec pause = {0, 100 * 1000 * 1000};
    while (!atomic_load(&x->stop)) {
        nanosleep(&pause, NULL);
        double idle_s = (double)(run_now_ns() - atomic_load(&x->last_progress_ns)) * 1e-9;
        if (idle_s < x->opt->timeout_s)
            continue;
        int phase = atomic_load(&x->phase);
        GString *msg = g_string_new(NULL);
        g_string_printf(msg, "fsdprun: rank %d: no progress for %.0f s (--timeout)", x->rank,
                        idle_s);
        if (phase < 0) {
            int it = -1 - phase, listed = 0;
            g_string_append_printf(msg, " at the barrier before iteration %d, waiting for rank",
                                   it);
            for (int r = 0; r < x->world && listed <= 8; r++) {
                if (r == x->rank || atomic_load(&x->arrived[r]) >= it)
                    continue;
                g_string_append_printf(msg, listed == 8 ? ", ..." : "%s %d", listed ? "," : "", r);
                listed++;
            }
            g_string_append(msg, listed ? " (stopped, cut off or dead)"
                                        : "s: none missing, its own messages are not delivered");
        }
        bool busy = false;
        for (int s = 0; phase >= 0 && s < x->c->n_streams; s++) {
            int i = atomic_load(&x->streams[s].current);
            if (i >= 0) {
                g_string_append_printf(msg, "; stream %s waits in op %d (%s %s",
                                       x->c->streams[s].name, i,
                                       ir_op_kind_name(ir_op(x->c, i)->kind),
                                       ir_class_string(x->c, ir_op(x->c, i)->name));
                append_peers(msg, x, ir_op(x->c, i));
                g_string_append_c(msg, ')');
            }
            busy = busy || i >= 0;
        }
        if (phase >= 0 && !busy)
            g_string_append_printf(msg,
                                   " in iteration %d: every op was issued; the device never "
                                   "finished them (a collective or transfer that hangs?)",
                                   phase);
        fprintf(stderr, "%s; aborting the job\n", msg->str);
        fflush(stderr);
        g_string_free(msg, TRUE);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return NULL;
}

/* A failure in the middle of an iteration: the other ranks would wait for this one forever. */
static void abort_job(int rank, const GError *error)
{
    fprintf(stderr, "fsdprun: rank %d: %s; aborting the job\n", rank, error->message);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

void run_times_free(RunTimes *t)
{
    g_free(t->start_ns);
    g_free(t->end_ns);
    g_free(t->iter_t0_ns);
}

bool run_execute(const IrSchedule *s, const HwTopology *topo, const RunOptions *opt, int rank,
                 RunBackend *be, RunTimes *times, GError **error)
{
    int ci = ir_class_of_rank_or_error(s, rank, error);
    if (ci < 0)
        return false;
    Exec x = {
        .s = s, .c = s->classes[ci], .opt = opt, .cfg = {.topo = topo}, .be = be, .rank = rank};
    x.n_ops = ir_class_n_ops(x.c);
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.cv, NULL);
    x.streams = g_new0(StreamCtx, x.c->n_streams);
    for (int k = 0; k < x.c->n_streams; k++) {
        x.streams[k].x = &x;
        x.streams[k].stream = k;
        x.streams[k].ops = g_array_new(FALSE, FALSE, sizeof(int));
        atomic_init(&x.streams[k].current, -1);
    }
    exec_prepare(&x);
    x.prog = (RunProgram){.s = s,
                          .c = x.c,
                          .opt = opt,
                          .rank = rank,
                          .n_ops = x.n_ops,
                          .tag = x.tag,
                          .dur_ns = x.dur_ns};
    bool ok = true;
    for (int k = 0; k < x.c->n_streams && ok; k++) {
        StreamCtx *sc = &x.streams[k];
        sc->state =
            be->stream_new(be, &x.prog, k, (const int *)sc->ops->data, (int)sc->ops->len, error);
        ok = sc->state != NULL;
    }
    /* every rank stops when one cannot set up (its own message says why) */
    int all_ok = ok;
    MPI_Allreduce(MPI_IN_PLACE, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (ok && !all_ok) {
        g_set_error(error, RUN_ERROR_ELSEWHERE, 0,
                    "another rank could not set up its streams (see its message)");
        ok = false;
    }

    times->iters = opt->iters;
    times->n_ops = x.n_ops;
    times->start_ns = g_new0(int64_t, (size_t)opt->iters * x.n_ops);
    times->end_ns = g_new0(int64_t, (size_t)opt->iters * x.n_ops);
    times->iter_t0_ns = g_new0(int64_t, opt->iters);

    atomic_init(&x.last_progress_ns, run_now_ns());
    atomic_init(&x.stop, false);
    atomic_init(&x.phase, -1);
    MPI_Comm_size(MPI_COMM_WORLD, &x.world);
    MPI_Comm_dup(MPI_COMM_WORLD, &x.barrier_comm);
    x.arrived = g_new(atomic_int, x.world);
    for (int r = 0; r < x.world; r++)
        atomic_init(&x.arrived[r], -1);
    pthread_t watchdog;
    if (ok)
        pthread_create(&watchdog, NULL, watchdog_main, &x);
    pthread_t *threads = g_new(pthread_t, x.c->n_streams);
    for (int it = 0; ok && it < opt->warmup + opt->iters; it++) {
        atomic_store(&x.phase, -1 - it);
        atomic_store(&x.last_progress_ns, run_now_ns());
        arrival_barrier(&x, it);
        memset(x.done, 0, (size_t)x.n_ops);
        x.t0_ns = run_now_ns();
        atomic_store(&x.last_progress_ns, x.t0_ns);
        atomic_store(&x.phase, it);
        if (be->iter_begin && !be->iter_begin(be, &x.prog, error))
            abort_job(rank, *error);
        for (int k = 0; k < x.c->n_streams; k++)
            pthread_create(&threads[k], NULL, stream_main, &x.streams[k]);
        for (int k = 0; k < x.c->n_streams; k++)
            pthread_join(threads[k], NULL);
        if (be->iter_end && !be->iter_end(be, &x.prog, x.start_ns, x.end_ns, error))
            abort_job(rank, *error);
        int m = it - opt->warmup;
        if (m >= 0) {
            memcpy(&times->start_ns[(size_t)m * x.n_ops], x.start_ns, sizeof(int64_t) * x.n_ops);
            memcpy(&times->end_ns[(size_t)m * x.n_ops], x.end_ns, sizeof(int64_t) * x.n_ops);
            times->iter_t0_ns[m] = x.t0_ns;
        }
    }
    atomic_store(&x.stop, true);
    if (ok)
        pthread_join(watchdog, NULL);

    g_free(threads);
    for (int k = 0; k < x.c->n_streams; k++) {
        StreamCtx *sc = &x.streams[k];
        g_array_free(sc->ops, TRUE);
        if (sc->state)
            be->stream_free(be, sc->state);
    }
    g_free(x.streams);
    for (int i = 0; i < x.n_ops; i++)
        g_array_free(x.deps[i], TRUE);
    g_free(x.deps), g_free(x.tag), g_free(x.dur_ns), g_free(x.done), g_free(x.start_ns),
        g_free(x.end_ns);
    pthread_mutex_destroy(&x.mu);
    pthread_cond_destroy(&x.cv);
    MPI_Comm_free(&x.barrier_comm);
    g_free(x.arrived);
    return ok;
}
