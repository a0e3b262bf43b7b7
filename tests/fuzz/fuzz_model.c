/* libFuzzer harness: model files (Hugging Face config.json, fsdpsim layer lists) through
 * model_load, then the whole-model sums that reports use. Seeds: models/. */
#include "fuzz.h"

#include "model/model.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fatal_warnings();
    const char *file = fuzz_file("model", data, size);
    GError *error = NULL;
    Model *m = model_load(file, NULL, &error);
    if (m) {
        volatile double flops = model_flops_train_per_sample(m);
        (void)flops;
        if (m->n_modules > 0)
            (void)model_subtree_params(m, 0);
        model_free(m);
    } else if (!error || error->domain != FSD_ERROR) {
        abort(); /* a failure must say why */
    }
    g_clear_error(&error);
    return 0;
}
