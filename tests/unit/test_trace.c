/* trace: the profiler-trace reader's pieces. Pins the kernel classes, the collective and dtype
 * spellings it understands, the streaming scanner on awkward but valid JSON (braces and escaped
 * quotes in names, distributedInfo after traceEvents), the step of a GPU activity by its launch
 * (not by when it ran), and the collective-size fallbacks (annotation shapes, kernel name). */
#include "testutil.h"

#include "trace/trace.h"

static char *write_tmp(const char *name, const char *text)
{
    char *path = g_build_filename(g_get_tmp_dir(), name, NULL);
    if (!g_file_set_contents(path, text, -1, NULL))
        fail_msg("cannot write %s", path);
    return path;
}

static void test_classes(void **state)
{
    (void)state;
    assert_int_equal(trace_class_of("ampere_sgemm_128x64_nn", false), TRACE_CLASS_GEMM);
    assert_int_equal(trace_class_of("sm90_xmma_gemm_bf16bf16_bf16f32", false), TRACE_CLASS_GEMM);
    assert_int_equal(trace_class_of("flash_fwd_kernel<Flash_fwd_kernel_traits>", false),
                     TRACE_CLASS_ATTENTION);
    assert_int_equal(trace_class_of("void at::native::vectorized_elementwise_kernel<4>", false),
                     TRACE_CLASS_ELEMENTWISE);
    assert_int_equal(trace_class_of("void at::native::(anonymous)::layer_norm_kernel", false),
                     TRACE_CLASS_ELEMENTWISE);
    assert_int_equal(trace_class_of("multi_tensor_apply_kernel<AdamFunctor>", false),
                     TRACE_CLASS_OPTIMIZER);
    assert_int_equal(trace_class_of("ncclKernel_AllReduce_RING_LL_Sum_float", false),
                     TRACE_CLASS_NCCL);
    assert_int_equal(trace_class_of("Memcpy HtoD (Pageable -> Device)", true), TRACE_CLASS_MEMCPY);
    assert_int_equal(trace_class_of("embedding_backward_feature_kernel", false), TRACE_CLASS_OTHER);
}

static void test_spellings(void **state)
{
    (void)state;
    assert_int_equal(trace_coll_kind_of("allreduce"), TRACE_COLL_ALLREDUCE);
    assert_int_equal(trace_coll_kind_of("_allgather_base"), TRACE_COLL_ALLGATHER);
    assert_int_equal(trace_coll_kind_of("all_to_all"), TRACE_COLL_ALLTOALL);
    assert_int_equal(trace_coll_kind_of("ncclKernel_ReduceScatter_RING_LL_Sum_bf16"),
                     TRACE_COLL_REDUCE_SCATTER);
    assert_int_equal(trace_coll_kind_of("ncclDevKernel_SendRecv(ncclDevKernelArgs)"),
                     TRACE_COLL_SENDRECV);
    assert_int_equal(trace_coll_kind_of("ncclKernel_Reduce_RING_LL_Sum_float"), TRACE_COLL_REDUCE);
    assert_int_equal(trace_coll_kind_of("barrier"), TRACE_COLL_ALLREDUCE);
    assert_int_equal(trace_coll_kind_of("aten::mm"), -1);
    const char *name = NULL;
    assert_int_equal(trace_dtype_bytes("BFloat16", &name), 2);
    assert_string_equal(name, "bf16");
    assert_int_equal(trace_dtype_bytes("c10::Half", &name), 2);
    assert_int_equal(trace_dtype_bytes("Float", &name), 4);
    assert_string_equal(name, "float");
    assert_int_equal(trace_dtype_bytes("long int", &name), 8);
    assert_int_equal(trace_dtype_bytes("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t", &name), 1);
    assert_int_equal(trace_dtype_bytes("ncclKernel_AllGather_RING_LL_Sum_bf16", &name), 2);
    /* names that hold a shorter one: float8 (torchao's all-gathers), complex, 16-bit ints */
    assert_int_equal(trace_dtype_bytes("Float8_e4m3fn", &name), 1);
    assert_string_equal(name, "fp8");
    assert_int_equal(trace_dtype_bytes("c10::Float8_e5m2", &name), 1);
    assert_int_equal(trace_dtype_bytes("ComplexFloat", &name), 8);
    assert_int_equal(trace_dtype_bytes("c10::complex<double>", &name), 16);
    assert_int_equal(trace_dtype_bytes("short int", &name), 2);
    assert_int_equal(trace_dtype_bytes("UInt16", &name), 2);
    assert_int_equal(trace_dtype_bytes("Scalar", &name), 0);
    assert_null(name);
    /* nccl-tests' factors */
    assert_true(fabs(trace_busbw_factor(TRACE_COLL_ALLREDUCE, 8) - 1.75) < 1e-12);
    assert_true(fabs(trace_busbw_factor(TRACE_COLL_ALLGATHER, 4) - 0.75) < 1e-12);
    assert_true(fabs(trace_busbw_factor(TRACE_COLL_BROADCAST, 4) - 1.0) < 1e-12);
}

