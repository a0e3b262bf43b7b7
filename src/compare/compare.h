/* compare: a real run (fsdprun's Chrome trace) beside a simulated one (fsdpsim --trace): step time
 * and time per op kind, with the signed relative error (sim - real) / real, and a merged Chrome
 * trace with the real ranks above the simulated rank classes.
 *
 * Real step time: each measured iteration's step time (otherData.step_time_s), summarised by the
 * median and the range. Simulated step time: the latest end of any op. Per op kind ("cat": compute,
 * host, allgather, ...): the summed durations per rank per step, averaged over the ranks (real) or
 * over the rank classes weighted by their ranks (simulated). A collective's duration runs from the
 * rank's arrival to its end in both, so waiting for late peers counts in both. */
#ifndef FSD_COMPARE_H
#define FSD_COMPARE_H

#include <cjson/cJSON.h>
#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct {
    char *kind;
    double real_s, sim_s; /* per rank per step */
    double real_calls, sim_calls;
} CmpKind;

typedef struct {
    int iterations, ranks;
    double real_median_s, real_min_s, real_max_s;
    double sim_s;
    double error;      /* (sim - real) / real, of the median */
    GArray *kinds;     /* of CmpKind, by name */
    cJSON *real, *sim; /* the parsed traces */
    int median_iter;   /* the iteration whose step time is the median (lower median) */
} CmpResult;

/* Loads and checks both traces; errors name the file and field (FSD_ERROR_INPUT). */
bool cmp_load(const char *real_file, const char *sim_file, CmpResult *out, GError **error);
void cmp_clear(CmpResult *r);

/* Signed relative error, NAN when real is 0. */
double cmp_error(double sim, double real);

void cmp_print_table(const CmpResult *r, const char *real_file, const char *sim_file, FILE *out);
char *cmp_to_json(const CmpResult *r);
/* The median real iteration (each rank shifted to start at 0) above the simulated step. */
char *cmp_merged_trace(const CmpResult *r);

#endif
