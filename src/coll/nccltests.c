/* coll: reading nccl-tests' result tables (all_reduce_perf and friends), so that a simulated sweep
 * can be held against a real one: `fsdpsim collective --reference FILE` and test_coll. */
#include "coll.h"

#include "../util/cfg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest size a row may have: --max-bytes's bound, 1 TiB. */
#define ROW_BYTES_MAX 1099511627776.0

typedef enum { ROW_NONE, ROW_OK, ROW_BAD } RowStatus;

typedef struct {
    CollNcclTestsRow row;
    char redop[16];
    int root;
    const char *field, *expected; /* ROW_BAD: which column, what it should hold */
    char got[32];                 /* and what it held */
} RowParse;

/* A whole token as a number (strtod accepts "inf" and "nan": the range checks refuse them). */
static bool number(const char *token, double *out)
{
    char *end = NULL;
    *out = g_ascii_strtod(token, &end);
    return end != token && *end == '\0';
}

/* One line: not a result row (comments, headers, other output), a row, or a row with a value
 * out of its range (inf and 1e30 sizes became size 0 and a perfect "+0.0 %" match). Two
 * layouts: nccl-tests since 2.10 has 13 columns, size count type redop root | time algbw busbw
 * #wrong (out of place) | time algbw busbw #wrong (in place), "#wrong" "N/A" with -c 0; older
 * ones have 12, without root and with an "error" column instead of #wrong (ABCI's tables). The
 * older layout was read as the newer one: root 17 from a time of 17.29 us, the time .29 us.
 * Either with the out-of-place columns only (9 or 8 fields: -R 0, or a table cut to its first
 * columns), which then stand for both runs. fsdpsim collective's output reads back as well. */
static RowStatus parse_row(const char *line, RowParse *p)
{
    char **tok = g_strsplit_set(line, " \t\r", -1);
    const char *t[16];
    int n = 0;
    for (char **k = tok; *k && n < 16; k++)
        if (**k)
            t[n++] = *k;
    /* fsdpsim collective's own rows: nccl-tests' 13 columns, then NCCL's algorithm and protocol */
    int algo, proto;
    if (n == 15 && (coll_algo_parse(t[13], &algo) || strcmp(t[13], "p2p") == 0) &&
        coll_proto_parse(t[14], &proto))
        n = 13;
    double size = 0;
    RowStatus status = ROW_NONE;
    if ((n != 12 && n != 13 && n != 9 && n != 8) || !number(t[0], &size)) {
        g_strfreev(tok);
        return ROW_NONE;
    }
    bool has_root = n == 13 || n == 9, has_in_place = n >= 12;
    const char *const *out = t + (has_root ? 5 : 4), *const *in = has_in_place ? out + 4 : out;
    double count = 0, root = -1, t_us = 0, busbw = 0, t_in_us = 0, busbw_in = 0;
    const struct {
        const char *field, *expected;
        const char *token;
        double *v;
    } checks[] = {
        {"size", "a whole number of bytes in [0, 2^40]", t[0], &size},
        {"count", "a whole number of elements in [0, 2^40]", t[1], &count},
        {"root", "an integer rank, or -1", has_root ? t[4] : "-1", &root},
        {"time", "a time in us in (0, 1e9]", out[0], &t_us},
        {"busbw", "a bandwidth in GB/s in [0, 1e6]", out[2], &busbw},
        {"time (in place)", "a time in us in (0, 1e9]", in[0], &t_in_us},
        {"busbw (in place)", "a bandwidth in GB/s in [0, 1e6]", in[2], &busbw_in},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(checks); i++) {
        if (!number(checks[i].token, checks[i].v)) {
            p->field = checks[i].field, p->expected = checks[i].expected;
            g_snprintf(p->got, sizeof p->got, "\"%.20s\"", checks[i].token);
            status = ROW_BAD;
            break;
        }
    }
    bool in_range[G_N_ELEMENTS(checks)] = {
        isfinite(size) && size == floor(size) && size >= 0 && size <= ROW_BYTES_MAX,
        isfinite(count) && count == floor(count) && count >= 0 && count <= ROW_BYTES_MAX,
        root == floor(root) && root >= -1 && root < (1 << 24),
        isfinite(t_us) && t_us > 0 && t_us <= 1e9,
        isfinite(busbw) && busbw >= 0 && busbw <= 1e6,
        isfinite(t_in_us) && t_in_us > 0 && t_in_us <= 1e9,
        isfinite(busbw_in) && busbw_in >= 0 && busbw_in <= 1e6,
    };
    for (size_t i = 0; status == ROW_NONE && i < G_N_ELEMENTS(checks); i++) {
        if (!in_range[i]) {
            p->field = checks[i].field, p->expected = checks[i].expected;
            g_snprintf(p->got, sizeof p->got, "%g", *checks[i].v);
            status = ROW_BAD;
        }
    }
    if (status == ROW_NONE) {
        g_strlcpy(p->redop, t[3], sizeof p->redop);
        p->root = (int)root;
        /* out-of-place and in-place are the same op: the faster one drops the odd outlier
         * (H100 table: 94 us out of place at 256 B, 26 us in place) */
        p->row = (CollNcclTestsRow){(uint64_t)size, MIN(t_us, t_in_us) * 1e-6,
                                    t_in_us < t_us ? busbw_in : busbw, t_us * 1e-6, t_in_us * 1e-6};
        status = ROW_OK;
    }
    g_strfreev(tok);
    return status;
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
        if (in && parse_row(*l, &p) == ROW_OK && p.row.bytes > 0)
            rows[n++] = p.row;
    }
    g_strfreev(lines);
    return n;
}

