/* init: what each layout's initialisation builds where (strat_init_estimate, src/strategy/init.c),
 * on Llama-2-7B and JUWELS Booster (4 A100-40GB a node). The expected bytes are counted here from
 * the model's shape, not from the estimate: 32 decoder layers of 4h^2 + 3h*ffn + 2h parameters
 * (h 4096, ffn 11008), an untied embedding and head of vocab*h each (vocab 32000), a final norm
 * of h. A recording collective model checks which groups the broadcasts run over. */
#include "testutil.h"

#include "strategy/init.h"

#define H 4096.0
#define LAYER (4 * H * H + 3 * H * 11008 + 2 * H)
#define EMBED (32000 * H)

/* Counts broadcasts and keeps their shapes; each takes 1 s, so a time counts them. */
typedef struct {
    CollModel base;
    CollShape shapes[4];
    int n;
} RecColl;

static double rec_time_s(const CollModel *self, const CollShape *shape, CollChoice *choice)
{
    RecColl *rec = (RecColl *)(void *)self;
    if (rec->n < 4)
        rec->shapes[rec->n] = *shape;
    rec->n++;
    return 1;
}

typedef struct {
    Model *model;
    HwTopology *topo;
    StratOptions opt;
    StratLayout layout;
    StratInfo info;
    RecColl coll;
    InitEstimate init;
} InitRun;

static void init_run(InitRun *r, StratKind kind, ShardingStrategy sharding, int nodes, int tp,
                     int pp)
{
    memset(r, 0, sizeof *r);
    r->model = load_model("models/llama2-7b.json", NULL);
    r->topo = load_topo("topologies/juwels-booster.json");
    strat_options_default(&r->opt, r->model);
    r->opt.kind = kind;
    r->opt.sharding = sharding;
    r->opt.tp = tp;
    r->opt.pp = pp;
    r->opt.grad_accum = pp > 1 ? 4 * pp : 1; /* fsdpsim's default with --pp */
    GError *error = NULL;
    if (!strat_layout_make(&r->opt, nodes, 4, &r->layout, &error))
        fail_msg("%s", error->message);
    IrSchedule *sched = strat_generate(r->model, r->topo, &r->opt, &r->layout, &r->info, &error);
    if (!sched)
        fail_msg("%s", error->message);
    ir_schedule_free(sched);
    r->coll.base.name = "recording";
    r->coll.base.time_s = rec_time_s;
    strat_init_estimate(r->model, r->topo, &r->coll.base, &r->opt, &r->layout, &r->info, &r->init);
}

static void init_end(InitRun *r)
{
    strat_info_clear(&r->info);
    model_free(r->model);
    hw_topology_free(r->topo);
}

static const InitMode *mode(const InitRun *r, const char *name)
{
    for (int i = 0; i < r->init.n_modes; i++)
        if (strcmp(r->init.modes[i].name, name) == 0)
            return &r->init.modes[i];
    fail_msg("no init mode %s", name);
    return NULL;
}

static void assert_shape(const CollShape *s, int nranks, int nodes, int ranks_per_node)
{
    assert_int_equal(s->kind, IR_COLL_BROADCAST);
    assert_int_equal(s->nranks, nranks);
    assert_int_equal(s->nodes, nodes);
    assert_int_equal(s->ranks_per_node, ranks_per_node);
}

/* PyTorch DDP: the whole fp32 model on every GPU, nothing sharded, and the constructor's
 * broadcast over all 8 ranks. Was: "built on the GPU by every rank, then sharded" and the
 * broadcast named as FSDP's sync_module_states option. */
static void test_ddp(void **state)
{
    InitRun r;
    init_run(&r, STRAT_DDP, SHARD_FULL_SHARD, 2, 1, 1);
    double full = 4 * (double)(r.model->params + r.model->buffers);
    assert_close(full, 4 * (32 * LAYER + 2 * EMBED + H), 1e-3);
    assert_int_equal(r.init.n_modes, 2);
    assert_close(mode(&r, "cuda")->gpu_peak_bytes, full, 1e-12);
    assert_close(mode(&r, "cpu")->gpu_peak_bytes, full, 1e-12);
    assert_close(mode(&r, "cpu")->host_bytes_per_node, 4 * full, 1e-12);
    assert_null(strstr(mode(&r, "cuda")->description, "shard"));
    assert_null(strstr(mode(&r, "cpu")->description, "shard"));
    assert_non_null(strstr(r.init.sync_description, "DDP's constructor"));
    assert_int_equal(r.coll.n, 1);
    assert_shape(&r.coll.shapes[0], 8, 2, 4);
    assert_int_equal(r.coll.shapes[0].bytes, (uint64_t)full);
    init_end(&r);
}

