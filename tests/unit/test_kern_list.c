/* Kernel lists (schedule version 3): the kernels a leaf run decomposes into are the ones the
 * kernel model sums, the schedule carries them through JSON unchanged, and the simulator's
 * re-costing of them gives the generator's seconds back on the GPU the schedule was made for. */
#include "testutil.h"

#include "../../src/kern/kern.h"

/* kern_leaf_s == sum of share x kern_time_s over kern_leaf_kernels, bit for bit, and again after
 * the trip through the IR record, for every leaf of four models (decoder with flash and eager
 * attention, MoE, CNN), forward and backward, whole and as one TP rank's share, on two GPUs. */
static void test_leaf_kernels_sum(void **state)
{
    (void)state;
    const char *models[] = {"models/gpt2.json", "models/llama2-7b.json",
                            "models/mixtral-8x7b.json", "models/resnet50.json"};
    HwTopology *gpus[2] = {load_topo("topologies/juwels-booster.json"),
                           load_topo("topologies/hgx-h100-ndr400.json")};
    int seen[KERN_CLASS_COUNT] = {0};
    for (size_t mi = 0; mi < G_N_ELEMENTS(models); mi++) {
        bool cnn = strstr(models[mi], "resnet") != NULL; /* no attention to switch */
        for (int flash = 0; flash < (cnn ? 1 : 2); flash++) {
            ModelOverrides ov = {.flash_attention = flash};
            Model *m = load_model(models[mi], cnn ? NULL : &ov);
            KernAttnImpl attn = kern_attention_impl(m);
            int leaves = 0;
            for (int i = 0; i < m->n_modules; i++) {
                const ModelModule *leaf = &m->modules[i];
                if (leaf->first_child >= 0 || leaf->flops_fwd <= 0)
                    continue;
                leaves++;
                for (int v = 0; v < 8; v++) {
                    const HwGpu *gpu = &gpus[v & 1]->gpu;
                    double tp = v & 2 ? 4 : 1;
                    bool backward = v & 4;
                    KernShape list[KERN_LEAF_MAX];
                    int n = kern_leaf_kernels(HW_DTYPE_BF16, leaf, attn, 3, tp, backward, list);
                    assert_true(n >= 1 && n <= KERN_LEAF_MAX);
                    double sum = 0;
                    IrKernel ir[KERN_LEAF_MAX];
                    for (int k = 0; k < n; k++) {
                        sum += list[k].share * kern_time_s(gpu, &list[k]);
                        kern_to_ir(&list[k], &ir[k]);
                        seen[list[k].cls]++;
                    }
                    double leaf_s = kern_leaf_s(gpu, HW_DTYPE_BF16, leaf, attn, 3, tp, backward);
                    assert_true(leaf_s > 0);
                    assert_true(sum == leaf_s);
                    assert_true(kern_list_s(gpu, ir, n) == leaf_s);
                }
            }
            assert_true(leaves > 0);
            model_free(m);
        }
    }
    /* GEMMs (Linear layers, eager attention), fused attention, and convolutions */
    assert_true(seen[KERN_GEMM] > 0 && seen[KERN_ATTENTION] > 0 && seen[KERN_CONV] > 0);
    hw_topology_free(gpus[0]);
    hw_topology_free(gpus[1]);
}

/* A GEMM's shape, not its FLOPs, sets its time: a skinny GEMM with a square one's FLOPs is
 * slower, and the list keeps the difference (a FLOP count would not). */
static void test_shape_not_flops(void **state)
{
    (void)state;
    HwTopology *t = load_topo("topologies/hgx-h100-ndr400.json");
    KernShape square = {.cls = KERN_GEMM, .dtype = HW_DTYPE_BF16, .m = 4096, .n = 4096,
                        .k = 4096, .batch = 1, .share = 1};
    KernShape skinny = square;
    skinny.m = 16, skinny.n = 4096 * 256;
    IrKernel a, b;
    kern_to_ir(&square, &a);
    kern_to_ir(&skinny, &b);
    assert_true(kern_list_s(&t->gpu, &b, 1) > 1.2 * kern_list_s(&t->gpu, &a, 1));
    /* share scales the time: half a kernel, three of them */
    a.share = 0.5;
    assert_true(kern_list_s(&t->gpu, &a, 1) == 0.5 * kern_gemm_s(&t->gpu, HW_DTYPE_BF16, 4096,
                                                                 4096, 4096, 1));
    hw_topology_free(t);
}

