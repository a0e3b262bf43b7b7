/* net_repeat: a steady-state skip's sums. The skip adds each proven period's additions again,
 * m times, in the same order, so that every sum is the full simulation's to the bit (sim_steady.c
 * for the results' sums, net_flows_skip for the link classes' bytes). Done literally that is
 * O(m x additions): 24 M instructions of the 1T pipeline's 500 M at 444 periods, ten times that
 * at 4096 micro-batches. This gives the same bits in O(additions x binades crossed) (from 64
 * periods on; fewer are added literally).
 *
 * Why it is exact. Adding v >= 0 to a double y in the binade [2^e, 2^(e+1)), where the result
 * stays in it, rounds (y + v) to a multiple of the binade's ulp u = 2^(e-52); y is one, so the
 * result is y + u * q with q the integer nearest to v / u (v / u is exact: u is a power of two),
 * whatever y is, unless v / u lies halfway between two integers (then the tie goes to the even
 * multiple, which depends on y). So while a sum stays inside one binade, each period adds the
 * same number of ulps, D = sum of q, and n periods add n * D ulps exactly: the sum jumps there,
 * then the period that leaves the binade is added literally and the next binade is tried. A
 * sum at or below zero, a negative or non-finite addition, or a halfway case is added
 * literally. tests/unit/test_net.c compares it with the literal loop bit for bit. */
#include "net.h"

#include <math.h>

/* x after m periods of adding v[0..k-1] in order. */
static double repeat_one(double x, const double *v, int k, int64_t m)
{
    while (m > 0) {
        int64_t n = 0;
        /* x = K u with 2^52 <= K < 2^53, u the binade's ulp (above the subnormals) */
        if (isfinite(x) && x >= 0x1p-960) {
            int e;
            frexp(x, &e); /* x in [2^(e-1), 2^e) */
            double u = ldexp(1.0, e - 53);
            uint64_t K = (uint64_t)(x / u), top = (uint64_t)1 << 53, D = 0;
            bool ok = true;
            for (int i = 0; i < k && ok; i++) {
                double w = v[i] / u;
                ok = v[i] >= 0 && w < 0x1p53;
                double whole = floor(w), frac = w - whole;
                ok = ok && frac != 0.5;
                D += ok ? (uint64_t)whole + (frac > 0.5) : 0;
                ok = ok && D < top;
            }
            if (ok)
                n = D == 0 ? m : (int64_t)MIN((uint64_t)m, (top - 1 - K) / D);
            if (n > 0) {
                x = (double)(K + (uint64_t)n * D) * u; /* an integer below 2^53, times 2^k */
                m -= n;
                continue;
            }
        }
        for (int i = 0; i < k; i++) /* literally: this period leaves the binade */
            x += v[i];
        m--;
    }
    return x;
}

typedef struct {
    double *slot;
    int at;
} Add;

static int cmp_add(const void *a, const void *b)
{
    const Add *x = a, *y = b;
    if (x->slot != y->slot)
        return (x->slot > y->slot) - (x->slot < y->slot);
    return (x->at > y->at) - (x->at < y->at);
}

void net_repeat_adds(double *const *slot, const double *value, int n, int64_t periods)
{
    if (n <= 0 || periods <= 0)
        return;
    /* Few periods: literally, cheaper than ordering the additions by sum (a sort of n takes
     * about 20 compares an addition at a million; a literal period one add: the 1T SP layout's
     * skip of 3 blocks, with 3 M additions a block, took 0.9 G instructions more sorted) */
    if (periods < 64) {
        for (int64_t j = 0; j < periods; j++)
            for (int i = 0; i < n; i++)
                *slot[i] += value[i];
        return;
    }
    /* each sum's additions in the period's order (different sums do not interact) */
    Add *adds = g_new(Add, n);
    for (int i = 0; i < n; i++)
        adds[i] = (Add){slot[i], i};
    qsort(adds, (size_t)n, sizeof *adds, cmp_add);
    double *v = g_new(double, n);
    for (int i = 0; i < n;) {
        int j = i;
        for (; j < n && adds[j].slot == adds[i].slot; j++)
            v[j - i] = value[adds[j].at];
        *adds[i].slot = repeat_one(*adds[i].slot, v, j - i, periods);
        i = j;
    }
    g_free(v);
    g_free(adds);
}
