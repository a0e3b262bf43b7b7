/* cfg: sizes with suffixes, and errors that name the file, the field and the expectation. */
#include "testutil.h"

static void test_sizes(void **state)
{
    uint64_t v;
    assert_true(cfg_parse_size("8", &v));
    assert_int_equal(v, 8);
    assert_true(cfg_parse_size("64K", &v));
    assert_int_equal(v, 65536);
    assert_true(cfg_parse_size("1M", &v));
    assert_int_equal(v, 1048576);
    assert_true(cfg_parse_size("8G", &v));
    assert_int_equal(v, 8ULL << 30);
    assert_true(cfg_parse_size("2GB", &v));
    assert_int_equal(v, 2ULL << 30);
    assert_false(cfg_parse_size("-1", &v));
    assert_false(cfg_parse_size("1X", &v));
    assert_false(cfg_parse_size("", &v));
    assert_false(cfg_parse_size("1e30", &v));
}

static void test_messages(void **state)
{
    GError *error = NULL;
    cJSON *j = cfg_parse_text("t.json", "{\"a\": {\"b\": -3, \"src\": {\"value\": 1, \"source\": \"\"}, \"zz\": 1}}", &error);
    assert_non_null(j);
    CfgObj root, a;
    assert_true(cfg_obj_open(&root, "t.json", "", j, &error));
    assert_true(cfg_obj_child(&root, "a", false, &a, &error));
    int64_t v = 0;
    assert_false(cfg_get_int(&a, "b", true, 1, 10, &v, &error));
    assert_string_equal(error->message, "t.json: field 'a.b': expected an integer in [1, 10], got -3");
    g_clear_error(&error);
    double d = 0;
    assert_false(cfg_get_sourced(&a, "src", true, 0, 10, &d, NULL, &error));
    assert_non_null(strstr(error->message, "source"));
    g_clear_error(&error);
    assert_false(cfg_get_int(&a, "missing", true, 1, 10, &v, &error));
    assert_non_null(strstr(error->message, "'a.missing': missing"));
    g_clear_error(&error);
    assert_false(cfg_obj_check_unknown(&a, NULL, &error));
    assert_non_null(strstr(error->message, "'a.zz': unknown key"));
    g_clear_error(&error);
    cfg_obj_close(&a);
    cfg_obj_close(&root);
    cJSON_Delete(j);
    assert_null(cfg_parse_text("t.json", "{\n  \"a\": 1,\n  \"b\" 2\n}", &error));
    assert_non_null(strstr(error->message, "t.json:3:"));
    g_clear_error(&error);
    assert_null(cfg_parse_file("/nonexistent/x.json", &error));
    assert_non_null(strstr(error->message, "/nonexistent/x.json"));
    g_clear_error(&error);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
