/* budget: the memory a simulation will take, estimated before it allocates (budget.c). */
#pragma once

#include "../hw/hw.h"
#include "../ir/ir.h"
#include "../model/model.h"
#include "../strategy/strategy.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* --max-memory TEXT (NULL: the machine's MemAvailable; 0 when unknown, meaning no limit). */
bool cli_memory_limit(const char *text, double *limit_bytes, GError **error);
/* Bytes a schedule of `ops` ops takes to simulate, and with json_outputs to write a --report
 * folder (its figures' data; --trace and --emit-schedule are streamed and add nothing). */
double cli_memory_estimate(uint64_t ops, bool json_outputs);
uint64_t cli_schedule_ops(const IrSchedule *s);
/* An input error naming --max-memory, `what` and what to reduce when the estimate is beyond
 * `limit` (0: no limit). */
bool cli_memory_check_ops(uint64_t ops, bool json_outputs, double limit, const char *what,
                          GError **error);
/* Before a schedule file is read: reading takes about 9 times its size (text and cJSON tree;
 * 828 MB for a 92 MB file of 599k ops). */
bool cli_memory_check_file(const char *file, double limit, GError **error);
/* Every op's time within the engine's clock (int64 ns, 292 years): compute, memory copies and
 * host work at the topology's rates, collectives and send/recv at its slowest link (an upper
 * bound). An op over OP_TIME_MAX_S is an input error naming the op and `what` (a file, or "the
 * run"): flops of 1e30 ran 1e16 s, past the clock, and the step time came out negative. */
#define OP_TIME_MAX_S 1e6
bool cli_check_op_times(const IrSchedule *s, const HwTopology *topo, const char *what,
                        GError **error);
/* The same for a run still to be generated: its op count extrapolated from the schedules of the
 * two smallest micro-batch counts. of_micro_batches > opt->grad_accum: opt is the compact
 * program of a run of that many (src/compact), and the message says so. */
bool cli_memory_check_run(const Model *model, const HwTopology *topo, const StratOptions *opt,
                          const StratLayout *layout, bool json_outputs, double limit,
                          int of_micro_batches, GError **error);