static int ops_with_lists(const IrSchedule *s)
{
    int n = 0;
    for (int c = 0; c < s->n_classes; c++)
        for (int i = 0; i < ir_class_n_ops(s->classes[c]); i++) {
            const IrOp *op = ir_op(s->classes[c], i);
            n += op->kind == IR_OP_COMPUTE && ir_op_compute(s->classes[c], op)->kern_first != 0;
        }
    return n;
}

/* Generated schedules (FSDP, FSDP x TP, a pipeline with TP and checkpointing): their compute
 * ops carry kernel lists; re-costing for the same GPU gives each op's seconds bit for bit, for
 * an H100 the A100 schedule's compute gets faster; the JSON keeps the lists exactly. */
static void check_schedule(const char *model, StratKind kind, int tp, int pp, bool ckpt)
{
    Run r;
    run_start(&r, model, "topologies/juwels-booster.json", 2, 4);
    r.opt.kind = kind;
    r.opt.tp = tp;
    r.opt.pp = pp;
    r.opt.grad_accum = pp > 1 ? 4 : 1;
    r.opt.activation_checkpointing = ckpt;
    GError *error = NULL;
    if (!strat_layout_make(&r.opt, 2, 4, &r.layout, &error))
        fail_msg("%s", error->message);
    IrSchedule *s = strat_generate(r.model, r.topo, &r.opt, &r.layout, &r.info, &error);
    if (!s)
        fail_msg("%s", error->message);
    assert_true(ops_with_lists(s) > 0);
    char *json = ir_schedule_to_json(s);
    IrSchedule *back = ir_schedule_from_text("mem.json", json, &error);
    if (!back)
        fail_msg("%s", error->message);
    assert_true(ir_schedule_equal(s, back));
    assert_int_equal(ops_with_lists(back), ops_with_lists(s));
    kern_schedule_retime(back, &r.topo->gpu);
    HwTopology *h100 = load_topo("topologies/hgx-h100-ndr400.json");
    IrSchedule *fast = ir_schedule_from_text("mem.json", json, &error);
    kern_schedule_retime(fast, &h100->gpu);
    int faster = 0;
    for (int c = 0; c < s->n_classes; c++)
        for (int i = 0; i < ir_class_n_ops(s->classes[c]); i++) {
            const IrOp *a = ir_op(s->classes[c], i), *b = ir_op(back->classes[c], i);
            const IrOp *h = ir_op(fast->classes[c], i);
            if (a->kind != IR_OP_COMPUTE)
                continue;
            const IrCompute *pa = ir_op_compute(s->classes[c], a);
            const IrCompute *pb = ir_op_compute(back->classes[c], b);
            const IrCompute *ph = ir_op_compute(fast->classes[c], h);
            assert_true(pa->seconds == pb->seconds);
            if (pa->kern_first && pa->flops > 0)
                faster += ph->seconds < pa->seconds;
        }
    assert_true(faster > 0);
    ir_schedule_free(fast);
    hw_topology_free(h100);
    ir_schedule_free(back);
    g_free(json);
    ir_schedule_free(s);
    strat_info_clear(&r.info);
    model_free(r.model);
    hw_topology_free(r.topo);
}

static void test_schedule_lists(void **state)
{
    (void)state;
    check_schedule("models/gpt2.json", STRAT_FSDP, 1, 1, false);
    check_schedule("models/gpt2.json", STRAT_FSDP, 2, 1, true);
    check_schedule("models/gpt2.json", STRAT_DDP, 2, 2, true);
    check_schedule("models/resnet50.json", STRAT_DDP, 1, 1, false);
}

