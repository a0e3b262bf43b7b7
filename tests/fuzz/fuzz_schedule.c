/* libFuzzer harness: schedule files (fsdpsim-schedule JSON) through ir_schedule_from_text, which
 * checks a schedule as a whole (ir_check.c), then written back and read again: what the reader
 * accepts, the writer must write and the reader accept again, unchanged. Seeds:
 * tests/fuzz/seeds/schedule and schedules tools/fuzz emits. */
#include "fuzz.h"

#include "ir/ir.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fatal_warnings();
    char *text = fuzz_text(data, size);
    GError *error = NULL;
    IrSchedule *s = ir_schedule_from_text("fuzz.json", text, &error);
    if (s) {
        char *json = ir_schedule_to_json(s);
        IrSchedule *back = ir_schedule_from_text("fuzz-back.json", json, &error);
        if (!back || !ir_schedule_equal(s, back))
            abort(); /* the writer wrote what the reader refuses or reads differently */
        ir_schedule_free(back);
        g_free(json);
        ir_schedule_free(s);
    } else if (!error || error->domain != FSD_ERROR) {
        abort();
    }
    g_clear_error(&error);
    g_free(text);
    return 0;
}
