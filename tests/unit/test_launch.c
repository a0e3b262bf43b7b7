/* launch: --cuda-launch-blocking (StratOptions.cuda_launch_blocking, gen.c gen_launch_p2p and the
 * compute and collective builders). With CUDA_LAUNCH_BLOCKING=1 every kernel launch, NCCL's too,
 * returns when the kernel has finished: the host never runs ahead of its GPU, and each launch's
 * host time is paid before its kernel runs, not while earlier kernels do. */
#include "testutil.h"

#include <inttypes.h>

/* Generates and simulates model on nodes x gpn GPUs with the option set as asked (and a
 * pipeline of pp stages, DDP over the rest, when pp > 1). */
static void launch_run(Run *r, const char *model, int nodes, int gpn, StratKind kind, int pp,
                       bool blocking)
{
    run_start(r, model, "topologies/juwels-booster.json", nodes, gpn);
    r->opt.kind = kind;
    if (pp > 1) {
        r->opt.pp = pp;
        r->opt.grad_accum = 2 * pp;
    }
    r->opt.cuda_launch_blocking = blocking;
    run_sim(r);
}

/* A kernel or a collective; not an op that only orders its stream (pp.c's wait for a send: no
 * kernel, cudaStreamWaitEvent, which CUDA_LAUNCH_BLOCKING leaves asynchronous). */
static bool is_gpu_launch(const IrClass *c, const IrOp *op)
{
    if (op->kind == IR_OP_COLL)
        return true;
    if (op->kind != IR_OP_COMPUTE)
        return false;
    const IrCompute *k = ir_op_compute(c, op);
    return k->kernels > 0 || k->seconds > 0 || k->flops > 0 || k->bytes > 0 || k->kern_first;
}

/* The host never ahead of its GPU: every host op starts once every kernel or collective the
 * host launched before it has ended. Returns how many host ops were checked. */
static int check_host_behind(const Run *r)
{
    int checked = 0;
    for (int c = 0; c < r->sched->n_classes; c++) {
        const IrClass *cls = r->sched->classes[c];
        const SimClassResult *cr = &r->sim->classes[c];
        int64_t gpu_done = 0;
        for (int i = 0; i < ir_class_n_ops(cls); i++) {
            const IrOp *op = ir_op(cls, i);
            if (is_gpu_launch(cls, op)) {
                gpu_done = MAX(gpu_done, sim_op_end_ns(cr, i));
            } else if (op->kind == IR_OP_HOST) {
                int64_t start = sim_op_start_ns(cr, i);
                if (start < gpu_done)
                    fail_msg("class %d op %d (%s) starts at %" PRId64 " ns, before the GPU op "
                             "launched before it ends (%" PRId64 " ns)",
                             c, i, ir_class_string(cls, op->name), start, gpu_done);
                checked++;
            }
        }
    }
    return checked;
}

/* One GPU, no communication: with blocking launches host and GPU take turns, so the step is
 * the sum of every op's duration (host launches plus device time); without, the host's
 * launches hide behind the kernels and the step is shorter by at least most of them. */
static void test_one_gpu_serial(void **state)
{
    (void)state;
    Run async, blocking;
    launch_run(&async, "models/gpt2.json", 1, 1, STRAT_DDP, 1, false);
    launch_run(&blocking, "models/gpt2.json", 1, 1, STRAT_DDP, 1, true);
    const IrClass *c = blocking.sched->classes[0];
    const SimClassResult *cr = &blocking.sim->classes[0];
    int64_t sum_ns = 0, launch_ns = 0;
    int gpu_ops = 0;
    for (int i = 0; i < ir_class_n_ops(c); i++) {
        const IrOp *op = ir_op(c, i);
        int64_t d = sim_op_end_ns(cr, i) - sim_op_start_ns(cr, i);
        sum_ns += d;
        if (op->kind == IR_OP_HOST)
            launch_ns += d;
        gpu_ops += is_gpu_launch(c, op);
    }
    assert_true(gpu_ops > 40 && launch_ns > 0);
    /* nothing overlaps: the makespan is every op's time, one after the other */
    assert_int_equal(blocking.sim->makespan_ns, sum_ns);
    assert_true(async.sim->makespan_ns < sum_ns);
    /* the launches the asynchronous host hid are exposed: most of them come back */
    int64_t added = blocking.sim->makespan_ns - async.sim->makespan_ns;
    assert_true(added > launch_ns / 2);
    assert_true(added <= launch_ns);
    /* one host wait per GPU op, and only with the option */
    assert_int_equal(ir_class_n_ops(c), ir_class_n_ops(async.sched->classes[0]) + gpu_ops);
    assert_true(check_host_behind(&blocking) > gpu_ops);
    run_end(&async);
    run_end(&blocking);
}

