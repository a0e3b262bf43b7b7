/* trace: what the reader makes of a set of files and of activities it cannot place by their
 * launch. Pins the step of a GPU activity without a launch record (CUDA graph replays keep their
 * cudaGraphLaunch; one whose id is below every recorded call ran before the window, so no step;
 * one between recorded calls is placed by the call before it), the ranks aligned on Kineto's
 * baseTimeNanoseconds, and the sets refused: files without distributedInfo, disjoint steps. */
#include "testutil.h"

#include "trace/trace.h"

static char *write_tmp(const char *name, const char *text)
{
    char *path = g_build_filename(g_get_tmp_dir(), name, NULL);
    if (!g_file_set_contents(path, text, -1, NULL))
        fail_msg("cannot write %s", path);
    return path;
}

#define STEP(n, ts, dur)                                                                           \
    "{\"ph\":\"X\",\"cat\":\"user_annotation\",\"name\":\"ProfilerStep#" #n "\",\"pid\":1,"        \
    "\"tid\":1,\"ts\":" #ts ",\"dur\":" #dur "}"
#define CALL(name, ts, corr)                                                                       \
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"" name "\",\"pid\":1,\"tid\":1,"            \
    "\"ts\":" #ts ",\"dur\":3,\"args\":{\"correlation\":" #corr "}}"
#define KERNEL(name, ts, corr, stream)                                                             \
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"" name "\",\"pid\":0,\"tid\":" #stream            \
    ",\"ts\":" #ts ",\"dur\":10,\"args\":{\"correlation\":" #corr ",\"stream\":" #stream "}}"

/* Steps #1 0..1000 and #2 1000..2000. Kernels, by start: an optimizer kernel of the step before
 * the window (id 5, below every recorded call) running at 100; a CUDA graph's two kernels
 * (cudaGraphLaunch, id 20, at 300); a GEMM launched at 950 (id 30) running at 1050; an NCCL
 * kernel whose launch is not recorded (id 31: after call 30, in step #1) running at 1100. */
/* clang-format off */
static const char UNLAUNCHED[] =
    "{\"schemaVersion\": 1, \"traceEvents\": [\n"
    STEP(1, 0, 1000) ",\n"
    STEP(2, 1000, 1000) ",\n"
    KERNEL("void multi_tensor_apply_kernel<adam>", 100, 5, 7) ",\n"
    CALL("cudaGraphLaunch", 300, 20) ",\n"
    KERNEL("ampere_sgemm_64x64_nn", 400, 20, 7) ",\n"
    KERNEL("vectorized_elementwise_kernel<relu>", 450, 20, 7) ",\n"
    CALL("cudaLaunchKernel", 950, 30) ",\n"
    KERNEL("ampere_sgemm_128x64_nn", 1050, 30, 7) ",\n"
    KERNEL("ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)", 1100, 31,
           13) ",\n"
    CALL("cudaEventQuery", 1500, 40) "\n],\n"
    "\"distributedInfo\": {\"backend\": \"nccl\", \"rank\": 0, \"world_size\": 1}}\n";
/* clang-format on */

static void test_unlaunched(void **state)
{
    (void)state;
    char *path = write_tmp("fsd-test-trace-unlaunched.json", UNLAUNCHED);
    GError *error = NULL;
    TraceRank *r = trace_rank_read(path, &error);
    if (!r)
        fail_msg("%s", error->message);
    assert_int_equal(r->kernels->len, 5);
    const TraceKernel *k = (const TraceKernel *)r->kernels->data;
    assert_int_equal(k[0].step, -1); /* ran in step #1, launched before the trace */
    assert_true(isnan(k[0].launch_us));
    assert_int_equal(k[1].step, 0); /* the graph's kernels: their cudaGraphLaunch */
    assert_int_equal(k[2].step, 0);
    assert_true(k[1].launch_us == 300 && k[2].launch_us == 300);
    assert_int_equal(k[3].step, 0); /* launched at 950, ran in step #2's span */
    assert_int_equal(k[4].step, 0); /* no launch: after call 30, which is in step #1 */
    assert_int_equal(k[4].stream, 13);
    assert_int_equal(k[4].cls, TRACE_CLASS_NCCL);
    assert_int_equal(r->colls->len, 1);
    assert_string_equal(g_array_index(r->colls, TraceColl, 0).source, "kernel name");
    assert_int_equal(r->unlaunched, 2);
    assert_int_equal(r->unlaunched_before, 1);
    const TraceStep *s = (const TraceStep *)r->steps->data;
    assert_true(s[0].gpu_start_us == 400 && s[0].gpu_end_us == 1110);
    assert_true(isnan(s[1].gpu_start_us));
    trace_rank_free(r);
    g_unlink(path);
    g_free(path);
}

/* One rank of a 2-rank job: step #3 at TS, an all-reduce kernel 100 us after it. */
static char *rank_text(int rank, const char *base, int ts, bool distributed, int step)
{
    char *dist = distributed ? g_strdup_printf(", \"distributedInfo\": {\"backend\": \"nccl\", "
                                               "\"rank\": %d, \"world_size\": 2}",
                                               rank)
                             : g_strdup("");
    char *text = g_strdup_printf(
        "{\"schemaVersion\": 1%s%s, \"traceEvents\": [\n"
        "{\"ph\":\"X\",\"cat\":\"user_annotation\",\"name\":\"ProfilerStep#%d\",\"pid\":1,"
        "\"tid\":1,\"ts\":%d,\"dur\":1000},\n"
        "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":1,"
        "\"ts\":%d,\"dur\":3,\"args\":{\"correlation\":1}},\n"
        "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ncclKernel_AllReduce_RING_LL_Sum_float\","
        "\"pid\":0,\"tid\":13,\"ts\":%d.5,\"dur\":50,\"args\":{\"correlation\":1,\"stream\":13}}"
        "]%s}\n",
        base, dist, step, ts, ts + 10, ts + 100, "");
    g_free(dist);
    return text;
}