/* Megatron's DDP with tp 4 x pp 2 on 4 nodes (dp 2): each rank builds its TP shard of its stage in
 * params_dtype (bf16), 1/8 of the model: the last stage, 16 layers + norm + head, over 4. Was the
 * whole fp32 model (25.10 GiB) on every GPU. */
static void test_ddp_tp_pp(void **state)
{
    InitRun r;
    init_run(&r, STRAT_DDP, SHARD_FULL_SHARD, 4, 4, 2);
    double stage = 16 * LAYER + H + EMBED, buffers = 4 * (double)r.model->buffers;
    double part = stage / 4 * 2 + buffers;
    assert_int_equal(r.init.n_modes, 2);
    const InitMode *cuda = mode(&r, "cuda"), *cpu = mode(&r, "cpu");
    assert_close(cuda->gpu_peak_bytes, part, 1e-9);
    assert_true(cuda->gpu_peak_bytes < 4 * (double)r.model->params / 8);
    assert_close(cuda->time_s, part / (r.topo->gpu.hbm_Bps * r.topo->gpu.memory_efficiency), 1e-9);
    assert_non_null(strstr(cuda->description, "TP shard"));
    /* --use-cpu-initialization: the stage's weights drawn whole in fp32 at 1 GB/s */
    assert_close(cpu->gpu_peak_bytes, part, 1e-9);
    assert_close(cpu->time_s, (4 * stage + buffers) / 1e9 + part / r.topo->pcie_Bps, 1e-9);
    assert_close(cpu->host_bytes_per_node, 4 * part, 1e-9);
    /* --data-parallel-random-init: the shard over the 2 data-parallel ranks, 4 apart (tp-dp-pp):
     * on 2 nodes, 1 each */
    assert_int_equal(r.coll.n, 1);
    assert_shape(&r.coll.shapes[0], 2, 2, 1);
    assert_int_equal(r.coll.shapes[0].bytes, (uint64_t)part);
    init_end(&r);
}

/* Plain FSDP full_shard keeps its numbers: the generator's shard and largest unit, a broadcast
 * over all ranks. With tp 4 (2D, FSDP1 over the data-parallel mesh) each TP rank's share is
 * broadcast over its data-parallel group of 2, one rank a node; was the whole model over all 8. */
static void test_fsdp_full(void **state)
{
    InitRun r;
    init_run(&r, STRAT_FSDP, SHARD_FULL_SHARD, 2, 1, 1);
    double full = 4 * (double)(r.model->params + r.model->buffers);
    double shard = (double)r.info.padded_params / 8 * 4,
           largest = 4 * (double)r.info.largest_unit_numel;
    assert_int_equal(r.init.n_modes, 3);
    assert_close(mode(&r, "meta")->gpu_peak_bytes, shard + largest, 1e-12);
    assert_close(mode(&r, "cpu")->gpu_peak_bytes, shard + largest, 1e-12);
    assert_close(mode(&r, "cuda")->gpu_peak_bytes, full + shard, 1e-12);
    assert_close(shard, 4 * (32 * LAYER + 2 * EMBED + H) / 8, 1e-3);
    assert_int_equal(r.coll.n, 1);
    assert_shape(&r.coll.shapes[0], 8, 2, 4);
    init_end(&r);

    init_run(&r, STRAT_FSDP, SHARD_FULL_SHARD, 2, 4, 1);
    full = 4 * (double)(r.model->params + r.model->buffers);
    shard = (double)r.info.padded_params / 2 * 4, largest = 4 * (double)r.info.largest_unit_numel;
    assert_close(shard, 4 * (32 * LAYER + 2 * EMBED + H) / 8, 1e-3); /* the TP share, over dp 2 */
    assert_close(mode(&r, "meta")->gpu_peak_bytes, shard + largest, 1e-12);
    assert_int_equal(r.coll.n, 1);
    assert_shape(&r.coll.shapes[0], 2, 2, 1);
    assert_int_equal(r.coll.shapes[0].bytes, (uint64_t)(full / 4));
    init_end(&r);
}

