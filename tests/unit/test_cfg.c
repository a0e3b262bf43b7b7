/* cfg: sizes with suffixes, and errors that name the file, the field and the expectation. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include <glib/gstdio.h>

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

static void expect_parse_error(const char *text, const char *needle)
{
    GError *error = NULL;
    assert_null(cfg_parse_text("t.json", text, &error));
    assert_non_null(error);
    assert_int_equal(error->code, FSD_ERROR_INPUT);
    if (!strstr(error->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", error->message, needle);
    g_error_free(error);
}

/* JSON as strict as the format: a key twice in one object (cJSON took the first, Python's json
 * the last) and bytes that are not UTF-8 (they made --json output invalid) are refused. */
static void test_strict_json(void **state)
{
    (void)state;
    expect_parse_error("{\"a\": 1,\n \"b\": 2,\n \"a\": 3}",
                       "t.json:3: duplicate key \"a\" (first at line 1)");
    expect_parse_error("{\"x\": [{\"k\": 1}, {\"k\": 2, \"k\": 3}]}", "duplicate key \"k\"");
    expect_parse_error("{\"a\": 1, \"\\u0061\": 2}", "duplicate key \"a\"");
    expect_parse_error("{\"name\": \"ab\xff\"}", "t.json:1:13: invalid UTF-8 (byte 0xff)");
    expect_parse_error("{\"name\": \"\xc3\"}", "invalid UTF-8");
    /* the same key in different objects, a key-like string value, escapes inside strings */
    GError *error = NULL;
    cJSON *j = cfg_parse_text("t.json",
                              "{\"a\": {\"a\": 1}, \"b\": [\"a\", \"a\"], \"c\": \"q\\\"a\\\": \", "
                              "\"d\": {\"x\": 1, \"y\": {\"x\": 2}}, \"caf\xc3\xa9\": 1}",
                              &error);
    assert_null(error);
    assert_non_null(j);
    cJSON_Delete(j);
    /* objects of more than 16 keys are checked through a table (cfg.c DUP_PAIRWISE): a repeat
     * there, before and after the switch, with its lines; a parent's keys stay apart from a
     * nested object's, before and after it */
    GString *big = g_string_new("{\n");
    for (int k = 0; k < 40; k++)
        g_string_append_printf(big, "\"k%d\": {\"k%d\": 1},\n", k, k + 1);
    g_string_append(big, "\"k39\": 0}");
    expect_parse_error(big->str, "t.json:42: duplicate key \"k39\" (first at line 41)");
    g_string_truncate(big, big->len - strlen("\"k39\": 0}"));
    g_string_append(big, "\"k2\": 0}");
    expect_parse_error(big->str, "t.json:42: duplicate key \"k2\" (first at line 4)");
    g_string_truncate(big, big->len - strlen("\"k2\": 0}"));
    g_string_append(big, "\"k40\": 0}"); /* only in a nested object */
    j = cfg_parse_text("t.json", big->str, &error);
    assert_null(error);
    assert_int_equal(cJSON_GetArraySize(j), 41);
    cJSON_Delete(j);
    g_string_free(big, TRUE);
    expect_parse_error("{\"a\": {\"b\": 1}, \"c\": 2, \"a\": 3}", "duplicate key \"a\"");
}

/* The messages of a new user's first mistakes: a misspelt required key named where it is
 * reported missing, an empty file called empty, a file given with the wrong option, and a typo
 * of a short word ("ful") corrected. */
