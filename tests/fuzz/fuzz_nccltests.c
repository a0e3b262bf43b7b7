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
    for (int k = 0; k < IR_COLL_KIND_COUNT; k++) {
        GError *error = NULL;
        int n = coll_nccltests_read("fuzz.txt", text, (IrCollKind)k, rows, 16, &error);
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