/* FSDP full_shard with tp 4 x pp 2 on 4 nodes: dp 2 shards each rank's TP share of its stage;
 * to_empty() materialises only the shard (torchtitan's meta-device recipe). Was 0 B for cpu and
 * meta: the pipeline generator has no FSDP units for the old formula. */
static void test_fsdp_full_tp_pp(void **state)
{
    InitRun r;
    init_run(&r, STRAT_FSDP, SHARD_FULL_SHARD, 4, 4, 2);
    assert_int_equal(r.layout.shard_size, 2);
    double shard = (16 * LAYER + H + EMBED) / 4 / 2 * 4;
    double largest = (LAYER + H + EMBED) / 4 * 4; /* the last layer's unit holds the head */
    double full = 4 * (double)(r.model->params + r.model->buffers);
    const InitMode *meta = mode(&r, "meta");
    assert_close(meta->gpu_peak_bytes, shard, 1e-9);
    assert_true(meta->gpu_peak_bytes > 0);
    assert_close(meta->time_s, shard / (r.topo->gpu.hbm_Bps * r.topo->gpu.memory_efficiency), 1e-9);
    assert_close(mode(&r, "cpu")->gpu_peak_bytes, shard + largest, 1e-9);
    assert_close(mode(&r, "cuda")->gpu_peak_bytes, full + shard, 1e-9);
    /* fully_shard has no sync_module_states */
    assert_int_equal(r.coll.n, 0);
    assert_true(r.init.sync_module_states_s == 0);
    assert_non_null(strstr(r.init.sync_description, "fully_shard"));
    init_end(&r);
}

/* Hybrid sharding with tp 2 x pp 2 on 4 nodes: dp 4, shard groups of the node's 2 data-parallel
 * peers, 2 replicas. Was 0 B for cpu and meta. */
static void test_hybrid_tp_pp(void **state)
{
    InitRun r;
    init_run(&r, STRAT_FSDP, SHARD_HYBRID_SHARD, 4, 2, 2);
    assert_int_equal(r.layout.shard_size, 2);
    assert_int_equal(r.layout.replicate_size, 2);
    double shard = (16 * LAYER + H + EMBED) / 2 / 2 * 4;
    double largest = (LAYER + H + EMBED) / 2 * 4;
    assert_close(mode(&r, "meta")->gpu_peak_bytes, shard, 1e-9);
    assert_close(mode(&r, "cpu")->gpu_peak_bytes, shard + largest, 1e-9);
    assert_false(mode(&r, "cpu")->gpu_oom);
    init_end(&r);
}

/* FSDP1 hybrid_shard's sync_module_states broadcasts over the shard group, then over the
 * inter-node replicate group (_init_utils.py, _init_param_handle_from_module). Was one broadcast
 * over all 8 ranks. */
static void test_hybrid_sync(void **state)
{
    InitRun r;
    init_run(&r, STRAT_FSDP, SHARD_HYBRID_SHARD, 2, 1, 1);
    double full = 4 * (double)(r.model->params + r.model->buffers);
    assert_int_equal(r.coll.n, 2);
    assert_shape(&r.coll.shapes[0], 4, 1, 4);
    assert_shape(&r.coll.shapes[1], 2, 2, 1);
    assert_int_equal(r.coll.shapes[1].bytes, (uint64_t)full);
    assert_true(r.init.sync_module_states_s == 2);
    /* the shard and the unit as before: the generator's */
    assert_close(mode(&r, "meta")->gpu_peak_bytes,
                 (double)r.info.padded_params / 4 * 4 + 4 * (double)r.info.largest_unit_numel,
                 1e-12);
    init_end(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ddp),          cmocka_unit_test(test_ddp_tp_pp),
        cmocka_unit_test(test_fsdp_full),    cmocka_unit_test(test_fsdp_full_tp_pp),
        cmocka_unit_test(test_hybrid_tp_pp), cmocka_unit_test(test_hybrid_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
