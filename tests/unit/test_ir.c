/* ir: groups, and the JSON form reads back to the same schedule. */
#include "testutil.h"

static void test_group_members_and_shape(void **state)
{
    IrSchedule *s = ir_schedule_new(4, 4); /* 16 ranks */
    int shard = ir_group_add(s, "shard", 4, 1), rep = ir_group_add(s, "replicate", 4, 4);
    int members[4];
    ir_group_members(s, &s->groups[shard], 6, members);
    assert_int_equal(members[0], 4);
    assert_int_equal(members[3], 7);
    ir_group_members(s, &s->groups[rep], 6, members);
    assert_int_equal(members[0], 2);
    assert_int_equal(members[1], 6);
    assert_int_equal(members[3], 14);
    int nodes, per_node;
    ir_group_shape(s, &s->groups[shard], &nodes, &per_node);
    assert_int_equal(nodes, 1);
    assert_int_equal(per_node, 4);
    ir_group_shape(s, &s->groups[rep], &nodes, &per_node);
    assert_int_equal(nodes, 4);
    assert_int_equal(per_node, 1);
    int all = ir_group_add(s, "all", 16, 1);
    ir_group_shape(s, &s->groups[all], &nodes, &per_node);
    assert_int_equal(nodes, 4);
    assert_int_equal(per_node, 4);
    ir_schedule_free(s);
}

static void round_trip(const char *strategy, bool offload)
{
    Run r;
    run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 2, 4);
    if (strcmp(strategy, "ddp") == 0)
        r.opt.kind = STRAT_DDP;
    else
        assert_true(strat_sharding_parse(strategy, &r.opt.sharding));
    r.opt.cpu_offload = offload;
    run_sim(&r);
    char *json = ir_schedule_to_json(r.sched);
    GError *error = NULL;
    IrSchedule *back = ir_schedule_from_text("round-trip.json", json, &error);
    if (!back)
        fail_msg("%s", error->message);
    assert_true(ir_schedule_equal(r.sched, back));
    char *again = ir_schedule_to_json(back);
    assert_string_equal(json, again);
    /* and the same simulation */
    NetTopo *net = net_topo_new(r.topo, r.layout.nodes, r.layout.gpus_per_node);
    SimConfig cfg = {r.topo, &r.coll, net};
    SimResult *sim = sim_run(back, &cfg, &error);
    net_topo_free(net);
    assert_non_null(sim);
    assert_int_equal(sim->makespan_ns, r.sim->makespan_ns);
    assert_int_equal(sim->classes[0].mem.peak, r.sim->classes[0].mem.peak);
    sim_result_free(sim);
    g_free(json);
    g_free(again);
    ir_schedule_free(back);
    run_end(&r);
}

static void test_round_trip(void **state)
{
    round_trip("ddp", false);
    round_trip("full_shard", false);
    round_trip("hybrid_shard", false);
    round_trip("full_shard", true);
}