/* Rank 3 of 4, distributedInfo after traceEvents; a name with braces and an escaped quote.
 * Step 7 on the host 0..100 us. Kernel a (GEMM) launched at 10, runs 150..180: after the step's
 * host span, still step 7. Kernel b launched at -50, before any step: no step. An all-gather
 * kernel without metadata, launched at 40 inside nccl:all_gather (1024 bf16 per rank), and an
 * all-reduce kernel launched outside any annotation (size unknown, dtype from its name). */
static const char TRICKY[] =
    "{\"schemaVersion\": 1,\n \"traceName\": \"x{[\\\"]}\", \"traceEvents\": [\n"
    "{\"ph\":\"X\",\"cat\":\"user_annotation\",\"name\":\"ProfilerStep#7\",\"pid\":1,\"tid\":1,"
    "\"ts\":0,\"dur\":100},\n"
    "{\"ph\":\"X\",\"cat\":\"cpu_op\",\"name\":\"aten::{weird\\\"}[\",\"pid\":1,\"tid\":1,"
    "\"ts\":1,\"dur\":2, \"args\": {\"Input Dims\": [[1, 2], []]}},\n"
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":1,"
    "\"ts\":10,\"dur\":3,\"args\":{\"correlation\":5}},\n"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ampere_sgemm_64x64\",\"pid\":0,\"tid\":7,"
    "\"ts\":150,\"dur\":30,\"args\":{\"correlation\":5,\"stream\":7}},\n"
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":1,"
    "\"ts\":-50,\"dur\":3,\"args\":{\"correlation\":6}},\n"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"relu_kernel\",\"pid\":0,\"tid\":7,"
    "\"ts\":-40,\"dur\":5,\"args\":{\"correlation\":6,\"stream\":7}},\n"
    "{\"ph\":\"X\",\"cat\":\"user_annotation\",\"name\":\"nccl:_all_gather_base\",\"pid\":1,"
    "\"tid\":2,\"ts\":35,\"dur\":20,\"args\":{\"Input Dims\":[[32, 32]],\"Input type\":"
    "[\"c10::BFloat16\"]}},\n"
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":2,"
    "\"ts\":40,\"dur\":3,\"args\":{\"correlation\":8}},\n"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ncclKernel_AllGather_RING_LL_Sum_int8_t(x)\","
    "\"pid\":0,\"tid\":20,\"ts\":60,\"dur\":10,\"args\":{\"correlation\":8,\"stream\":20}},\n"
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":1,"
    "\"ts\":90,\"dur\":3,\"args\":{\"correlation\":9}},\n"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ncclKernel_AllReduce_RING_LL_Sum_half(x, long)\","
    "\"pid\":0,\"tid\":20,\"ts\":190,\"dur\":10,\"args\":{\"correlation\":9,\"stream\":20}},\n"
    "[1, 2], 3 ],\n"
    "\"distributedInfo\": {\"backend\": \"nccl\", \"rank\": 3, \"world_size\": 4}}\n";

