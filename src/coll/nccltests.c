/* coll: reading nccl-tests' result tables (all_reduce_perf and friends), so that a simulated sweep
 * can be held against a real one: `fsdpsim collective --reference FILE` and test_coll. */
#include "coll.h"

#include <stdio.h>
#include <string.h>

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
        double size, count, t_us, algbw, busbw, t_in_us, algbw_in, busbw_in;
        char type[16], op[16];
        int root;
        /* size count type redop root | time algbw busbw #wrong (out of place) | time algbw busbw
         * (in place); "#wrong" is "N/A" when nccl-tests ran with -c 0 */
        char wrong_text[16];
        if (!in ||
            sscanf(*l, "%lf %lf %15s %15s %d %lf %lf %lf %15s %lf %lf %lf", &size, &count, type, op,
                   &root, &t_us, &algbw, &busbw, wrong_text, &t_in_us, &algbw_in, &busbw_in) != 12)
            continue;
        if (!(size > 0 && t_us > 0 && t_in_us > 0))
            continue;
        /* out-of-place and in-place are the same op: the faster one drops the odd outlier
         * (H100 table: 94 us out of place at 256 B, 26 us in place) */
        rows[n] = (CollNcclTestsRow){(uint64_t)size, MIN(t_us, t_in_us) * 1e-6,
                                     t_in_us < t_us ? busbw_in : busbw};
        n++;
    }
    g_strfreev(lines);
    return n;
}