/* NVIDIA/nccl-tests (2.19.6, src/<name>.cu): each benchmark's call and its busbw (Get*Bw). */
static const CollTest coll_tests_table[] = {
    {"allreduce", "all_reduce_perf", IR_COLL_ALLREDUCE, true, false, COLL_RUN_COLLECTIVE},
    {"allgather", "all_gather_perf", IR_COLL_ALLGATHER, false, false, COLL_RUN_COLLECTIVE},
    {"reduce_scatter", "reduce_scatter_perf", IR_COLL_REDUCE_SCATTER, true, false,
     COLL_RUN_COLLECTIVE},
    {"broadcast", "broadcast_perf", IR_COLL_BROADCAST, false, true, COLL_RUN_COLLECTIVE},
    /* ncclReduce to the root: NCCL's tuner runs Reduce only as a ring, with Broadcast's steps
     * (nRanks), ratio (1: the whole array crosses each ring link once, pipelined) and latency
     * ("(coll == ncclFuncReduce || coll == ncclFuncBroadcast)", tuning.cc v2.30.7-1 l. 294,
     * 395), and both chunk alike (REDUCE_/BROADCAST_CHUNKSTEPS 1, collectives.h): the model
     * runs it as broadcast's ring, reversed; the reduction's arithmetic hides behind the wire
     * as in NCCL's model. ReduceGetBw: busbw = algbw. */
    {"reduce", "reduce_perf", IR_COLL_BROADCAST, true, true, COLL_RUN_COLLECTIVE},
    {"alltoall", "alltoall_perf", IR_COLL_ALLTOALL, false, false, COLL_RUN_COLLECTIVE},
    /* src/sendrecv.cu: ncclSend to rank + 1 and ncclRecv from rank - 1 in one group, timed for
     * each reduction op (default sum), busbw = algbw */
    {"sendrecv", "sendrecv_perf", IR_COLL_KIND_COUNT, true, false, COLL_RUN_SENDRECV},
    /* src/gather.cu, scatter.cu: before NCCL 2.28 one group of ncclSend/ncclRecv, every rank
     * sending its count to the root (the root receiving one part from each rank) or the root
     * sending each its part; NCCL 2.28 on has ncclGather/ncclScatter, which enqueue the same
     * grouped sends and receives (enqueue.cc v2.30.7-1 l. 3084-3109). Size: the whole array
     * (count x nranks); busbw = algbw (n - 1)/n. */
    {"gather", "gather_perf", IR_COLL_KIND_COUNT, false, true, COLL_RUN_GATHER},
    {"scatter", "scatter_perf", IR_COLL_KIND_COUNT, false, true, COLL_RUN_SCATTER},
};
const char coll_tests_names[] = "allreduce, allgather, reduce_scatter, broadcast, reduce, "
                                "alltoall, sendrecv, gather or scatter";