static void test_read_tricky(void **state)
{
    (void)state;
    char *path = write_tmp("fsd-test-trace-tricky.json", TRICKY);
    GError *error = NULL;
    TraceRank *r = trace_rank_read(path, &error);
    if (!r)
        fail_msg("%s", error->message);
    assert_int_equal(r->rank, 3);
    assert_int_equal(r->world_size, 4);
    assert_int_equal(r->events, 11); /* the objects; [1, 2] and 3 are skipped */
    assert_int_equal(r->steps->len, 1);
    assert_int_equal(g_array_index(r->steps, TraceStep, 0).number, 7);
    assert_int_equal(r->kernels->len, 4);
    /* by start: relu (-40, no step), allgather (60), gemm (150), allreduce (190) */
    const TraceKernel *k = (const TraceKernel *)r->kernels->data;
    assert_int_equal(k[0].step, -1);
    assert_int_equal(k[2].cls, TRACE_CLASS_GEMM);
    assert_int_equal(k[2].step, 0); /* launched at 10, in step 7, though it ran at 150 */
    assert_true(k[2].launch_us == 10);
    const TraceStep *s = &g_array_index(r->steps, TraceStep, 0);
    assert_true(s->gpu_start_us == 60 && s->gpu_end_us == 200);
    assert_int_equal(r->colls->len, 2);
    const TraceColl *ag = &g_array_index(r->colls, TraceColl, 0),
                    *ar = &g_array_index(r->colls, TraceColl, 1);
    assert_int_equal(ag->kind, TRACE_COLL_ALLGATHER);
    assert_int_equal(ag->in_nelems, 1024);
    assert_int_equal(ag->out_nelems, 4096); /* the group's inputs: the world, 4 */
    assert_int_equal(ag->dtype_bytes, 2);   /* the annotation's type, not the kernel's int8 */
    assert_string_equal(ag->source, "annotation input dims");
    assert_int_equal(ar->kind, TRACE_COLL_ALLREDUCE);
    assert_string_equal(ar->source, "kernel name");
    assert_string_equal(ar->dtype, "half"); /* "(x, long)" is no dtype */
    assert_int_equal(ar->seq, 1);
    trace_rank_free(r);
    g_unlink(path);
    g_free(path);
}

/* Two steps: #1 on the host 0..100 with one kernel, #2 100..300 with two. */
static const char TWO_STEPS[] =
    "{\"schemaVersion\": 1, \"traceEvents\": [\n"
    "{\"ph\":\"X\",\"cat\":\"user_annotation\",\"name\":\"ProfilerStep#1\",\"pid\":1,\"tid\":1,"
    "\"ts\":0,\"dur\":100},\n"
    "{\"ph\":\"X\",\"cat\":\"user_annotation\",\"name\":\"ProfilerStep#2\",\"pid\":1,\"tid\":1,"
    "\"ts\":100,\"dur\":200},\n"
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":1,"
    "\"ts\":10,\"dur\":3,\"args\":{\"correlation\":5}},\n"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ampere_sgemm_64x64\",\"pid\":0,\"tid\":7,"
    "\"ts\":20,\"dur\":30,\"args\":{\"correlation\":5,\"stream\":7}},\n"
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":1,"
    "\"ts\":110,\"dur\":3,\"args\":{\"correlation\":6}},\n"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ampere_sgemm_64x64\",\"pid\":0,\"tid\":7,"
    "\"ts\":120,\"dur\":40,\"args\":{\"correlation\":6,\"stream\":7}},\n"
    "{\"ph\":\"X\",\"cat\":\"cuda_runtime\",\"name\":\"cudaLaunchKernel\",\"pid\":1,\"tid\":1,"
    "\"ts\":170,\"dur\":3,\"args\":{\"correlation\":7}},\n"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"relu_kernel\",\"pid\":0,\"tid\":7,"
    "\"ts\":180,\"dur\":5,\"args\":{\"correlation\":7,\"stream\":7}}\n"
    "], \"distributedInfo\": {\"backend\": \"nccl\", \"rank\": 0, \"world_size\": 1}}\n";

static void count_activity(void *data, const char *cat, const char *name, int pid, int tid,
                           double ts_us, double dur_us, int iter)
{
    (void)cat, (void)name, (void)pid, (void)tid, (void)ts_us;
    double *sums = data; /* per iteration: count, then duration */
    sums[2 * iter] += 1, sums[2 * iter + 1] += dur_us;
}

/* the X events of a compare document: per iteration, count and duration */
static void doc_sums(const cJSON *doc, double *sums)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "traceEvents"))
    {
        if (strcmp(cJSON_GetObjectItem(e, "ph")->valuestring, "X"))
            continue;
        int iter = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "args"), "iter")->valueint;
        sums[2 * iter] += 1, sums[2 * iter + 1] += cJSON_GetObjectItem(e, "dur")->valuedouble;
    }
}

/* compare's view of a profiler trace: every step's activities from the reader's arrays
 * (trace_set_activities), the document of one step (the median's) or of none, as the whole
 * document holds them */
