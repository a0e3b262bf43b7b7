/* sim_times: the ops' times a reader gets (sim_op_start_ns, sim_op_end_ns in sim.h) where the
 * engine did not store them: a host's ops handled ahead inside a steady-state region
 * (SimHostFill, written by sim_host.c) and the ops of skipped periods (SimSkipFill, written by
 * sim_steady.c). Each is the stored time of an op one or more periods earlier plus whole
 * periods, exactly what the full simulation gives (test_steady compares every op). */
#include "sim_engine.h"

int64_t sim_op_time_skipped(const SimClassResult *cr, int op, bool end)
{
    const SimHostFill *h = cr->host_fill;
    if (sim_host_fill_covers(h, op)) {
        int r = (op - h->anchor) % h->period, t = (op - h->anchor) / h->period;
        return (end ? h->end : h->start)[r] + t * h->step_ns;
    }
    const SimSkipFill *f = cr->fill;
    if (!f || op < f->first)
        return -1; /* not started (times before the horizon were stored) */
    if (op >= f->win_lo && op - f->win_lo < f->n_win && f->win_set[op - f->win_lo])
        return -1; /* moved there by the skip, not started */
    /* the last source the skip copied to op: the highest i = op - j * step */
    int64_t x = op, k = f->step, src_hi = (int64_t)f->src_lo + f->n_src - 1;
    for (int64_t j = MAX(1, (x - src_hi + k - 1) / k); j <= f->periods; j++) {
        int64_t i = x - j * k;
        if (i < f->src_lo)
            break;
        if (f->is_src[i - f->src_lo])
            return (end ? f->src_end : f->src_start)[i - f->src_lo] + j * f->period_ns;
    }
    return -1;
}

void sim_skip_fill_free(SimSkipFill *fill)
{
    if (!fill)
        return;
    g_free(fill->is_src);
    g_free(fill->src_start);
    g_free(fill->src_end);
    g_free(fill->win_set);
    g_free(fill);
}

void sim_host_fill_free(SimHostFill *fill)
{
    if (!fill)
        return;
    g_free(fill->is_host);
    g_free(fill->start);
    g_free(fill->end);
    g_free(fill);
}
