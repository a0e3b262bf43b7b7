/* coll: reading nccl-tests' result tables (all_reduce_perf and friends), so that a simulated sweep
 * can be held against a real one: `fsdpsim collective --reference FILE` and test_coll. */
#include "coll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool number(const char *text, double *out)
{
    char *end;
    *out = strtod(text, &end);
    return end != text && *end == '\0';
}

/* One result line. Two layouts: nccl-tests from 2.10 on (size count type redop root | time algbw
 * busbw #wrong | time algbw busbw #wrong; "#wrong" is "N/A" with -c 0) and before it (no root
 * column, and an "error" column of the largest difference, 1e-07, instead of #wrong: the ABCI
 * tables); either with the out-of-place columns only, which then stand for both. */
static bool parse_row(const char *line, CollNcclTestsRow *row)
{
    char **tok = g_strsplit_set(line, " \t\r", -1);
    const char *f[16];
    int n = 0;
    for (char **t = tok; *t && n < 16; t++)
        if (**t)
            f[n++] = *t;
    double v[8];
    bool ok = false;
    /* 13 or 12 fields: both runs; 9 or 8: out of place only (nccl-tests -R 0 ... or a table cut
     * to its first columns) */
    bool in_place = n == 13 || n == 12, root = n == 13 || n == 9;
    if (n == 13 || n == 12 || n == 9 || n == 8) {
        int time = root ? 5 : 4; /* first field of the out-of-place columns */
        ok = number(f[0], &v[0]) && number(f[1], &v[1]) && number(f[time], &v[2]) &&
             number(f[time + 1], &v[3]) && number(f[time + 2], &v[4]);
        if (ok && in_place)
            ok = number(f[time + 4], &v[5]) && number(f[time + 5], &v[6]) &&
                 number(f[time + 6], &v[7]);
        else if (ok) {
            v[5] = v[2], v[6] = v[3], v[7] = v[4];
        }
        /* the new layout's root is an integer (-1, 0): an old row's time never parses as one */
        if (ok && root)
            ok = strspn(f[4], "-0123456789") == strlen(f[4]);
    }
    g_strfreev(tok);
    if (!ok || !(v[0] > 0 && v[2] > 0 && v[5] > 0))
        return false;
    /* out-of-place and in-place are the same op: the faster one drops the odd outlier (H100
     * table: 94 us out of place at 256 B, 26 us in place) */
    *row = (CollNcclTestsRow){(uint64_t)v[0], MIN(v[2], v[5]) * 1e-6, v[5] < v[2] ? v[7] : v[4],
                              v[2] * 1e-6, v[5] * 1e-6};
    return true;
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
        if (in && parse_row(*l, &rows[n]))
            n++;
    }
    g_strfreev(lines);
    return n;
}