static void test_compare_view(void **state)
{
    (void)state;
    char *path = write_tmp("fsd-test-trace-two-steps.json", TWO_STEPS);
    GError *error = NULL;
    const char *files[] = {path};
    TraceSet *set = trace_set_read(files, 1, &error);
    if (!set)
        fail_msg("%s", error->message);
    double all[4] = {0}, streamed[4] = {0}, one[4] = {0}, none[4] = {0};
    cJSON *doc = trace_set_to_compare(set, TRACE_COMPARE_ALL);
    doc_sums(doc, all);
    assert_int_equal(cJSON_GetArraySize(
                         cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "otherData"), "step_time_s")),
                     2);
    cJSON_Delete(doc);
    assert_true(all[0] == 1 && all[1] == 30 && all[2] == 2 && all[3] == 45);
    trace_set_activities(set, count_activity, streamed);
    assert_memory_equal(all, streamed, sizeof all);
    doc = trace_set_to_compare(set, 1);
    doc_sums(doc, one);
    assert_true(one[0] == 0 && one[2] == 2 && one[3] == 45);
    cJSON_Delete(doc);
    doc = trace_set_to_compare(set, -1);
    doc_sums(doc, none);
    assert_true(none[0] == 0 && none[2] == 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "traceEvents")), 1); /* meta */
    cJSON_Delete(doc);
    trace_set_free(set);
    g_unlink(path);
    g_free(path);
}

/* bad traces: the file and the field in the message */
static void expect_bad(const char *text, const char *needle)
{
    char *path = write_tmp("fsd-test-trace-bad.json", text);
    GError *error = NULL;
    TraceRank *r = trace_rank_read(path, &error);
    assert_null(r);
    assert_non_null(error);
    if (!strstr(error->message, needle) || !strstr(error->message, path))
        fail_msg("message \"%s\" lacks \"%s\" or the file", error->message, needle);
    assert_int_equal(error->code, FSD_ERROR_INPUT);
    g_error_free(error);
    g_unlink(path);
    g_free(path);
}

static void test_read_errors(void **state)
{
    (void)state;
    expect_bad("[1, 2]", "field 'traceEvents'");
    expect_bad("{\"traceEvents\": []}", "field 'schemaVersion'");
    expect_bad("{\"schemaVersion\": 1, \"traceEvents\": []}", "ProfilerStep#N");
    expect_bad("{\"schemaVersion\": 1, \"traceEvents\": [{\"ph\":\"X\"", "truncated");
    expect_bad("{\"schemaVersion\": 1, \"traceEvents\": [1, [2], {\"ph\":\"X\",}]}",
               "field 'traceEvents[2]'");
    expect_bad("{\"schemaVersion\": 1, \"traceEvents\": [{\"ph\":\"X\",\"cat\":\"kernel\","
               "\"name\":\"k\",\"ts\":1,\"dur\":-4}]}",
               "field 'traceEvents[0].dur'");
    expect_bad("{\"schemaVersion\": 1, \"traceEvents\": [{\"ph\":\"X\",\"cat\":\"user_annotation\","
               "\"name\":\"ProfilerStep#x\",\"ts\":1,\"dur\":4}]}",
               "field 'traceEvents[0].name'");
    expect_bad("{\"schemaVersion\": 1, \"distributedInfo\": {\"rank\": 4, \"world_size\": 4}, "
               "\"traceEvents\": []}",
               "field 'distributedInfo.rank'");
    expect_bad("{\"schemaVersion\": 1, \"traceEvents\": []} x", "expected the end of the file");
    /* NCCL metadata out of range: 4e18 elements all-gathered over 4 ranks overflowed int64 */
    expect_bad(
        "{\"schemaVersion\": 1, \"traceEvents\": [{\"ph\":\"X\",\"cat\":\"cpu_op\","
        "\"name\":\"record_param_comms\",\"ts\":0,\"dur\":9,\"args\":{\"Collective name\":"
        "\"_allgather_base\",\"In msg nelems\":4e18,\"Group size\":4}}]}",
        "field 'traceEvents[0].args.In msg nelems': expected a whole number in [0, 68719476736]");
    expect_bad("{\"schemaVersion\": 1, \"traceEvents\": [{\"ph\":\"X\",\"cat\":\"kernel\","
               "\"name\":\"ncclDevKernel_AllGather_RING_LL\",\"ts\":0,\"dur\":9,\"args\":{"
               "\"Collective name\":\"allgather\",\"In msg nelems\":8,\"Group size\":-2}}]}",
               "field 'traceEvents[0].args.Group size'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),     cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_read_tricky), cmocka_unit_test(test_compare_view),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