/* Lists are interned: the micro-batches and layers of a pipeline share a few lists, far fewer
 * than its compute ops. */
static void test_lists_shared(void **state)
{
    (void)state;
    IrSchedule *s = ir_schedule_new(1, 1);
    IrClass *c = ir_class_add(s, 0, 1, 1);
    IrKernel k[2] = {{.cls = IR_KERN_GEMM, .shape = {64, 64, 64, 1}, .share = 1},
                     {.cls = IR_KERN_MEMORY, .shape = {1e6, 2}, .share = 1}};
    uint32_t a = ir_kernels_add(c, k, 2), b = ir_kernels_add(c, k, 2);
    assert_true(a != 0 && a == b);
    assert_int_equal(c->kernels->len, 2);
    k[1].share = 0.5;
    uint32_t d = ir_kernels_add(c, k, 2);
    assert_true(d != a);
    int n;
    const IrKernel *list = ir_kernels_of(c, d, &n);
    assert_int_equal(n, 2);
    assert_true(list[1].share == 0.5 && (list[1].flags & IR_KERN_LAST));
    assert_int_equal(ir_kernels_add(c, k, 0), 0);
    /* a list larger than the stack (200,000 records, 9.6 MB: a schedule file's list, or one op
     * of a layer list of 200,000 convolutions) was copied onto it, and the copy overflowed it;
     * interned like a small one */
    enum { BIG = 200000 };
    IrKernel *big = g_new0(IrKernel, BIG);
    for (int i = 0; i < BIG; i++)
        big[i] = (IrKernel){.cls = IR_KERN_FLOPS, .shape = {i + 1.0}, .share = 1};
    uint32_t e = ir_kernels_add(c, big, BIG);
    assert_int_equal(ir_kernels_add(c, big, BIG), e);
    list = ir_kernels_of(c, e, &n);
    assert_int_equal(n, BIG);
    assert_true(list[BIG - 1].shape[0] == BIG && (list[BIG - 1].flags & IR_KERN_LAST));
    g_free(big);
    ir_schedule_free(s);
}

/* The content hash the lists (and the generators' memo of their seconds) are keyed by sees
 * every byte: lists that differ only in a power-of-two size (doubles that differ in exponent
 * bits alone, the high bits of a word), a share, or a flag of a later record hash apart, and
 * equal lists hash alike. A hash that dropped the high bits would put all 64 sizes in one
 * bucket. */
static void test_lists_hash(void **state)
{
    (void)state;
    IrKernel k[3] = {{.cls = IR_KERN_GEMM, .shape = {4096, 4096, 4096, 1}, .share = 1},
                     {.cls = IR_KERN_ATTENTION, .shape = {32, 2048, 128, 0}, .share = 1},
                     {.cls = IR_KERN_MEMORY, .shape = {1e6, 2}, .share = 1}};
    GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
    int lists = 0;
    for (int e = 0; e < 64; e++, lists++) {
        k[1].shape[1] = ldexp(1, e);
        g_hash_table_add(seen, GUINT_TO_POINTER(ir_kernels_hash(k, 3)));
    }
    k[2].share = 0.5, lists++;
    g_hash_table_add(seen, GUINT_TO_POINTER(ir_kernels_hash(k, 3)));
    k[1].flags = IR_KERN_CAUSAL, lists++;
    g_hash_table_add(seen, GUINT_TO_POINTER(ir_kernels_hash(k, 3)));
    assert_int_equal(g_hash_table_size(seen), lists);
    IrKernel copy[3];
    memcpy(copy, k, sizeof copy);
    assert_int_equal(ir_kernels_hash(copy, 3), ir_kernels_hash(k, 3));
    assert_true(ir_kernels_hash(k, 2) != ir_kernels_hash(k, 3));
    g_hash_table_destroy(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_kernels_sum), cmocka_unit_test(test_shape_not_flops),
        cmocka_unit_test(test_schedule_lists), cmocka_unit_test(test_lists_shared),
        cmocka_unit_test(test_lists_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
