/* plan: FSDP wrap units follow PyTorch's size_based_auto_wrap_policy and
 * transformer_auto_wrap_policy; FlatParameters pad to the shard group size. */
#include "testutil.h"
#include "plan/plan.h"

/* Two blocks of attn (60M) + mlp (up 70M, down 70M) in a ModuleList, and a 5M head. */
static const char *synthetic =
    "{\"format\": \"fsdpsim-layers\", \"name\": \"synthetic\", \"modules\": ["
    "{\"name\": \"layers\", \"kind\": \"ModuleList\", \"container\": true},"
    "{\"name\": \"layers.0\", \"kind\": \"Block\", \"container\": true},"
    "{\"name\": \"layers.0.attn\", \"kind\": \"linear\", \"params\": 60000000, \"flops_fwd\": 1e9, \"output_elems\": 1000},"
    "{\"name\": \"layers.0.mlp\", \"kind\": \"MLP\", \"container\": true},"
    "{\"name\": \"layers.0.mlp.up\", \"kind\": \"linear\", \"params\": 70000000, \"flops_fwd\": 1e9, \"output_elems\": 1000},"
    "{\"name\": \"layers.0.mlp.down\", \"kind\": \"linear\", \"params\": 70000000, \"flops_fwd\": 1e9, \"output_elems\": 1000},"
    "{\"name\": \"layers.1\", \"kind\": \"Block\", \"container\": true},"
    "{\"name\": \"layers.1.attn\", \"kind\": \"linear\", \"params\": 60000000, \"flops_fwd\": 1e9, \"output_elems\": 1000},"
    "{\"name\": \"layers.1.mlp\", \"kind\": \"MLP\", \"container\": true},"
    "{\"name\": \"layers.1.mlp.up\", \"kind\": \"linear\", \"params\": 70000000, \"flops_fwd\": 1e9, \"output_elems\": 1000},"
    "{\"name\": \"layers.1.mlp.down\", \"kind\": \"linear\", \"params\": 70000000, \"flops_fwd\": 1e9, \"output_elems\": 1000},"
    "{\"name\": \"head\", \"kind\": \"linear\", \"params\": 5000000, \"flops_fwd\": 1e9, \"output_elems\": 1000}],"
    "\"fsdpsim\": {\"wrap_block_kind\": \"Block\"}}";

static Model *synthetic_model(void)
{
    char *dir = g_dir_make_tmp("fsdpsim-XXXXXX", NULL);
    char *path = g_build_filename(dir, "synthetic.json", NULL);
    g_file_set_contents(path, synthetic, -1, NULL);
    GError *error = NULL;
    Model *m = model_load(path, NULL, &error);
    if (!m)
        fail_msg("%s", error->message);
    g_unlink(path);
    g_rmdir(dir);
    g_free(path);
    g_free(dir);
    return m;
}

static const char *unit_module(const Model *m, const PlanWrap *w, int u)
{
    return m->modules[w->units[u].module].name;
}

static void test_size_policy_children_first(void **state)
{
    Model *m = synthetic_model();
    PlanWrapPolicy policy;
    assert_true(plan_wrap_parse("size:1e8", &policy, NULL));
    PlanWrap *w = plan_wrap_build(m, &policy, 1);
    /* mlp (140M) is wrapped; the block's remainder (60M) is not; the ModuleList's remainder
     * (120M) would be, but ModuleList is excluded; the root is always a unit. */
    assert_int_equal(w->n_units, 3);
    assert_string_equal(unit_module(m, w, 0), "");
    assert_string_equal(unit_module(m, w, 1), "layers.0.mlp");
    assert_string_equal(unit_module(m, w, 2), "layers.1.mlp");
    assert_int_equal(w->units[0].numel, 125000000);
    assert_int_equal(w->units[1].numel, 140000000);
    plan_wrap_free(w);
    /* A threshold above every subtree but the root's: only the root. */
    assert_true(plan_wrap_parse("size:500M", &policy, NULL));
    w = plan_wrap_build(m, &policy, 1);
    assert_int_equal(w->n_units, 1);
    assert_int_equal(w->units[0].numel, m->params);
    plan_wrap_free(w);
    /* A small threshold wraps every linear layer. */
    assert_true(plan_wrap_parse("size:1M", &policy, NULL));
    w = plan_wrap_build(m, &policy, 1);
    assert_int_equal(w->n_units, 1 + 7);
    plan_wrap_free(w);
    model_free(m);
}

static void test_transformer_policy_and_padding(void **state)
{
    Model *m = synthetic_model();
    PlanWrapPolicy policy;
    assert_true(plan_wrap_parse("transformer", &policy, NULL));
    PlanWrap *w = plan_wrap_build(m, &policy, 7);
    assert_int_equal(w->n_units, 3);
    assert_string_equal(unit_module(m, w, 1), "layers.0");
    assert_int_equal(w->units[1].numel, 200000000);
    assert_int_equal(w->units[0].numel, 5000000);
    for (int u = 0; u < w->n_units; u++) {
        assert_int_equal(w->units[u].padded % 7, 0);
        assert_true(w->units[u].padded >= w->units[u].numel);
        assert_true(w->units[u].padded - w->units[u].numel < 7);
    }
    plan_wrap_free(w);
    model_free(m);
}

static void test_llama_default_size_policy(void **state)
{
    /* Llama-2-7B with min_num_params 1e8: each LlamaMLP (135M) becomes a unit; the attention
     * (67M) and the decoder layer's remainder do not; embed_tokens and lm_head (131M each) do;
     * and LlamaModel itself, whose remainder (all 32 attentions, 2.1B) is far above 1e8: the
     * size policy makes one huge unit here, which is why transformer wrapping is preferred. */
    Model *m = load_model("models/llama2-7b.json", NULL);
    PlanWrapPolicy policy;
    assert_true(plan_wrap_parse("size", &policy, NULL));
    assert_int_equal(policy.min_num_params, 100000000);
    PlanWrap *w = plan_wrap_build(m, &policy, 8);
    int mlps = 0, others = 0;
    for (int u = 1; u < w->n_units; u++) {
        if (g_str_has_suffix(unit_module(m, w, u), ".mlp"))
            mlps++;
        else
            others++;
    }
    assert_int_equal(mlps, 32);
    assert_int_equal(others, 3); /* model, model.embed_tokens, lm_head */
    assert_string_equal(unit_module(m, w, 1), "model");
    assert_int_equal(w->units[1].numel, 32ULL * (4ULL * 4096 * 4096 + 2 * 4096) + 4096);
    plan_wrap_free(w);
    model_free(m);
}

static void test_wrap_parse_errors(void **state)
{
    PlanWrapPolicy policy;
    GError *error = NULL;
    assert_false(plan_wrap_parse("size:-3", &policy, &error));
    assert_non_null(strstr(error->message, "--wrap"));
    g_clear_error(&error);
    assert_false(plan_wrap_parse("blocks", &policy, &error));
    g_clear_error(&error);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_policy_children_first),
        cmocka_unit_test(test_transformer_policy_and_padding),
        cmocka_unit_test(test_llama_default_size_policy),
        cmocka_unit_test(test_wrap_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
