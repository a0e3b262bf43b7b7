/* compare: real (fsdprun, PyTorch profiler) vs simulated (fsdpsim) traces. Pins the step-time
 * median and range, the per-rank-per-step averaging of real op kinds, the rank-weighted averaging
 * of simulated classes, the sign of the error, the merged trace, the timeline's rows and spans,
 * the classification of profiler kernels, and the messages for wrong inputs. */
#include "testutil.h"

#include "compare/compare.h"

/* absolute tolerance: several expected values here are 0 */
static void assert_near(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.12g, want %.12g", got, want);
}

/* 2 ranks, 3 iterations (step times 1.0, 1.2, 0.9 s). Rank 0: one 0.2 s allreduce per iteration;
 * rank 1: one 0.4 s allreduce; both one 0.5 s compute. */
static const char *REAL =
    "{\"traceEvents\":["
    "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\"rank 0 "
    "(real)\"}},"
    "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":2,\"tid\":0,\"args\":{\"name\":\"rank 1 "
    "(real)\"}},"
    "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":1,\"tid\":2,\"ts\":0,\"dur\":"
    "200000,\"args\":{\"iter\":0}},"
    "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":1,\"tid\":2,\"ts\":1000000,"
    "\"dur\":200000,\"args\":{\"iter\":1}},"
    "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":1,\"tid\":2,\"ts\":2500000,"
    "\"dur\":200000,\"args\":{\"iter\":2}},"
    "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":2,\"tid\":2,\"ts\":10,\"dur\":"
    "400000,\"args\":{\"iter\":0}},"
    "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":2,\"tid\":2,\"ts\":1000010,"
    "\"dur\":400000,\"args\":{\"iter\":1}},"
    "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":2,\"tid\":2,\"ts\":2500010,"
    "\"dur\":400000,\"args\":{\"iter\":2}},"
    "{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":0,\"dur\":500000,"
    "\"args\":{\"iter\":0}},"
    "{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":1000000,\"dur\":"
    "500000,\"args\":{\"iter\":1}},"
    "{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":1,\"tid\":1,\"ts\":2500000,\"dur\":"
    "500000,\"args\":{\"iter\":2}},"
    "{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":2,\"tid\":1,\"ts\":0,\"dur\":500000,"
    "\"args\":{\"iter\":0}},"
    "{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":2,\"tid\":1,\"ts\":1000000,\"dur\":"
    "500000,\"args\":{\"iter\":1}},"
    "{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",\"pid\":2,\"tid\":1,\"ts\":2500000,\"dur\":"
    "500000,\"args\":{\"iter\":2}}"
    "],\"otherData\":{\"generator\":\"fsdprun\",\"step_time_s\":[1.0,1.2,0.9]}}";

/* Two classes: class 1 has 3 ranks (allreduce 0.3 s), class 2 has 1 rank (allreduce 0.7 s);
 * the last op ends at 1.1 s. */
static const char *SIM = "{\"traceEvents\":["
                         "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{"
                         "\"name\":\"rank class 0 (3 ranks from rank 0)\"}},"
                         "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":2,\"tid\":0,\"args\":{"
                         "\"name\":\"rank class 1 (1 ranks from rank 3)\"}},"
                         "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":1,\"tid\":2,"
                         "\"ts\":0,\"dur\":300000},"
                         "{\"name\":\"ar\",\"cat\":\"allreduce\",\"ph\":\"X\",\"pid\":2,\"tid\":2,"
                         "\"ts\":400000,\"dur\":700000},"
                         "{\"name\":\"memory in use "
                         "(GiB)\",\"ph\":\"C\",\"pid\":1,\"ts\":5000000,\"args\":{\"tensors\":1}}"
                         "],\"otherData\":{\"generator\":\"fsdpsim\"}}";

static char *write_tmp(const char *name, const char *text)
{
    char *path = g_build_filename(g_get_tmp_dir(), name, NULL);
    g_file_set_contents(path, text, -1, NULL);
    return path;
}