/* Data parallelism (DDP's bucketed all-reduces, FSDP's all-gathers and reduce-scatters on
 * their own streams) and a 1F1B pipeline: the host waits for each launch, collectives
 * included, and every such step is slower than its asynchronous run. */
static void check_behind(const char *model, int nodes, StratKind kind, int pp)
{
    Run async, blocking;
    launch_run(&async, model, nodes, 4, kind, pp, false);
    launch_run(&blocking, model, nodes, 4, kind, pp, true);
    assert_true(check_host_behind(&blocking) > 0);
    assert_true(blocking.sim->makespan_ns > async.sim->makespan_ns);
    /* the asynchronous host does run ahead: the check is not empty */
    bool ahead = false;
    const IrClass *c = async.sched->classes[0];
    const SimClassResult *cr = &async.sim->classes[0];
    int64_t gpu_done = 0;
    for (int i = 0; i < ir_class_n_ops(c) && !ahead; i++) {
        const IrOp *op = ir_op(c, i);
        if (is_gpu_launch(c, op))
            gpu_done = MAX(gpu_done, sim_op_end_ns(cr, i));
        else if (op->kind == IR_OP_HOST)
            ahead = sim_op_start_ns(cr, i) < gpu_done;
    }
    assert_true(ahead);
    run_end(&async);
    run_end(&blocking);
}

static void test_ddp_behind(void **state)
{
    (void)state;
    check_behind("models/gpt2.json", 2, STRAT_DDP, 1);
}

static void test_fsdp_behind(void **state)
{
    (void)state;
    check_behind("models/gpt2.json", 2, STRAT_FSDP, 1);
}

static void test_pipeline_behind(void **state)
{
    (void)state;
    check_behind("models/gpt2.json", 2, STRAT_DDP, 4);
}

/* A send is waited for with the receive issued right after it (one NCCL group), but never past
 * the next kernel or collective: CUDA_LAUNCH_BLOCKING makes the send's NCCL kernel return only
 * once it has run, so the host launches nothing more before. GPipe's first stage sends each
 * forward's output with no receive until the backward: before gen.c flushed the deferred sends
 * at the next launch, its host ran through its forwards while their sends were in flight. */
static void test_send_before_next_kernel(void **state)
{
    (void)state;
    Run r;
    run_start(&r, "models/gpt2.json", "topologies/juwels-booster.json", 1, 4);
    r.opt.kind = STRAT_DDP;
    r.opt.pp = 4;
    r.opt.grad_accum = 8;
    r.opt.pp_schedule = PP_SCHEDULE_GPIPE;
    r.opt.cuda_launch_blocking = true;
    run_sim(&r);
    int checked = 0;
    for (int c = 0; c < r.sched->n_classes; c++) {
        const IrClass *cls = r.sched->classes[c];
        const SimClassResult *cr = &r.sim->classes[c];
        int64_t p2p_done = 0;
        for (int i = 1; i < ir_class_n_ops(cls); i++) {
            const IrOp *op = ir_op(cls, i);
            if (op->kind == IR_OP_SEND || op->kind == IR_OP_RECV) {
                p2p_done = MAX(p2p_done, sim_op_end_ns(cr, i));
            } else if (is_gpu_launch(cls, op)) {
                /* op i - 1 is its launch (gen.c: the host op just before the GPU op) */
                assert_int_equal(ir_op(cls, i - 1)->kind, IR_OP_HOST);
                int64_t start = sim_op_start_ns(cr, i - 1);
                if (start < p2p_done)
                    fail_msg("class %d: %s launched at %" PRId64 " ns, before a send or receive "
                             "launched before it ends (%" PRId64 " ns)",
                             c, ir_class_string(cls, op->name), start, p2p_done);
                checked++;
            }
        }
    }
    assert_true(checked > 100);
    run_end(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_gpu_serial),
        cmocka_unit_test(test_ddp_behind),
        cmocka_unit_test(test_fsdp_behind),
        cmocka_unit_test(test_pipeline_behind),
        cmocka_unit_test(test_send_before_next_kernel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
