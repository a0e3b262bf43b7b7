/* coll: reading nccl-tests' result tables (all_reduce_perf and friends), so that a simulated sweep
 * can be held against a real one: `fsdpsim collective --reference FILE` and test_coll. */
#include "coll.h"

#include "../util/cfg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The largest size a row may have: --max-bytes's bound, 1 TiB. */
#define ROW_BYTES_MAX 1099511627776.0

typedef enum { ROW_NONE, ROW_OK, ROW_BAD } RowStatus;

typedef struct {
    CollNcclTestsRow row;
    char redop[16];
    int root;
    const char *field, *expected; /* ROW_BAD: which column, what it should hold */
    double got;
} RowParse;

/* One line: not a result row (comments, headers, other output), a row, or a row with a value
 * out of its range (inf and 1e30 sizes became size 0 and a perfect "+0.0 %" match). */
static RowStatus parse_row(const char *line, RowParse *p)
{
    double size, count, t_us, algbw, busbw, t_in_us, algbw_in, busbw_in;
    char type[16];
    /* size count type redop root | time algbw busbw #wrong (out of place) | time algbw busbw
     * (in place); "#wrong" is "N/A" when nccl-tests ran with -c 0 */
    char wrong_text[16];
    if (sscanf(line, "%lf %lf %15s %15s %d %lf %lf %lf %15s %lf %lf %lf", &size, &count, type,
               p->redop, &p->root, &t_us, &algbw, &busbw, wrong_text, &t_in_us, &algbw_in,
               &busbw_in) != 12)
        return ROW_NONE;
    const struct {
        const char *field, *expected;
        double v;
        bool ok;
    } checks[] = {
        {"size", "a whole number of bytes in [1, 2^40]", size,
         isfinite(size) && size == floor(size) && size >= 1 && size <= ROW_BYTES_MAX},
        {"count", "a whole number of elements in [0, 2^40]", count,
         isfinite(count) && count == floor(count) && count >= 0 && count <= ROW_BYTES_MAX},
        {"time", "a time in us in (0, 1e9]", t_us, isfinite(t_us) && t_us > 0 && t_us <= 1e9},
        {"busbw", "a bandwidth in GB/s in [0, 1e6]", busbw,
         isfinite(busbw) && busbw >= 0 && busbw <= 1e6},
        {"time (in place)", "a time in us in (0, 1e9]", t_in_us,
         isfinite(t_in_us) && t_in_us > 0 && t_in_us <= 1e9},
        {"busbw (in place)", "a bandwidth in GB/s in [0, 1e6]", busbw_in,
         isfinite(busbw_in) && busbw_in >= 0 && busbw_in <= 1e6},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(checks); i++) {
        if (!checks[i].ok) {
            p->field = checks[i].field, p->expected = checks[i].expected, p->got = checks[i].v;
            return ROW_BAD;
        }
    }
    /* out-of-place and in-place are the same op: the faster one drops the odd outlier
     * (H100 table: 94 us out of place at 256 B, 26 us in place) */
    p->row = (CollNcclTestsRow){(uint64_t)size, MIN(t_us, t_in_us) * 1e-6,
                                t_in_us < t_us ? busbw_in : busbw};
    return ROW_OK;
}

int coll_nccltests_parse(const char *text, const char *from, const char *to, CollNcclTestsRow *rows,
                         int max)
{
    char **lines = g_strsplit(text, "\n", -1);
    bool in = from == NULL;
    int n = 0;
    for (char **l = lines; *l && n < max; l++) {
        if (from && strstr(*l, from)) {
            in = true;
            continue;
        }
        if (to && strstr(*l, to))
            in = false;
        RowParse p;
        if (in && parse_row(*l, &p) == ROW_OK)
            rows[n++] = p.row;
    }
    g_strfreev(lines);
    return n;
}

/* nccl-tests' binary for each collective, as its "Collective test starting:" line names it. */
static const char *const perf_names[IR_COLL_KIND_COUNT] = {
    [IR_COLL_ALLGATHER] = "all_gather_perf", [IR_COLL_REDUCE_SCATTER] = "reduce_scatter_perf",
    [IR_COLL_ALLREDUCE] = "all_reduce_perf", [IR_COLL_BROADCAST] = "broadcast_perf",
    [IR_COLL_ALLTOALL] = "alltoall_perf",
};

int coll_nccltests_read(const char *file, const char *text, IrCollKind kind,
                        CollNcclTestsRow *rows, int max, GError **error)
{
    bool reduces = kind == IR_COLL_ALLREDUCE || kind == IR_COLL_REDUCE_SCATTER;
    const char *op = ir_coll_kind_name(kind);
    char **lines = g_strsplit(text, "\n", -1);
    int n = 0, status = 0;
    for (int i = 0; lines[i] && status == 0; i++) {
        const char *l = lines[i];
        const char *starting = strstr(l, "Collective test starting:");
        if (starting) {
            char binary[64] = "";
            if (sscanf(starting, "Collective test starting: %63s", binary) == 1 &&
                strcmp(binary, perf_names[kind]) != 0) {
                cfg_input_error(error,
                                "%s:%d: the table is from %s; expected %s's (option --op %s)",
                                file, i + 1, binary, perf_names[kind], op);
                status = -1;
            }
            continue;
        }
        RowParse p;
        switch (parse_row(l, &p)) {
        case ROW_NONE:
            continue;
        case ROW_BAD:
            cfg_input_error(error, "%s:%d: field '%s': expected %s, got %g", file, i + 1, p.field,
                            p.expected, p.got);
            status = -1;
            continue;
        case ROW_OK:
            break;
        }
        /* The redop column tells the reductions from the others (an allreduce table given with
         * --op allgather was compared anyway); broadcast alone has a root. */
        bool none = strcmp(p.redop, "none") == 0;
        if (reduces == none || (kind == IR_COLL_BROADCAST) != (p.root >= 0)) {
            cfg_input_error(error,
                            "%s:%d: field 'redop'/'root': \"%s\" %d is not a row of %s; expected "
                            "%s (option --op %s)",
                            file, i + 1, p.redop, p.root, perf_names[kind],
                            reduces                        ? "a reduction (sum, prod, min, max, "
                                                             "avg) with root -1"
                            : kind == IR_COLL_BROADCAST ? "redop none with a root >= 0"
                                                        : "redop none with root -1",
                            op);
            status = -1;
        } else if (n == max) {
            cfg_input_error(error, "%s:%d: expected at most %d result rows", file, i + 1, max);
            status = -1;
        } else {
            rows[n++] = p.row;
        }
    }
    g_strfreev(lines);
    return status < 0 ? -1 : n;
}