static void test_first_mistakes(void **state)
{
    (void)state;
    GError *error = NULL;
    cJSON *j = cfg_parse_text(
        "t.json", "{\"num_hiden_layers\": 2, \"hidden_size\": 8, \"trainig\": {}}", &error);
    assert_non_null(j);
    CfgObj root, child;
    assert_true(cfg_obj_open(&root, "t.json", "", j, &error));
    int64_t v = 0;
    assert_false(cfg_get_int(&root, "num_hidden_layers", true, 1, 10, &v, &error));
    assert_string_equal(error->message,
                        "t.json: field 'num_hidden_layers': missing (the file has "
                        "'num_hiden_layers': a misspelling?); expected an integer in [1, 10]");
    g_clear_error(&error);
    /* a key already read is no typo of another; nothing close: no hint */
    assert_true(cfg_get_int(&root, "hidden_size", true, 1, 10, &v, &error));
    assert_false(cfg_get_int(&root, "hidden_sizes", true, 1, 10, &v, &error));
    assert_string_equal(error->message,
                        "t.json: field 'hidden_sizes': missing; expected an integer in [1, 10]");
    g_clear_error(&error);
    assert_false(cfg_obj_child(&root, "training", false, &child, &error));
    assert_string_equal(error->message, "t.json: field 'training': missing (the file has "
                                        "'trainig': a misspelling?); expected a JSON object");
    g_clear_error(&error);
    cfg_obj_close(&root);
    cJSON_Delete(j);

    expect_parse_error("", "t.json: empty file; expected a JSON object");
    expect_parse_error(" \n\t", "t.json: empty file (only white space); expected a JSON object");

    j = cJSON_Parse("{\"format\": \"fsdpsim-topology\"}");
    assert_false(cfg_check_kind(j, "t.json", "--model", &error));
    assert_string_equal(error->message, "t.json: this is a topology file (format "
                                        "fsdpsim-topology): give it with --topology, not --model");
    g_clear_error(&error);
    assert_true(cfg_check_kind(j, "t.json", "--topology", &error));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"model_type\": \"llama\"}");
    assert_false(cfg_check_kind(j, "t.json", "--topology", &error));
    assert_non_null(strstr(error->message, "this looks like a model (a Hugging Face config.json: "
                                           "model_type \"llama\", no format): give it with "
                                           "--model, not --topology"));
    g_clear_error(&error);
    assert_true(cfg_check_kind(j, "t.json", "--model", &error));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"format\": \"something-else\"}"); /* the reader's own message */
    assert_true(cfg_check_kind(j, "t.json", "--model", &error));
    cJSON_Delete(j);

    const char *const strategies[] = {"ddp", "zero1", "fsdp", "full", "grad_op", "no_shard", NULL};
    assert_string_equal(cfg_closest("ful", strategies), "full");
    assert_string_equal(cfg_closest("dp", strategies), "ddp");
    assert_string_equal(cfg_closest("fsd", strategies), "fsdp");
    assert_null(cfg_closest("f", (const char *const[]){"fp", NULL})); /* one letter: no word */
    assert_null(cfg_closest("abc", strategies));
    assert_null(cfg_closest("tp", (const char *const[]){"ddp", "fsdp", NULL}));
}

/* The one median of src/trace and src/compare: the middle value, or the mean of the two
 * middle ones, of values in any order, which it leaves sorted. */
static void test_median(void **state)
{
    (void)state;
    double odd[] = {5, 1, 3}, even[] = {4, 1, 3, 10}, one[] = {7};
    assert_true(isnan(cfg_median(NULL, 0)));
    assert_true(cfg_median(one, 1) == 7);
    assert_true(cfg_median(odd, 3) == 3);
    assert_true(odd[0] == 1 && odd[2] == 5);
    assert_true(cfg_median(even, 4) == 3.5);
    assert_true(even[0] == 1 && even[3] == 10);
}

static void *no_memory(size_t size)
{
    (void)size;
    return NULL;
}

/* cJSON_Print returns NULL when it runs out of memory, and --trace wrote through it (SIGSEGV):
 * cfg_json_print ends with a message and exit status 2 instead. In a child process, with an
 * allocator that always fails. */
static void test_json_print_out_of_memory(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "x", 1);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cJSON_Hooks hooks = {no_memory, free};
        cJSON_InitHooks(&hooks);
        char *text = cfg_json_print(o, false);
        _exit(text ? 0 : 3); /* not reached: cfg_json_print exits with status 2 */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    char *text = cfg_json_print(o, false);
    assert_string_equal(text, "{\"x\":1}");
    cJSON_free(text);
    cJSON_Delete(o);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TEST_ASAN)
