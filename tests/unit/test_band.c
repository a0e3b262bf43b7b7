/* The error band (src/report/band.c): the most specific group that matches the run's family and
 * GPU, and bad files refused. */
#include "testutil.h"

#include <unistd.h>

static char *write_band(const char *text)
{
    char *path = NULL;
    int fd = g_file_open_tmp("band-XXXXXX.json", &path, NULL);
    assert_true(fd >= 0);
    close(fd);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    return path;
}

static const char *band_text =
    "{\"format\": \"fsdpsim-error-band\", \"version\": 1, \"groups\": ["
    "{\"family\": \"fsdp\", \"gpu_match\": [\"H100\"], \"rows\": 9, \"mae\": 0.3,"
    " \"step_time_factor_low\": 1.2, \"step_time_factor_high\": 1.8},"
    "{\"family\": \"fsdp\", \"gpu_match\": [], \"rows\": 20, \"sources\": 3, \"mae\": 0.2,"
    " \"step_time_factor_low\": 1.1, \"step_time_factor_high\": 1.4},"
    "{\"family\": \"*\", \"gpu_match\": [], \"rows\": 30, \"mae\": 0.25,"
    " \"step_time_factor_low\": 0.9, \"step_time_factor_high\": 1.5}]}";

static void test_band_match(void **state)
{
    (void)state;
    char *path = write_band(band_text);
    ReportBand b;
    GError *error = NULL;
    assert_true(report_band_load(path, "fsdp", "NVIDIA H100 80GB HBM3", &b, &error));
    assert_true(b.present);
    assert_float_equal(b.factor_low, 1.2, 1e-12);
    assert_int_equal(b.rows, 9);
    assert_int_equal(b.sources, 0); /* not stated in the H100 group */
    assert_true(report_band_load(path, "fsdp", "NVIDIA A100-SXM4-40GB", &b, &error));
    assert_float_equal(b.factor_high, 1.4, 1e-12);
    assert_int_equal(b.sources, 3);
    assert_true(report_band_load(path, "3d", "NVIDIA A100-SXM4-40GB", &b, &error));
    assert_float_equal(b.factor_low, 0.9, 1e-12);
    assert_string_equal(b.family, "*");
    g_unlink(path);
    g_free(path);
    /* a group with low above high is refused, naming the file */
    path = write_band("{\"format\": \"fsdpsim-error-band\", \"groups\": [{\"family\": \"*\", "
                      "\"rows\": 3, \"step_time_factor_low\": 2, \"step_time_factor_high\": 1}]}");
    assert_false(report_band_load(path, "fsdp", "x", &b, &error));
    assert_non_null(strstr(error->message, path));
    g_clear_error(&error);
    g_unlink(path);
    g_free(path);
}

/* The band shipped in reports/ parses and has a catch-all group, so every run gets a band. */
static void test_band_shipped(void **state)
{
    (void)state;
    char *path = src_path("reports/error-band.json");
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_free(path);
        skip();
    }
    ReportBand b;
    GError *error = NULL;
    assert_true(report_band_load(path, "3d", "some GPU", &b, &error));
    assert_true(b.present && b.rows > 0 && b.factor_low <= b.factor_high);
    g_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_band_match),
                                       cmocka_unit_test(test_band_shipped)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
