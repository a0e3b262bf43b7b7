/* recompute: selective activation recomputation (Megatron's --recompute-granularity selective;
 * Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
 * section 5) against the paper's closed forms, on GPT-3 175B (s 2048, h 12288, a 96, micro-batch 1).
 *
 * A decoder layer keeps 34sbh + 5as^2b bytes with eager attention (Table 2, t = 1); selective
 * recomputation drops the 5as^2b of the attention core (softmax output, dropout mask and output)
 * and runs the core's forward again in backward: 4bs^2h more FLOPs per layer and micro-batch.
 * With flash attention the core keeps no score matrix: the FLOPs come back, the memory does not
 * change. Both generators are checked: gen.c (DDP, and FSDP x TP) and pp.c (Megatron's DDP with
 * TP). */
#include "testutil.h"

typedef struct {
    double act_total;  /* activation bytes kept for backward ("act:", and "ckpt:", the inputs
                        * of checkpointed blocks), one step */
    double act_peak;   /* most activation bytes live at once, in the program's order */
    double bwd_flops;  /* hardware FLOPs of the backward's compute ops */
    double model_flops;
    double fwd_s, bwd_s; /* compute time per phase */
} Sums;

/* Sums over rank class 0 (every rank when there is no pipeline). Activation buffers are
 * allocated and freed on the host stream, so program order is issue order. */
static Sums sums_of(const Run *r)
{
    Sums s = {0};
    const IrClass *c = r->sched->classes[0];
    double live = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        if ((op->kind == IR_OP_ALLOC || op->kind == IR_OP_FREE) &&
            op->u.mem.category == IR_MEM_ACTIVATIONS) {
            double bytes = (double)op->u.mem.bytes;
            live += op->kind == IR_OP_ALLOC ? bytes : -bytes;
            s.act_peak = MAX(s.act_peak, live);
            const char *name = ir_class_string(c, op->u.mem.buffer);
            if (op->kind == IR_OP_ALLOC &&
                (g_str_has_prefix(name, "act:") || g_str_has_prefix(name, "ckpt:")))
                s.act_total += bytes;
        } else if (op->kind == IR_OP_COMPUTE) {
            const IrCompute *k = ir_op_compute(c, op);
            if (op->phase == IR_PHASE_BACKWARD)
                s.bwd_flops += k->flops;
            s.model_flops += k->model_flops;
        }
    }
    s.fwd_s = r->rep.time_by_phase[IR_PHASE_FORWARD];
    s.bwd_s = r->rep.time_by_phase[IR_PHASE_BACKWARD];
    return s;
}

/* GPT-3 175B on one 8-GPU node, tensor parallel over `tp` of them (the rest data parallel). */
static Sums gpt3_wrapped(StratKind kind, int tp, bool flash, bool selective, bool full,
                         bool one_unit)
{
    Run r;
    memset(&r, 0, sizeof r);
    ModelOverrides ov = {.flash_attention = flash ? 1 : 0};
    r.model = load_model("models/gpt3-175b.json", &ov);
    r.topo = load_topo("topologies/hgx-h100-ndr400.json");
    strat_options_default(&r.opt, r.model);
    r.opt.kind = kind;
    r.opt.tp = tp;
    r.opt.recompute_selective = selective;
    r.opt.activation_checkpointing = full;
    if (one_unit)
        r.opt.wrap.kind = PLAN_WRAP_NONE;
    r.layout.nodes = 1;
    r.layout.gpus_per_node = tp;
    run_sim_with(&r, false, NULL);
    Sums s = sums_of(&r);
    run_end(&r);
    return s;
}

static Sums gpt3(StratKind kind, int tp, bool flash, bool selective, bool full)
{
    return gpt3_wrapped(kind, tp, flash, selective, full, false);
}