#define TEST_ASAN 1
#endif

/* In a child: its address space limited to what it uses plus 32 MiB (as ulimit -v does), for
 * malloc to fill; exits 5 or 6 where /proc or setrlimit cannot say or do it. */
static void limit_address_space(void)
{
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (!statm || fscanf(statm, "%ld", &pages) != 1)
        _exit(5);
    fclose(statm);
    rlim_t limit = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (32u << 20);
    struct rlimit as = {limit, limit};
    if (setrlimit(RLIMIT_AS, &as) != 0)
        _exit(6);
}

/* In a child that is to crash: quiet, no core file, SIGSEGV's default (not cmocka's, which
 * would carry on with the tests there) under cfg_oom_install's handler. */
static void crashing_child(void)
{
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDERR_FILENO);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGSEGV, SIG_DFL);
    cfg_oom_install("t");
}

/* Out of memory to the last page, as under ulimit -v: a small g_malloc fails, GLib's g_error
 * cannot format its message either and recursed until the stack overflowed (SIGSEGV, glib 2.74),
 * never reaching cfg_oom_install's log handler. It is the message and exit status 2. In a child
 * whose address space is limited to what it uses plus 32 MiB, filled by malloc. Not under
 * AddressSanitizer, which reserves terabytes of address space (cfg_oom_install leaves it alone). */
static void test_out_of_memory_to_the_last_page(void **state)
{
    (void)state;
#ifdef TEST_ASAN
    skip();
#endif
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        cfg_oom_install("t");
        limit_address_space();
        /* every size class down to 8 bytes, so that no freed block of any size (glibc's
         * tcache keeps them by exact size) is left for GLib's message */
        for (size_t size = 1 << 20; size >= 8; size = size > 2048 ? size / 2 : size - 8)
            while (malloc(size)) /* leaked on purpose: the child only fills its memory */
                ;
        void *p = g_malloc(64);
        _exit(p ? 3 : 4); /* not reached: g_malloc does not return NULL, nor here at all */
    }
    close(fds[1]);
    char text[512] = "";
    size_t got = 0;
    ssize_t n;
    while (got + 1 < sizeof text && (n = read(fds[0], text + got, sizeof text - 1 - got)) > 0)
        got += (size_t)n;
    text[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("child killed by signal %d; stderr: %s", WTERMSIG(status), text);
    assert_int_equal(WEXITSTATUS(status), 2);
    assert_non_null(strstr(text, "t: out of memory; expected a smaller run"));
    /* any other crash stays one: SIGSEGV, with memory to spare, as without the handler */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crashing_child();
        volatile int *volatile nowhere = NULL;
        *nowhere = 1;
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
        fail_msg("a crash with memory to spare: status 0x%x, expected SIGSEGV", status);
    /* and with memory full: a NULL dereference (an unchecked allocation, a bug) is not the
     * stack's failed growth, so it stays a crash, not "out of memory" and the bad-input status */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crashing_child();
        limit_address_space();
        while (malloc(1 << 20)) /* the large blocks: the probe's 1 MiB is refused too */
            ;
        volatile char *volatile unchecked = malloc(1 << 20);
        unchecked[8] = 1;
        _exit(3);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSEGV)
        fail_msg("a NULL dereference with memory full: status 0x%x, expected SIGSEGV", status);
}

static bool write_hello(FILE *f, void *ctx)
{
    fputs("hello, ", f);
    return fputs((const char *)ctx, f) >= 0;
}

static bool write_half_then_fail(FILE *f, void *ctx)
{
    (void)ctx;
    fputs("half", f);
    return false;
}

/* The file appears whole or not at all: written beside it, renamed; a failed writer leaves the
 * old file as it was and no temporary file behind. */
