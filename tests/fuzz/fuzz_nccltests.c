/* libFuzzer harness: nccl-tests output, read strictly for each collective (collective
 * --reference) and leniently (the validation tables). Every row returned is in range. Seeds:
 * tests/fuzz/seeds/nccltests. */
#include "fuzz.h"

#include "coll/coll.h"

#include <math.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fatal_warnings();
    char *text = fuzz_text(data, size);
    CollNcclTestsRow rows[16];
    static const char *const ops[] = {"allreduce", "allgather", "reduce_scatter",
                                      "broadcast", "alltoall",  "sendrecv"};
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
        GError *error = NULL;
        int n = coll_nccltests_read("fuzz.txt", text, coll_test_find(ops[k]), rows, 16, &error);
        if (n < 0 && (!error || error->domain != FSD_ERROR))
            abort();
        for (int i = 0; i < n; i++)
            if (rows[i].bytes < 1 || !(rows[i].time_s > 0) || !isfinite(rows[i].busbw_GBps))
                abort();
        g_clear_error(&error);
    }
    int n = coll_nccltests_parse(text, "===", NULL, rows, 16);
    for (int i = 0; i < n; i++)
        if (rows[i].bytes < 1 || !(rows[i].time_s > 0))
            abort();
    g_free(text);
    return 0;
}
