/* compact: a 1F1B or interleaved pipeline of many micro-batches simulated from a program of
 * fewer. Its steady phase repeats, one forward-backward pair per micro-batch (1F1B) or one
 * group of pp micro-batches through every chunk (interleaved); the engine proves the repeat
 * and skips whole periods (src/core/sim_steady.c), so the periods it skips need not be in the
 * schedule at all. The generator makes each stage's program for COMPACT_MICRO_BATCHES(pp)
 * micro-batches (interleaved: a quarter of the groups), the engine adds the rest back at its
 * skip (sim_run_compact), and every result is the full program's to the bit
 * (tests/unit/test_compact.c compares them); where the engine cannot, the full program is
 * generated and run. What it saves: generating, storing and preparing the left-out ops (1T at
 * 4096 micro-batches: 12 M ops of 32 bytes and more than as much engine state per op; with
 * sequence parallelism and 2 chunks, 3.0 s and 1.36 GB -> 1.4 s and 407 MB), not the
 * simulation of the fill, drain and proof, which stays. */
#ifndef FSD_COMPACT_H
#define FSD_COMPACT_H

#include "../core/sim.h"
#include "../model/model.h"
#include "../strategy/strategy.h"

/* Micro-batches a compact program holds for pp stages: the fill (pp), and room for
 * COMPACT_ROOM periods in every stage's periodic region, where the steady state proves the
 * period (sim_steady.c: usually within a few periods, up to SIM_STEADY_TRIES + SIM_STEADY_HIST)
 * and the skip, with the gap put past the proof's ops (sim_gap.c), takes a block; 4 more for
 * regions that start a few micro-batches into a stage's steady phase (sim_region.c). Where a
 * region holds fewer periods, or the engine refuses the run (the proof came too late for the
 * gap to fit), the next size is tried: COMPACT_MICRO_BATCHES_ROOMY(pp), room for the proofs
 * that take long (states that repeat only after several periods: GPT-3 tp 8 x pp 8 cycles over 7
 * micro-batches), then COMPACT_MICRO_BATCHES_LATE(pp) for regions that start up to pp later
 * (activation checkpointing: a warm-up forward names one buffer, a steady pair three), each if
 * larger and the run's micro-batches allow; then the full program. */
#define COMPACT_ROOM 8
#define COMPACT_MICRO_BATCHES(pp) ((pp) + COMPACT_ROOM + 4)
#define COMPACT_ROOM_ROOMY 96
#define COMPACT_MICRO_BATCHES_ROOMY(pp) ((pp) + COMPACT_ROOM_ROOMY + 8)
#define COMPACT_MICRO_BATCHES_LATE(pp) MAX(4 * (pp), 2 * (pp) + COMPACT_ROOM_ROOMY)
/* An interleaved pipeline's period is a group of pp micro-batches through every chunk: its one
 * compact program holds a quarter of the run's groups, where that is COMPACT_GROUPS or more
 * (compact.c interleaved_groups; 7-group programs held 5 periods on every layout seen, and were
 * generated only to be dropped), where every region holds COMPACT_GROUPS_ROOM periods (the
 * first checkpoints, the proof, a block past it and the skip's room beyond the gap; a proof at
 * the second checkpoint fits, one that comes late is refused and the full program runs). */
#define COMPACT_GROUPS 8
#define COMPACT_GROUPS_ROOM 6

/* Whether opt's run may be compact: a 1F1B pipeline with at least 64 micro-batches more than a
 * compact program holds, an interleaved one with 4 x COMPACT_GROUPS groups or more;
 * FSDPSIM_NO_COMPACT, FSDPSIM_NO_STEADY_STATE and FSDPSIM_NO_LAZY_HOST unset in the
 * environment. The caller adds its own conditions (no output that lists every op:
 * a compact result's memory timeline lacks the gap's samples, and its ops' names are the
 * schedule's). */
bool compact_applies(const StratOptions *opt, const StratLayout *layout);

/* A check the caller makes before a program is generated: a compact one of `micro_batches`, or
 * (0) the whole one where a compact one was meant to be (the CLI's --max-memory sizes each):
 * false with an error stops. */
typedef bool (*CompactCheck)(void *ctx, int micro_batches, GError **error);

/* A compact program's plan: each class's left-out ops (NULL: the whole schedule), and what
 * sizing found in the program (sim_prep_compact), which its run takes. Start it zeroed; clear it
 * with compact_plan_clear. */
typedef struct {
    int64_t *omitted;
    SimPrep *prep;
} CompactPlan;
void compact_plan_clear(CompactPlan *plan);

/* Generates opt's schedule: compact where try_compact and compact_applies, then plan->omitted
 * holds each class's left-out ops (NULL: the whole schedule). *info is the full run's either
 * way (its micro-batches). `check` (may be NULL) runs before each compact program is
 * generated, and before the whole one where a compact one was tried and cannot be (a stage's
 * steady pairs unlike); the caller checks the whole one where none is tried. NULL with
 * strat_generate's or the check's error. */
IrSchedule *compact_generate(const Model *model, const HwTopology *topo, const StratOptions *opt,
                             const StratLayout *layout, bool try_compact, StratInfo *info,
                             CompactPlan *plan, CompactCheck check, void *ctx, GError **error);

/* Simulates *sched: with plan->omitted, compact (sim_run_compact), and where the engine cannot,
 * a larger compact program or the whole schedule (each after `check`, which may be NULL)
 * generated again and run in its place (*sched, *info and *plan replaced). After a compact run
 * the schedule holds fewer ops than the result (SimClassResult.gap_ops; readers walk sim_op_count
 * and sim_op_ir). NULL with sim_run's, strat_generate's or the check's error. */
SimResult *compact_run(const Model *model, const HwTopology *topo, const StratOptions *opt,
                       const StratLayout *layout, const SimConfig *cfg, IrSchedule **sched,
                       StratInfo *info, CompactPlan *plan, CompactCheck check, void *ctx,
                       GError **error);

#endif