static void test_compare_numbers(void **state)
{
    (void)state;
    char *real = write_tmp("fsd-test-real.json", REAL), *sim = write_tmp("fsd-test-sim.json", SIM);
    CmpResult r;
    GError *error = NULL;
    assert_true(cmp_load(real, sim, &r, &error));
    assert_int_equal(r.iterations, 3);
    assert_int_equal(r.ranks, 2);
    assert_near(r.real_median_s, 1.0, 1e-12);
    assert_near(r.real_min_s, 0.9, 1e-12);
    assert_near(r.real_max_s, 1.2, 1e-12);
    assert_int_equal(r.median_iter, 0);
    /* counters do not count: the simulated step ends with the last op, at 1.1 s */
    assert_near(r.sim_s, 1.1, 1e-9);
    assert_near(r.error, 0.1, 1e-9); /* (1.1 - 1.0) / 1.0: the simulator is slower */
    assert_int_equal(r.kinds->len, 2);
    const CmpKind *ar = &g_array_index(r.kinds, CmpKind, 0),
                  *mm = &g_array_index(r.kinds, CmpKind, 1);
    assert_string_equal(ar->kind, "allreduce"); /* sorted by name */
    assert_string_equal(mm->kind, "compute");
    assert_near(ar->real_s, 0.3, 1e-9);                    /* (0.2 + 0.4) / 2 ranks */
    assert_near(ar->sim_s, (3 * 0.3 + 1 * 0.7) / 4, 1e-9); /* weighted by ranks */
    assert_near(ar->real_calls, 1, 1e-12);
    assert_near(mm->real_s, 0.5, 1e-9);
    assert_near(mm->sim_s, 0, 1e-12);
    assert_true(isnan(cmp_error(1, 0)));
    assert_near(cmp_error(0.9, 1.0), -0.1, 1e-12);

    char *json = cmp_to_json(&r);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_near(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "real"), "step_time_s")->valuedouble,
                1.0, 1e-12);
    assert_near(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "sim"), "step_time_s")->valuedouble, 1.1,
                1e-9);
    assert_near(cJSON_GetObjectItem(o, "error")->valuedouble, 0.1, 1e-9);
    cJSON *ar_json = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "op_kinds"), "allreduce");
    assert_near(cJSON_GetObjectItem(ar_json, "error")->valuedouble, (0.4 - 0.3) / 0.3, 1e-9);
    /* a kind the simulator never runs: -100 % */
    assert_near(cJSON_GetObjectItem(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(o, "op_kinds"), "compute"), "error")
                    ->valuedouble,
                -1, 1e-12);
    cJSON_Delete(o);
    g_free(json);

    /* merged: iteration 0 of both ranks (2 + 2 X events) and the 2 simulated X events, sim pids
     * moved below the real ones, names prefixed */
    char *merged = cmp_merged_trace(&r);
    o = cJSON_Parse(merged);
    assert_non_null(o);
    int x = 0, sim_pids = 0, real_names = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, "traceEvents"))
    {
        const char *ph = cJSON_GetObjectItem(e, "ph")->valuestring;
        if (strcmp(ph, "X") == 0) {
            x++;
            if (cJSON_GetObjectItem(e, "pid")->valueint >= 100000)
                sim_pids++;
            else
                assert_true(cJSON_GetObjectItem(e, "ts")->valuedouble <= 10.0); /* shifted to 0 */
        }
        const cJSON *args = cJSON_GetObjectItem(e, "args");
        const cJSON *n = args ? cJSON_GetObjectItem(args, "name") : NULL;
        if (n && cJSON_IsString(n) && g_str_has_prefix(n->valuestring, "real: rank"))
            real_names++;
    }
    assert_int_equal(x, 6);
    assert_int_equal(sim_pids, 2);
    assert_int_equal(real_names, 2);
    cJSON_Delete(o);
    g_free(merged);
    cmp_clear(&r);
    g_unlink(real), g_unlink(sim);
    g_free(real), g_free(sim);
}

static void test_kind_of(void **state)
{
    (void)state;
    assert_string_equal(cmp_kind_of("kernel", "ncclKernel_AllGather_RING_LL_Sum_bf16"),
                        "allgather");
    assert_string_equal(cmp_kind_of("kernel", "ncclDevKernel_ReduceScatter_Sum_f32_RING_LL"),
                        "reduce_scatter");
    assert_string_equal(cmp_kind_of("kernel", "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t"),
                        "send/recv");
    /* NCCL's reduce is communication, not compute; the reader's cat for a collective whose
     * kernel is named for another (all_to_all as SendRecv) is taken as it is */
    assert_string_equal(cmp_kind_of("kernel", "ncclKernel_Reduce_RING_LL_Sum_float"), "reduce");
    assert_string_equal(cmp_kind_of("reduce", "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t"),
                        "reduce");
    assert_string_equal(cmp_kind_of("kernel", "ampere_sgemm_128x64_tn"), "compute");
    assert_string_equal(cmp_kind_of("gpu_memcpy", "Memcpy HtoD"), "memcpy");
    assert_string_equal(cmp_kind_of("reduce_scatter", "rs0"), "reduce_scatter");
    assert_string_equal(cmp_kind_of("recv", "r"), "recv");
    assert_null(cmp_kind_of("cpu_op", "aten::mm"));
    assert_null(cmp_kind_of("cuda_runtime", "cudaLaunchKernel"));
}