static TraceSet *read_pair(const char *t0, const char *t1, GError **error)
{
    char *p0 = write_tmp("fsd-test-trace-set0.json", t0),
         *p1 = write_tmp("fsd-test-trace-set1.json", t1);
    const char *files[] = {p1, p0}; /* by rank, not by the order given */
    TraceSet *set = trace_set_read(files, 2, error);
    g_unlink(p0), g_unlink(p1);
    g_free(p0), g_free(p1);
    return set;
}

static void test_base_time(void **state)
{
    (void)state;
    /* rank 1's base is 1 ms + 123 ns later: its ts 1000 us smaller for the same instant */
    char *t0 = rank_text(0, ", \"baseTimeNanoseconds\": 1711964646000000000", 5000, true, 3),
         *t1 = rank_text(1, ", \"baseTimeNanoseconds\": 1711964646001000123", 4000, true, 3);
    GError *error = NULL;
    TraceSet *set = read_pair(t0, t1, &error);
    if (!set)
        fail_msg("%s", error->message);
    const TraceRank *r0 = g_ptr_array_index(set->ranks, 0), *r1 = g_ptr_array_index(set->ranks, 1);
    assert_int_equal(r0->rank, 0);
    const TraceKernel *k0 = (const TraceKernel *)r0->kernels->data,
                      *k1 = (const TraceKernel *)r1->kernels->data;
    assert_true(k0->start_us == 5100.5);               /* the earliest base: as written */
    assert_true(fabs(k1->start_us - 5100.623) < 1e-9); /* 4100.5 + 1000.123 */
    assert_true(fabs(k1->launch_us - 5010.123) < 1e-9);
    const TraceStep *s1 = (const TraceStep *)r1->steps->data;
    assert_true(fabs(s1->cpu_start_us - 5000.123) < 1e-9);
    assert_true(fabs(s1->gpu_start_us - 5100.623) < 1e-9);
    /* the matched all-reduce: rank 1 arrives last by 0.123 us, as on one clock */
    assert_int_equal(set->instances->len, 1);
    const TraceInstance *in = (const TraceInstance *)set->instances->data;
    assert_int_equal(in->ranks, 2);
    assert_int_equal(in->last_rank, 1);
    assert_true(fabs(in->latest_start_us - 5100.623) < 1e-9);
    trace_set_free(set);
    g_free(t0), g_free(t1);
}

static void expect_bad_set(const char *t0, const char *t1, const char *needle)
{
    GError *error = NULL;
    TraceSet *set = read_pair(t0, t1, &error);
    assert_null(set);
    assert_non_null(error);
    if (!strstr(error->message, needle) || !strstr(error->message, "fsd-test-trace-set"))
        fail_msg("message \"%s\" lacks \"%s\" or the file", error->message, needle);
    assert_int_equal(error->code, FSD_ERROR_INPUT);
    g_error_free(error);
}

static void test_bad_base_time(void **state)
{
    (void)state;
    char *good = rank_text(0, "", 5000, true, 3),
         *bad_base = rank_text(1, ", \"baseTimeNanoseconds\": -3", 5000, true, 3),
         *text_base = rank_text(1, ", \"baseTimeNanoseconds\": \"soon\"", 5000, true, 3);
    expect_bad_set(good, bad_base, "field 'baseTimeNanoseconds': expected a whole number");
    expect_bad_set(good, text_base, "got '\"soon\"'");
    g_free(good), g_free(bad_base), g_free(text_base);
}

static void test_bad_sets(void **state)
{
    (void)state;
    char *good = rank_text(0, "", 5000, true, 3), *plain0 = rank_text(0, "", 5000, false, 3),
         *plain1 = rank_text(1, "", 5000, false, 3),
         *other_window = rank_text(1, "", 9000, true, 30);
    expect_bad_set(plain0, plain1, "field 'distributedInfo': expected distributedInfo");
    expect_bad_set(good, plain1, "field 'distributedInfo': expected distributedInfo");
    expect_bad_set(good, other_window,
                   "field 'traceEvents.ProfilerStep#N': expected a step of "
                   "the other ranks (#3..#3 in");
    /* one file without distributedInfo is still rank 0 of 1 */
    char *p = write_tmp("fsd-test-trace-set0.json", plain0);
    const char *files[] = {p};
    GError *error = NULL;
    TraceSet *set = trace_set_read(files, 1, &error);
    if (!set)
        fail_msg("%s", error->message);
    assert_int_equal(set->world_size, 1);
    trace_set_free(set);
    g_unlink(p);
    g_free(p);
    g_free(good), g_free(plain0), g_free(plain1), g_free(other_window);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlaunched),
        cmocka_unit_test(test_base_time),
        cmocka_unit_test(test_bad_base_time),
        cmocka_unit_test(test_bad_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