static const double S = 2048, H = 12288, A = 96, L = 96; /* micro-batch 1 */
/* What a layer keeps beside the scores, in sbh: Korthikanti's 34, plus 24 for gpt3-175b.json's
 * gelu_new, which in eager transformers keeps four 4h tensors where Megatron's fused GELU keeps
 * one (model_hf.c model_hf_gpt2_activation); tp.c scales the sum by Korthikanti's (10 + 24/t)/34.
 */
static const double LAYER_SBH = 34 + 24;

/* What one layer keeps, from the difference with full recomputation, which keeps the layer's
 * 2sbh input (t ranks each keep all of it without sequence parallelism): the embedding's and
 * the output layer's activations cancel. */
static double per_layer(const Sums *run, const Sums *full)
{
    return (run->act_total - full->act_total) / L + 2 * S * H;
}

/* Eager attention, no tensor parallelism (gen.c's DDP): the activations lose 5as^2b per layer,
 * what remains per layer is Korthikanti's 34sbh (+ gelu_new's 24); the backward gains the core's forward FLOPs,
 * and time. */
static void test_selective_eager(void **state)
{
    (void)state;
    Sums plain = gpt3(STRAT_DDP, 1, false, false, false);
    Sums sel = gpt3(STRAT_DDP, 1, false, true, false);
    Sums full = gpt3(STRAT_DDP, 1, false, false, true);
    double scores = 5 * A * S * S, core_flops = 4 * S * S * H;
    /* gen.c's DDP is torch.autocast: its LayerNorms keep fp32 inputs and gelu_new 3 fp32
     * tensors (28sbh more), and checkpointing keeps the fp32 residual (4sbh, per_layer adds 2) */
    double autocast = (28 - 2) * S * H;
    assert_close(per_layer(&plain, &full), LAYER_SBH * S * H + autocast + scores, 1e-6);
    assert_close(per_layer(&sel, &full), LAYER_SBH * S * H + autocast, 1e-6);
    assert_close(plain.act_total - sel.act_total, L * scores, 1e-6);
    /* at the peak one layer's score tensors are live again, in that layer's backward */
    double dropped = plain.act_peak - sel.act_peak;
    assert_true(dropped >= (L - 1) * scores * (1 - 1e-6));
    assert_true(dropped <= L * scores * (1 + 1e-6));
    assert_close(sel.bwd_flops - plain.bwd_flops, L * core_flops, 1e-9);
    assert_close(sel.model_flops, plain.model_flops, 1e-12);
    assert_true(sel.fwd_s == plain.fwd_s);
    assert_true(sel.bwd_s > plain.bwd_s);
    /* the extra backward is the cores' forward: less than the whole forward's time */
    assert_true(sel.bwd_s - plain.bwd_s < plain.fwd_s);
}

/* One FSDP unit around the whole model (--wrap none): its backward is one run over all layers,
 * and still only one core's scores are live again at a time (Megatron recomputes each core just
 * before its own backward), so the peak drops by all but one layer's scores. */
static void test_selective_one_unit(void **state)
{
    (void)state;
    Sums plain = gpt3_wrapped(STRAT_FSDP, 1, false, false, false, true);
    Sums sel = gpt3_wrapped(STRAT_FSDP, 1, false, true, false, true);
    double scores = 5 * A * S * S;
    double dropped = plain.act_peak - sel.act_peak;
    assert_true(dropped >= (L - 1) * scores * (1 - 1e-6));
    assert_true(dropped <= L * scores * (1 + 1e-6));
}

/* Flash attention keeps no score matrix: nothing to drop, the recompute's FLOPs all the same. */
static void test_selective_flash(void **state)
{
    (void)state;
    Sums plain = gpt3(STRAT_DDP, 1, true, false, false);
    Sums sel = gpt3(STRAT_DDP, 1, true, true, false);
    assert_close(sel.act_total, plain.act_total, 1e-12);
    assert_close(sel.act_peak, plain.act_peak, 1e-12);
    assert_close(sel.bwd_flops - plain.bwd_flops, L * 4 * S * S * H, 1e-9);
    assert_true(sel.bwd_s > plain.bwd_s);
    /* and less extra time than the eager cores' recompute, which moves the score matrix */
    Sums eager = gpt3(STRAT_DDP, 1, false, false, false);
    Sums eager_sel = gpt3(STRAT_DDP, 1, false, true, false);
    assert_true(sel.bwd_s - plain.bwd_s < eager_sel.bwd_s - eager.bwd_s);
}