/* A profiler trace of one rank: a GEMM kernel (100 us) and an NCCL all-reduce kernel (300 us) on
 * the GPU (pid 0), CPU operators that do not count; absolute timestamps as Kineto writes them;
 * one ProfilerStep#3 of 5 ms around them (read by src/trace). */
static const char *KINETO =
    "{\"schemaVersion\":1,\"traceEvents\":["
    "{\"ph\":\"X\",\"cat\":\"user_annotation\",\"name\":\"ProfilerStep#3\",\"pid\":77,"
    "\"tid\":77,\"ts\":1694128200000000,\"dur\":5000},"
    "{\"ph\":\"X\",\"cat\":\"cpu_op\",\"name\":\"aten::mm\",\"pid\":77,\"tid\":77,"
    "\"ts\":1694128200000000,\"dur\":5000},"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ampere_sgemm_128x64_tn\",\"pid\":0,\"tid\":7,"
    "\"ts\":1694128200001000,\"dur\":100},"
    "{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"ncclKernel_AllReduce_RING_LL_Sum_float\","
    "\"pid\":0,\"tid\":20,\"ts\":1694128200001200,\"dur\":300}"
    "]}";

static void test_compare_profiler_trace(void **state)
{
    (void)state;
    char *real = write_tmp("fsd-test-kineto.json", KINETO),
         *sim = write_tmp("fsd-test-sim.json", SIM);
    CmpResult r;
    GError *error = NULL;
    if (!cmp_load(real, sim, &r, &error))
        fail_msg("%s", error->message);
    assert_string_equal(r.real_generator, "pytorch-profiler");
    assert_int_equal(r.iterations, 1);
    assert_int_equal(r.median_iter, 0);
    assert_int_equal(r.ranks, 1); /* the CPU process has no compared events */
    /* the step is ProfilerStep#3's span, not the kernels' 500 us */
    assert_near(r.real_median_s, 5e-3, 1e-9);
    const CmpKind *ar = &g_array_index(r.kinds, CmpKind, 0),
                  *mm = &g_array_index(r.kinds, CmpKind, 1);
    assert_string_equal(ar->kind, "allreduce");
    assert_near(ar->real_s, 300e-6, 1e-12);
    assert_string_equal(mm->kind, "compute");
    assert_near(mm->real_s, 100e-6, 1e-12);

    /* the timeline: 2 real rows (GPU streams 7 and 20, from 0) above the 2 simulated rows */
    CmpTimeline tl;
    cmp_timeline(&r, &tl);
    assert_int_equal(tl.rows->len, 4);
    assert_int_equal(tl.n_real_rows, 2);
    assert_string_equal(g_ptr_array_index(tl.rows, 0), "real rank 0: tid 7"); /* process = rank */
    assert_string_equal(g_ptr_array_index(tl.rows, 2), "sim class 0: tid 2");
    assert_string_equal(g_ptr_array_index(tl.rows, 3), "sim class 1: tid 2");
    assert_int_equal(tl.spans->len, 4);
    for (guint i = 0; i < tl.spans->len; i++) {
        const CmpSpan *s = &g_array_index(tl.spans, CmpSpan, i);
        if (s->row == 1) { /* the all-reduce, 200 us after the rank's first kernel */
            assert_string_equal(s->kind, "allreduce");
            assert_near(s->start_s, 200e-6, 1e-9);
            assert_near(s->end_s, 500e-6, 1e-9);
        }
    }
    assert_near(tl.span_s[0], 500e-6, 1e-9);
    assert_near(tl.span_s[1], 1.1, 1e-9);
    cmp_timeline_clear(&tl);

    /* merged: the kernels with their kind as cat, the CPU operator left out */
    char *merged = cmp_merged_trace(&r);
    assert_non_null(strstr(merged, "\"cat\":\"allreduce\""));
    assert_null(strstr(merged, "aten::mm"));
    g_free(merged);
    cmp_clear(&r);
    g_unlink(real), g_unlink(sim);
    g_free(real), g_free(sim);
}

