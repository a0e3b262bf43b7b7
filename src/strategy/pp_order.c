/* pp_order: the order in which one pipeline stage runs its forward and backward passes.
 *
 * GPipe (Huang et al. 2019): every micro-batch forward, then every backward.
 * 1F1B, PipeDream-Flush (Narayanan et al. 2021): stage s runs p - s - 1 warm-up forwards, then
 * alternates one forward and one backward (steady state), then drains the remaining backwards
 * (cool-down); at most p - s micro-batches are in flight instead of m.
 * Interleaved 1F1B (Narayanan et al., SC'21, Megatron-LM's
 * forward_backward_pipelining_with_interleaving): each rank holds v model chunks; micro-batches go
 * through the chunks in groups of p; warm-up is (p - s - 1) * 2 + (v - 1) * p forwards. Its
 * bubble is (1/v)(p-1)/m. Megatron requires m to be a multiple of p, and so do we. */
#include "strategy.h"

/* Megatron's get_model_chunk_id / micro-batch id for the k-th forward (or backward) on a rank. */
static void interleaved_step(int k, int p, int v, bool forward, PpStep *step)
{
    int chunk = (k / p) % v;
    step->forward = forward;
    step->chunk = forward ? chunk : v - 1 - chunk;
    step->micro_batch = (k / (p * v)) * p + k % p;
}

int strat_pp_order(PpSchedule kind, int p, int v, int m, int stage, PpStep *steps)
{
    int n = 0;
    if (kind == PP_SCHEDULE_GPIPE) {
        for (int i = 0; i < m; i++)
            steps[n++] = (PpStep){true, i, 0, PP_PHASE_WARMUP};
        for (int i = 0; i < m; i++)
            steps[n++] = (PpStep){false, i, 0, PP_PHASE_COOLDOWN};
        return n;
    }
    if (kind == PP_SCHEDULE_1F1B)
        v = 1;
    int total = m * v;
    int warmup = kind == PP_SCHEDULE_1F1B ? p - stage - 1 : (p - stage - 1) * 2 + (v - 1) * p;
    warmup = MIN(warmup, total);
    int fwd = 0, bwd = 0;
    for (; fwd < warmup; fwd++) {
        interleaved_step(fwd, p, v, true, &steps[n]);
        steps[n++].phase = PP_PHASE_WARMUP;
    }
    while (fwd < total) {
        interleaved_step(fwd++, p, v, true, &steps[n]);
        steps[n++].phase = PP_PHASE_STEADY;
        interleaved_step(bwd++, p, v, false, &steps[n]);
        steps[n++].phase = PP_PHASE_STEADY;
    }
    while (bwd < total) {
        interleaved_step(bwd++, p, v, false, &steps[n]);
        steps[n++].phase = PP_PHASE_COOLDOWN;
    }
    return n;
}

const char *strat_pp_phase_name(PpPhase phase)
{
    return phase == PP_PHASE_WARMUP ? "warm-up" : phase == PP_PHASE_STEADY ? "steady" : "cool-down";
}