/* Tensor parallel 8 (attention split by heads): FSDP x TP (gen.c) and Megatron's DDP (pp.c)
 * drop the same bytes, the model's share of the score tensors on one TP rank (its
 * activations scale by Korthikanti's (10 + 24/t)/34, tp.c), and add 1/t of the cores' FLOPs. */
static void test_selective_tp(void **state)
{
    (void)state;
    /* the scores split by heads (1/t), the rest of the layer as Korthikanti splits it: per
     * layer sbh(10 + 24/t + 5as/ht) without selective, sbh(10 + 24/t) with it (Table 2) */
    double t = 8;
    double scores = 5 * A * S * S / t, core_flops = 4 * S * S * H / t;
    StratKind kinds[2] = {STRAT_FSDP, STRAT_DDP};
    for (int k = 0; k < 2; k++) {
        Sums plain = gpt3(kinds[k], 8, false, false, false);
        Sums sel = gpt3(kinds[k], 8, false, true, false);
        Sums full = gpt3(kinds[k], 8, false, false, true);
        /* per layer, what remains is Korthikanti's sbh(10 + 24/t) (Table 2, selective) for
         * Megatron's DDP (its fused bias-GeLU, model_fused_kernels); FSDP x TP (PyTorch's eager
         * gelu_new) keeps gelu_new's 24sbh more, all of it in the split MLP (tp.c
         * gen_tp_saved_kinds): sbh(10 + 48/t) */
        double rest = S * H * (10 + ((kinds[k] == STRAT_FSDP ? LAYER_SBH : 34) - 10) / t);
        assert_close(per_layer(&sel, &full), rest, 1e-6);
        assert_close(per_layer(&plain, &full), rest + S * H * 5 * A * S / (H * t), 1e-6);
        assert_close(plain.act_total - sel.act_total, L * scores, 1e-6);
        double dropped = plain.act_peak - sel.act_peak;
        assert_true(dropped >= (L - 1) * scores * (1 - 1e-6));
        assert_true(dropped <= L * scores * (1 + 1e-6));
        assert_close(sel.bwd_flops - plain.bwd_flops, L * core_flops, 1e-9);
        assert_true(sel.bwd_s > plain.bwd_s);
        Sums flash = gpt3(kinds[k], 8, true, false, false);
        Sums flash_sel = gpt3(kinds[k], 8, true, true, false);
        assert_close(flash_sel.act_peak, flash.act_peak, 1e-12);
        assert_close(flash_sel.bwd_flops - flash.bwd_flops, L * core_flops, 1e-9);
    }
}

/* Layers that full recomputation (--activation-checkpointing) reruns whole: selective adds
 * nothing, in either generator. */
static void test_selective_under_full(void **state)
{
    (void)state;
    for (int tp = 1; tp <= 8; tp *= 8) {
        StratKind kind = STRAT_DDP; /* tp 1: gen.c; tp 8: pp.c */
        Sums full = gpt3(kind, tp, false, false, true);
        Sums both = gpt3(kind, tp, false, true, true);
        assert_close(both.act_peak, full.act_peak, 1e-12);
        assert_close(both.bwd_flops, full.bwd_flops, 1e-12);
        assert_true(both.bwd_s == full.bwd_s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selective_eager),
        cmocka_unit_test(test_selective_flash),
        cmocka_unit_test(test_selective_one_unit),
        cmocka_unit_test(test_selective_tp),
        cmocka_unit_test(test_selective_under_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