static void test_timeline_of_real_run(void **state)
{
    (void)state;
    char *real = write_tmp("fsd-test-real.json", REAL), *sim = write_tmp("fsd-test-sim.json", SIM);
    CmpResult r;
    GError *error = NULL;
    assert_true(cmp_load(real, sim, &r, &error));
    CmpTimeline tl;
    cmp_timeline(&r, &tl);
    /* ranks 0 and 1, streams 1 and 2 each, then the two classes' stream 2 */
    assert_int_equal(tl.n_real_rows, 4);
    assert_int_equal(tl.rows->len, 6);
    assert_string_equal(g_ptr_array_index(tl.rows, 0), "real rank 0: tid 1");
    assert_string_equal(g_ptr_array_index(tl.rows, 3), "real rank 1: tid 2");
    /* the median iteration (0) only: 4 real spans and 2 simulated */
    assert_int_equal(tl.spans->len, 6);
    /* rank 1's all-reduce started 10 us after its compute: both shifted by the same start */
    for (guint i = 0; i < tl.spans->len; i++) {
        const CmpSpan *s = &g_array_index(tl.spans, CmpSpan, i);
        if (s->row == 3)
            assert_near(s->start_s, 10e-6, 1e-12);
        if (s->row == 2)
            assert_near(s->start_s, 0, 1e-12);
    }
    assert_near(tl.span_s[0], 0.5, 1e-9);
    cmp_timeline_clear(&tl);
    cmp_clear(&r);
    g_unlink(real), g_unlink(sim);
    g_free(real), g_free(sim);
}

static void expect_error(const char *real_text, const char *sim_text, const char *needle)
{
    char *real = write_tmp("fsd-test-real2.json", real_text),
         *sim = write_tmp("fsd-test-sim2.json", sim_text);
    CmpResult r;
    GError *error = NULL;
    assert_false(cmp_load(real, sim, &r, &error));
    assert_non_null(error);
    if (!strstr(error->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", error->message, needle);
    assert_int_equal(error->code, FSD_ERROR_INPUT);
    g_error_free(error);
    cmp_clear(&r);
    g_unlink(real), g_unlink(sim);
    g_free(real), g_free(sim);
}

static void test_compare_errors(void **state)
{
    (void)state;
    /* swapped files */
    expect_error(SIM, REAL, "field 'otherData.generator': expected \"fsdprun\"");
    expect_error(REAL, REAL, "expected \"fsdpsim\"");
    expect_error(REAL, KINETO, "got \"pytorch-profiler\"");
    /* the message lists what a real trace may be */
    expect_error(SIM, SIM, "or a PyTorch profiler trace");
    expect_error(
        "{\"traceEvents\":[],\"otherData\":{\"generator\":\"fsdprun\",\"step_time_s\":[]}}", SIM,
        "field 'otherData.step_time_s': expected a non-empty array");
    expect_error(
        "{\"traceEvents\":[],\"otherData\":{\"generator\":\"fsdprun\",\"step_time_s\":[1]}}", SIM,
        "expected complete (\"X\") events");
    expect_error("{\"otherData\":{}}", SIM, "field 'traceEvents'");
    expect_error("not json", SIM, "fsd-test-real2.json");
    /* compared events without what the comparison reads: a missing tid became the row
     * "tid -2147483648", a negative dur and an inf (1e999) ts were summed as they were */
    const char *head = "{\"otherData\":{\"generator\":\"fsdprun\",\"step_time_s\":[1]},"
                       "\"traceEvents\":[{\"name\":\"mm\",\"cat\":\"compute\",\"ph\":\"X\",";
    const struct {
        const char *event, *needle;
    } bad[] = {
        {"\"pid\":1,\"ts\":0,\"dur\":5}]}", "field 'traceEvents[0].tid': expected an integer"},
        {"\"pid\":1.5,\"tid\":1,\"ts\":0,\"dur\":5}]}", "field 'traceEvents[0].pid'"},
        {"\"pid\":1,\"tid\":1,\"ts\":0,\"dur\":-5}]}", "field 'traceEvents[0].dur': expected a duration"},
        {"\"pid\":1,\"tid\":1,\"ts\":1e999,\"dur\":5}]}", "field 'traceEvents[0].ts': expected a finite"},
        {"\"pid\":1,\"tid\":1,\"ts\":0}]}", "got none"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *text = g_strconcat(head, bad[i].event, NULL);
        expect_error(text, SIM, bad[i].needle);
        g_free(text);
    }
    expect_error("{\"traceEvents\":[],\"otherData\":{\"generator\":\"fsdprun\",\"step_time_s\":[1e999]}}",
                 SIM, "expected positive numbers");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_numbers),
        cmocka_unit_test(test_compare_errors),
        cmocka_unit_test(test_kind_of),
        cmocka_unit_test(test_compare_profiler_trace),
        cmocka_unit_test(test_timeline_of_real_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
