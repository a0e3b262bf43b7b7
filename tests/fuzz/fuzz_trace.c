/* libFuzzer harness: Chrome traces through compare (cmp_load), as the real trace against a fixed
 * simulated one and as the simulated trace against a fixed real one; when they load, the table,
 * the JSON, the merged trace and the timeline are made too. The input also goes through the
 * profiler-trace reader (src/trace: the streaming scanner, steps, matching) and its summary.
 * Seeds: tests/fuzz/seeds/trace. */
#include "fuzz.h"

#include "compare/compare.h"
#include "trace/trace.h"

#include <string.h>

static const char SIM[] =
    "{\"traceEvents\":[{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{"
    "\"name\":\"rank class 0 (2 ranks from rank 0)\"}},{\"name\":\"mm\",\"cat\":\"compute\","
    "\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":0,\"dur\":500}],\"otherData\":{\"generator\":"
    "\"fsdpsim\"}}";
static const char REAL[] =
    "{\"traceEvents\":[{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":1,\"tid\":1,"
    "\"ts\":0,\"dur\":400,\"args\":{\"iter\":0}}],\"otherData\":{\"generator\":\"fsdprun\","
    "\"step_time_s\":[0.001]}}";

static void one(const char *real, const char *sim)
{
    CmpResult r;
    GError *error = NULL;
    if (cmp_load(real, sim, &r, &error)) {
        FILE *out = fopen("/dev/null", "w");
        cmp_print_table(&r, real, sim, out);
        fclose(out);
        g_free(cmp_to_json(&r));
        g_free(cmp_merged_trace(&r));
        g_free(cmp_title(&r));
        CmpTimeline t;
        cmp_timeline(&r, &t);
        cmp_timeline_clear(&t);
    } else if (!error || error->domain != FSD_ERROR) {
        abort();
    }
    g_clear_error(&error);
    cmp_clear(&r);
}

static void profiler(const char *file)
{
    GError *error = NULL;
    TraceSet *set = trace_set_read(&file, 1, &error);
    if (set) {
        FILE *out = fopen("/dev/null", "w");
        trace_print_summary(set, out);
        fclose(out);
        cJSON_free(trace_summary_json(set));
        cJSON_Delete(trace_set_to_compare(set, TRACE_COMPARE_ALL));
    } else if (!error || error->domain != FSD_ERROR) {
        abort();
    }
    g_clear_error(&error);
    trace_set_free(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fatal_warnings();
    const char *input = fuzz_file("trace", data, size);
    const char *sim = fuzz_file("sim", (const uint8_t *)SIM, sizeof SIM - 1);
    const char *real = fuzz_file("real", (const uint8_t *)REAL, sizeof REAL - 1);
    one(input, sim);
    one(real, input);
    profiler(input);
    return 0;
}
