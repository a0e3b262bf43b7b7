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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlaunched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