const CollTest *coll_test_find(const char *op)
{
    for (size_t i = 0; i < G_N_ELEMENTS(coll_tests_table); i++)
        if (strcmp(op, coll_tests_table[i].op) == 0)
            return &coll_tests_table[i];
    return NULL;
}

double coll_test_busbw_factor(const CollTest *test, int nranks)
{
    switch (test->run) {
    case COLL_RUN_SENDRECV:
        return 1; /* SendRecvGetBw */
    case COLL_RUN_GATHER:
    case COLL_RUN_SCATTER:
        return nranks > 1 ? (double)(nranks - 1) / nranks : 0; /* Gather/ScatterGetBw */
    default:
        /* BroadcastGetBw and ReduceGetBw: busbw = algbw, factor 1 at any rank count (nccl-tests
         * src/broadcast.cu, src/reduce.cu); the rest as coll_busbw_factor */
        return test->kind == IR_COLL_BROADCAST ? 1 : coll_busbw_factor(test->kind, nranks);
    }
}

int coll_nccltests_read(const char *file, const char *text, const CollTest *test,
                        CollNcclTestsRow *rows, int max, GError **error)
{
    bool reduces = test->reduces;
    const char *op = test->op;
    char **lines = g_strsplit(text, "\n", -1);
    int n = 0, status = 0;
    for (int i = 0; lines[i] && status == 0; i++) {
        const char *l = lines[i];
        const char *starting = strstr(l, "Collective test starting:");
        if (starting) {
            char binary[64] = "";
            if (sscanf(starting, "Collective test starting: %63s", binary) == 1 &&
                strcmp(binary, test->perf) != 0) {
                cfg_input_error(error,
                                "%s:%d: the table is from %s; expected %s's (option --op %s)", file,
                                i + 1, binary, test->perf, op);
                status = -1;
            }
            continue;
        }
        RowParse p;
        switch (parse_row(l, &p)) {
        case ROW_NONE:
            continue;
        case ROW_BAD:
            cfg_input_error(error, "%s:%d: field '%s': expected %s, got %s", file, i + 1, p.field,
                            p.expected, p.got);
            status = -1;
            continue;
        case ROW_OK:
            break;
        }
        if (p.row.bytes == 0) /* all_gather's first sizes split into 0 elements per rank */
            continue;
        /* The redop column tells the reductions from the others (an allreduce table given with
         * --op allgather was compared anyway); the rooted ones have a root. */
        bool none = strcmp(p.redop, "none") == 0;
        if (reduces == none || test->rooted != (p.root >= 0)) {
            cfg_input_error(error,
                            "%s:%d: field 'redop'/'root': \"%s\" %d is not a row of %s; expected "
                            "%s (option --op %s)",
                            file, i + 1, p.redop, p.root, test->perf,
                            reduces && test->rooted
                                ? "a reduction (sum, prod, min, max, avg) with a root >= 0"
                            : reduces      ? "a reduction (sum, prod, min, max, avg) with root -1"
                            : test->rooted ? "redop none with a root >= 0"
                                           : "redop none with root -1",
                            op);
            status = -1;
        } else if (n > 0 && p.row.bytes <= rows[n - 1].bytes) {
            /* several runs in one file (ABCI's has 1 to 16 nodes): held against one simulation,
             * the other runs' times would be compared with the wrong machine */
            cfg_input_error(error,
                            "%s:%d: field 'size': %" G_GUINT64_FORMAT " B after %" G_GUINT64_FORMAT
                            " B; expected one table of increasing sizes (the output of one "
                            "nccl-tests run)",
                            file, i + 1, p.row.bytes, rows[n - 1].bytes);
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