static void expect_bad(const char *text, const char *needle)
{
    GError *error = NULL;
    IrSchedule *s = ir_schedule_from_text("bad.json", text, &error);
    assert_null(s);
    assert_non_null(error);
    if (!strstr(error->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", error->message, needle);
    g_error_free(error);
}

static void test_bad_schedules(void **state)
{
    expect_bad("{\"format\": \"fsdpsim-schedule\", \"version\": 7}", "version");
    expect_bad("{\"format\": \"other\"}", "format");
    expect_bad("{\"format\": \"fsdpsim-schedule\", \"version\": 1, \"world\": 3, \"nodes\": 2, "
               "\"gpus_per_node\": 2}", "world");
    const char *head = "{\"format\": \"fsdpsim-schedule\", \"version\": 1, \"world\": 2, \"nodes\": 1, "
                       "\"gpus_per_node\": 2, \"meta\": {}, \"groups\": [], \"classes\": [{\"first_rank\": 0, "
                       "\"n_ranks\": 2, \"rank_stride\": 1, \"streams\": [{\"name\": \"host\", \"host\": true}], "
                       "\"ops\": [";
    char *forward = g_strconcat(head, "{\"kind\": \"host\", \"stream\": \"host\", \"name\": \"a\", "
                                      "\"phase\": \"other\", \"deps\": [1], \"seconds\": 0}]}]}", NULL);
    expect_bad(forward, "deps");
    /* an index far past int's range (the fuzzer's 6.7e87: casting it was undefined) */
    char *huge = g_strconcat(head, "{\"kind\": \"host\", \"stream\": \"host\", \"name\": \"a\", "
                                   "\"phase\": \"other\", \"deps\": [6.7e87], \"seconds\": 0}]}]}", NULL);
    expect_bad(huge, "deps");
    g_free(huge);
    char *stream = g_strconcat(head, "{\"kind\": \"host\", \"stream\": \"gpu\", \"name\": \"a\", "
                                     "\"phase\": \"other\", \"deps\": [], \"seconds\": 0}]}]}", NULL);
    expect_bad(stream, "stream");
    char *extra = g_strconcat(head, "{\"kind\": \"host\", \"stream\": \"host\", \"name\": \"a\", "
                                    "\"phase\": \"other\", \"deps\": [], \"seconds\": 0, \"x\": 1}]}]}", NULL);
    expect_bad(extra, "x");
    g_free(forward);
    g_free(stream);
    g_free(extra);
}

/* The class of a rank, from the index ir_class_add keeps: strided classes interleaved (a
 * pipeline's stages), a rank two classes claim (the first holds it, as a scan in class order
 * found), ranks no class holds, and ranks outside the world (a class past it, which ir_check
 * rejects, still answers by scanning). Each rank's answer is compared with ir_class_has_rank
 * over the classes in order. */
static void test_class_of_rank(void **state)
{
    (void)state;
    IrSchedule *s = ir_schedule_new(4, 4); /* 16 ranks */
    assert_int_equal(ir_class_of_rank(s, 3), -1); /* no class yet */
    ir_class_add(s, 0, 4, 4);  /* 0 4 8 12 */
    ir_class_add(s, 1, 4, 4);  /* 1 5 9 13 */
    ir_class_add(s, 9, 3, 1);  /* 9 10 11: 9 is class 1's */
    ir_class_add(s, 14, 4, 1); /* 14 15, and 16 17 past the world */
    int expect[18] = {0, 1, -1, -1, 0, 1, -1, -1, 0, 1, 2, 2, 0, 1, 3, 3, 3, 3};
    for (int r = 0; r < 18; r++) {
        assert_int_equal(ir_class_of_rank(s, r), expect[r]);
        int scan = -1;
        for (int c = s->n_classes - 1; c >= 0; c--)
            if (ir_class_has_rank(s->classes[c], r))
                scan = c;
        assert_int_equal(ir_class_of_rank(s, r), scan);
    }
    assert_int_equal(ir_class_of_rank(s, -1), -1);
    ir_schedule_free(s);
}

/* Interning: one index per distinct string, in first-use order, the same text back; through
 * several growths of the index, with the empty string, prefixes of one another, and strings
 * looked up again long after they were added. */
static void test_strings_interned(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    enum { N = 5000 };
    char text[32];
    assert_int_equal(ir_string(c, ""), 0);
    for (int i = 0; i < N; i++) {
        g_snprintf(text, sizeof text, "F%d.0 steady", i);
        assert_int_equal(ir_string(c, text), 2 * (uint32_t)i + 1);
        g_snprintf(text, sizeof text, "F%d.0 steady layer", i); /* the other as a prefix */
        assert_int_equal(ir_string(c, text), 2 * (uint32_t)i + 2);
    }
    for (int i = N - 1; i >= 0; i--) {
        g_snprintf(text, sizeof text, "F%d.0 steady", i);
        assert_int_equal(ir_string(c, text), 2 * (uint32_t)i + 1);
        assert_string_equal(ir_class_string(c, 2 * (uint32_t)i + 1), text);
    }
    assert_int_equal(ir_string(c, ""), 0);
    assert_string_equal(ir_class_string(c, 0), "");
    assert_int_equal(c->strings->len, 2 * N + 1);
    ir_schedule_free(s);
}

/* Compaction keeps the schedule op for op and its strings at their indices; interning after it
 * (the index rebuilt) finds the old strings and appends new ones. */
static void test_compact(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    ir_stream_add(c, "host", true);
    enum { N = 3000 };
    char text[32];
    for (int i = 0; i < N; i++) {
        IrOp op = {.kind = IR_OP_HOST};
        op.u.host.seconds = i * 1e-6;
        int dep = i - 1;
        g_snprintf(text, sizeof text, "op %d", i);
        assert_int_equal(ir_op_add(c, &op, text, &dep, 1), i);
    }
    char *before = ir_schedule_to_json(s);
    ir_schedule_compact(s);
    char *after = ir_schedule_to_json(s);
    assert_string_equal(before, after);
    assert_int_equal(ir_class_n_ops(c), N);
    assert_true(c->string_index != NULL);
    for (int i = N - 1; i >= 0; i -= 7) {
        g_snprintf(text, sizeof text, "op %d", i);
        assert_int_equal(ir_string(c, text), (uint32_t)i);
    }
    assert_int_equal(ir_string(c, "new"), N);
    assert_string_equal(ir_class_string(c, N), "new");
    assert_int_equal(ir_string(c, "op 0"), 0);
    g_free(before);
    g_free(after);
    ir_schedule_free(s);
}

/* Joined strings: the text of their parts, nested; one index per pair (the same pair, the same
 * index; a plain string of equal text keeps its own); an op named by one writes its text to the
 * schedule, which reads back equal; joining goes on after compaction. */
static void test_strings_joined(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    ir_stream_add(c, "host", true);
    uint32_t label = ir_string(c, "F3.0 steady"), layer = ir_string(c, " layer 5");
    uint32_t tp = ir_string(c, "tp allreduce ");
    uint32_t name = ir_string_join(c, label, layer);
    assert_true(name & IR_STRING_JOINED);
    assert_int_equal(ir_string_join(c, label, layer), name);
    uint32_t outer = ir_string_join(c, tp, name);
    assert_int_not_equal(outer, name);
    assert_string_equal(ir_class_string(c, outer), "tp allreduce F3.0 steady layer 5");
    assert_string_equal(ir_class_string(c, name), "F3.0 steady layer 5");
    assert_int_not_equal(ir_string(c, "F3.0 steady layer 5"), name);
    IrOp op = {.kind = IR_OP_HOST};
    assert_int_equal(ir_op_add_named(c, &op, outer, NULL, 0), 0);
    assert_int_equal(ir_op_add(c, &op, "F3.0 steady layer 5", NULL, 0), 1);
    ir_schedule_compact(s);
    uint32_t again = ir_string_join(c, label, ir_string(c, " layer 6"));
    assert_string_equal(ir_class_string(c, again), "F3.0 steady layer 6");
    assert_int_equal(ir_string_join(c, tp, name), outer);
    char *json = ir_schedule_to_json(s);
    assert_non_null(strstr(json, "tp allreduce F3.0 steady layer 5"));
    GError *error = NULL;
    IrSchedule *back = ir_schedule_from_text("joined.json", json, &error);
    assert_non_null(back);
    assert_true(ir_schedule_equal(s, back));
    ir_schedule_free(back);
    g_free(json);
    ir_schedule_free(s);
}

/* One op per line, but not inside a name: names holding "},{", escaped quotes and backslashes
 * (a model's or a user's) read back equal; only the ops' own "},{" get a newline. */
static void test_json_lines_not_in_strings(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    ir_stream_add(c, "host", true);
    const char *names[] = {"a},{b", "\\\"},{\"", "x\\", "},{", "plain"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        IrOp op = {.kind = IR_OP_HOST};
        assert_int_equal(ir_op_add(c, &op, names[i], NULL, 0), (int)i);
    }
    char *json = ir_schedule_to_json(s);
    int lines = 0;
    for (const char *p = json; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, (int)G_N_ELEMENTS(names)); /* 4 between the ops, 1 at the end */
    GError *error = NULL;
    IrSchedule *back = ir_schedule_from_text("names.json", json, &error);
    if (!back)
        fail_msg("%s", error->message);
    assert_true(ir_schedule_equal(s, back));
    ir_schedule_free(back);
    g_free(json);
    ir_schedule_free(s);
}

/* Compute payloads: one record per distinct payload (bytes compared), ids in first-use order,
 * found again after compaction drops the index; ir_op_push fills an op in place. */
static void test_compute_payloads(void **state)
{
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    ir_stream_add(c, "compute", false);
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        IrCompute p = {.flops = i, .seconds = 1e-3 * i, .kernels = 2};
        assert_int_equal(ir_compute_add(c, &p), (uint32_t)i);
    }
    ir_schedule_compact(s);
    IrCompute p = {.flops = 7, .seconds = 7e-3, .kernels = 2};
    assert_int_equal(ir_compute_add(c, &p), 7);
    p.kern_first = 1; /* any field tells payloads apart */
    assert_int_equal(ir_compute_add(c, &p), N);
    int deps[3] = {-1, -1, -1}, i;
    IrOp *op = ir_op_push(c, IR_OP_COMPUTE, 0, ir_string(c, "layer"), deps, 3, &i);
    op->phase = IR_PHASE_BACKWARD;
    op->u.compute.payload = 7;
    for (int k = 0; k < 5000; k++) /* copies of an op of the class, through the array's growth */
        assert_int_equal(ir_op_add(c, ir_op(c, k), k ? "copy" : "layer again", &i, 1), k + 1);
    const IrOp *a = ir_op(c, 0), *b = ir_op(c, 1);
    assert_int_equal(a->n_deps, 0);
    assert_null(ir_op_deps(c, a)); /* not &NULL[0] of a class without deps (UBSan) */
    assert_int_equal(b->n_deps, 1);
    assert_int_equal(ir_op_deps(c, b)[0], 0);
    assert_int_equal(b->phase, IR_PHASE_BACKWARD);
    assert_true(ir_op_compute(c, b)->flops == 7 && ir_op_compute(c, b)->kernels == 2);
    assert_string_equal(ir_class_string(c, b->name), "layer again");
    ir_schedule_free(s);
}

/* The packed op: 32 bytes (a pipeline keeps one per op of every stage), and its 24-bit n_deps
 * holds more than 16 bits' worth (an op waiting for 70,000 others). */
static void test_op_packed(void **state)
{
    assert_true(sizeof(IrOp) <= 32);
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    ir_stream_add(c, "host", true);
    ir_stream_add(c, "compute", false);
    enum { N = 70000 };
    int *deps = g_new(int, N);
    IrOp op = {.kind = IR_OP_HOST};
    for (int i = 0; i < N; i++)
        deps[i] = ir_op_add(c, &op, "x", NULL, 0);
    IrOp last = {.kind = IR_OP_COLL, .stream = 1, .phase = IR_PHASE_BACKWARD, .dtype = 2};
    last.u.coll.bytes = 1234;
    int i = ir_op_add(c, &last, "wait all", deps, N);
    const IrOp *o = ir_op(c, i);
    assert_int_equal(o->n_deps, N);
    assert_int_equal(o->kind, IR_OP_COLL);
    assert_int_equal(o->stream, 1);
    assert_int_equal(o->phase, IR_PHASE_BACKWARD);
    assert_int_equal(o->dtype, 2);
    assert_int_equal(o->u.coll.bytes, 1234);
    assert_int_equal(ir_op_deps(c, o)[N - 1], N - 1);
    g_free(deps);
    ir_schedule_free(s);
}

/* The checks that need the whole file (ir_check.c): the classes partition the ranks, names are
 * unique, peers are inside the world. Each used to be accepted, and some crashed later. */
#define HOST_ONLY "\"streams\": [{\"name\": \"host\", \"host\": true}], \"ops\": []"
static void test_bad_schedules_as_a_whole(void **state)
{
    (void)state;
    const char *top = "{\"format\": \"fsdpsim-schedule\", \"version\": 1, \"world\": 4, "
                      "\"nodes\": 2, \"gpus_per_node\": 2, \"meta\": {}, ";
    const char *host = HOST_ONLY;
    const char *groups = "\"groups\": [{\"name\": \"all\", \"size\": 4, \"stride\": 1}], ";
    struct {
        const char *classes, *needle;
    } cases[] = {
        /* report.c read classes[0] of an empty list: a segfault */
        {"[]", "at least one rank class"},
        /* a group member no class holds: the engine read freed memory for its message */
        {"[{\"first_rank\": 0, \"n_ranks\": 3, \"rank_stride\": 1, " HOST_ONLY "}]",
         "no rank class holds rank 3"},
        {"[{\"first_rank\": 0, \"n_ranks\": 4, \"rank_stride\": 1, " HOST_ONLY "}, "
         "{\"first_rank\": 2, \"n_ranks\": 1, \"rank_stride\": 1, " HOST_ONLY "}]",
         "rank 2 is also in classes[0]"},
        {"[{\"first_rank\": 2, \"n_ranks\": 2, \"rank_stride\": 3, " HOST_ONLY "}]",
         "outside the world"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *text = g_strdup_printf("%s%s\"classes\": %s}", top, groups, cases[i].classes);
        expect_bad(text, cases[i].needle);
        g_free(text);
    }
    char *dup_group = g_strdup_printf(
        "%s\"groups\": [{\"name\": \"g\", \"size\": 2, \"stride\": 1}, {\"name\": \"g\", \"size\": "
        "4, \"stride\": 1}], \"classes\": [{\"first_rank\": 0, \"n_ranks\": 4, \"rank_stride\": 1, %s}]}",
        top, host);
    expect_bad(dup_group, "a second group named \"g\"");
    char *dup_stream = g_strdup_printf(
        "%s%s\"classes\": [{\"first_rank\": 0, \"n_ranks\": 4, \"rank_stride\": 1, \"streams\": "
        "[{\"name\": \"s\", \"host\": true}, {\"name\": \"s\", \"host\": false}], \"ops\": []}]}",
        top, groups);
    expect_bad(dup_stream, "a second stream named \"s\"");
    /* rank 3 + 1 is rank 4 of a world of 4 */
    char *peer = g_strdup_printf(
        "%s%s\"classes\": [{\"first_rank\": 0, \"n_ranks\": 4, \"rank_stride\": 1, \"streams\": "
        "[{\"name\": \"host\", \"host\": true}], \"ops\": [{\"kind\": \"send\", \"stream\": "
        "\"host\", \"name\": \"x\", \"phase\": \"other\", \"deps\": [], \"peer_offset\": 1, "
        "\"bytes\": 8, \"tag\": 0}]}]}",
        top, groups);
    expect_bad(peer, "peer_offset");
    /* a dependency on itself: a cycle of one */
    char *self = g_strdup_printf(
        "%s%s\"classes\": [{\"first_rank\": 0, \"n_ranks\": 4, \"rank_stride\": 1, %.*s[{\"kind\": "
        "\"host\", \"stream\": \"host\", \"name\": \"a\", \"phase\": \"other\", \"deps\": [0], "
        "\"seconds\": 0}]}]}",
        top, groups, (int)(strlen(host) - 2), host);
    expect_bad(self, "earlier op");
    g_free(dup_group), g_free(dup_stream), g_free(peer), g_free(self);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_members_and_shape),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_schedules),
        cmocka_unit_test(test_class_of_rank),
        cmocka_unit_test(test_strings_interned),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_strings_joined),
        cmocka_unit_test(test_json_lines_not_in_strings),
        cmocka_unit_test(test_compute_payloads),
        cmocka_unit_test(test_op_packed),
        cmocka_unit_test(test_bad_schedules_as_a_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