static void test_write_streamed(void **state)
{
    char *dir = g_dir_make_tmp("fsdpsim-cfg-XXXXXX", NULL);
    assert_non_null(dir);
    char *path = g_build_filename(dir, "out.json", NULL);
    GError *error = NULL;
    assert_true(cfg_write_streamed(path, write_hello, (void *)"world", &error));
    char *text = NULL;
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    assert_string_equal(text, "hello, world");
    g_free(text);
    assert_false(cfg_write_streamed(path, write_half_then_fail, NULL, &error));
    assert_non_null(strstr(error->message, "cannot write "));
    assert_non_null(strstr(error->message, path));
    g_clear_error(&error);
    assert_true(g_file_get_contents(path, &text, NULL, NULL));
    assert_string_equal(text, "hello, world"); /* untouched */
    g_free(text);
    GDir *d = g_dir_open(dir, 0, NULL);
    int n = 0;
    while (g_dir_read_name(d))
        n++;
    g_dir_close(d);
    assert_int_equal(n, 1); /* no out.json.XXXXXX left */
    /* a FIFO (as /dev/stdout may be) is written in place, not replaced by a file; a reader
     * holds it open so that opening it to write does not block */
    char *fifo = g_build_filename(dir, "fifo", NULL);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int reader = open(fifo, O_RDWR | O_NONBLOCK);
    assert_true(reader >= 0);
    assert_true(cfg_write_streamed(fifo, write_hello, (void *)"pipe", &error));
    GStatBuf st;
    assert_int_equal(g_stat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    char got[32] = {0};
    assert_int_equal(read(reader, got, sizeof got - 1), 11);
    assert_string_equal(got, "hello, pipe");
    close(reader);
    g_unlink(fifo);
    g_free(fifo);
    char *missing = g_build_filename(dir, "no", "such", "out.json", NULL);
    assert_false(cfg_write_streamed(missing, write_hello, (void *)"x", &error));
    assert_non_null(strstr(error->message, "No such file or directory"));
    g_clear_error(&error);
    g_free(missing);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
}

/* cfg_strdup_printf's own formatting (%d, %s, %%) gives g_strdup_printf's bytes, and anything
 * else goes to it */
static void test_strdup_printf(void **state)
{
    const int ints[] = {0, 7, -7, 10, 99, -100, 123456789, G_MAXINT, G_MININT};
    for (size_t i = 0; i < G_N_ELEMENTS(ints); i++) {
        char *a = cfg_strdup_printf("unsharded:%d.%d", ints[i], -ints[i] / 3);
        char *b = g_strdup_printf("unsharded:%d.%d", ints[i], -ints[i] / 3);
        assert_string_equal(a, b);
        g_free(a), g_free(b);
    }
    char *a = cfg_strdup_printf("%s %s (%s) 100%% %d%%", "allgather", "", "why", 5);
    assert_string_equal(a, "allgather  (why) 100% 5%");
    g_free(a);
    a = cfg_strdup_printf("%d", 42);
    assert_string_equal(a, "42");
    g_free(a);
    a = cfg_strdup_printf("no conversion");
    assert_string_equal(a, "no conversion");
    g_free(a);
    char *b = g_strdup_printf("%.3f and %5d, %s", 1.0 / 3, 42, "x"); /* falls back */
    a = cfg_strdup_printf("%.3f and %5d, %s", 1.0 / 3, 42, "x");
    assert_string_equal(a, b);
    g_free(a), g_free(b);
    /* past the stack buffer: grown on the heap */
    char *long_text = g_strnfill(1000, 'x');
    a = cfg_strdup_printf("%s:%d:%s", long_text, -1, long_text);
    b = g_strdup_printf("%s:%d:%s", long_text, -1, long_text);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 2004);
    g_free(a), g_free(b), g_free(long_text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_strict_json),
        cmocka_unit_test(test_first_mistakes),
        cmocka_unit_test(test_median),
        cmocka_unit_test(test_write_streamed),
        cmocka_unit_test(test_strdup_printf),
        cmocka_unit_test(test_json_print_out_of_memory),
        cmocka_unit_test(test_out_of_memory_to_the_last_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
