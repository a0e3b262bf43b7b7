/* The files of in-process simulations (simulate.h), loaded once per cache: a search of 10,000
 * points reads the model, the topology and the error band once each. Lookups hash the file name
 * (and the model's overrides): microseconds, against milliseconds to read and build a model. */
#include "cli.h"
#include "simulate_cache.h"

struct CliSimCache {
    GHashTable *topologies; /* path -> HwTopology */
    GHashTable *models;     /* path and overrides -> Model */
    GHashTable *bands;      /* family and GPU -> ReportBand */
};

CliSimCache *cli_sim_cache_new(void)
{
    CliSimCache *c = g_new0(CliSimCache, 1);
    c->topologies =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)hw_topology_free);
    c->models = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)model_free);
    c->bands = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return c;
}

void cli_sim_cache_free(CliSimCache *c)
{
    if (!c)
        return;
    g_hash_table_destroy(c->topologies), g_hash_table_destroy(c->models);
    g_hash_table_destroy(c->bands);
    g_free(c);
}

HwTopology *cli_sim_cache_topology(CliSimCache *c, const char *file, GError **error)
{
    HwTopology *t = g_hash_table_lookup(c->topologies, file);
    if (!t && (t = hw_topology_load(file, error)))
        g_hash_table_insert(c->topologies, g_strdup(file), t);
    return t;
}

Model *cli_sim_cache_model(CliSimCache *c, const char *file, const ModelOverrides *ov,
                           GError **error)
{
    char *key =
        g_strdup_printf("%s|%d|%d|%s|%s|%d|%d|%d|%d", file, ov->seq_len, ov->micro_batch,
                        ov->param_dtype ? ov->param_dtype : "", ov->optimizer ? ov->optimizer : "",
                        ov->flash_attention, (int)ov->attention_kernel, ov->compile,
                        (int)ov->loss_impl);
    Model *m = g_hash_table_lookup(c->models, key);
    if (!m && (m = model_load(file, ov, error)))
        g_hash_table_insert(c->models, key, m), key = NULL;
    g_free(key);
    if (!m)
        return NULL;
    /* a run may change its model in place (per-module fields, the totals): it gets a copy of
     * the modules and the scalars, the strings stay the cached model's. O(modules) per point:
     * tens of microseconds, against milliseconds to simulate. */
    return model_modules_copy(m);
}

void cli_sim_cache_model_release(Model *work)
{
    model_modules_copy_free(work);
}

/* The error band, read once per (family, GPU); a missing file is no band. The one place both a
 * search's points (c set) and `fsdpsim` (c NULL: read, kept for this call only) read it. */
bool cli_sim_cache_band(CliSimCache *c, const char *family, const char *gpu, ReportBand *band,
                        GError **error)
{
    if (!c) {
        CliSimCache *once = cli_sim_cache_new();
        bool ok = cli_sim_cache_band(once, family, gpu, band, error);
        cli_sim_cache_free(once);
        return ok;
    }
    char *key = g_strdup_printf("%s|%s", family, gpu);
    ReportBand *b = g_hash_table_lookup(c->bands, key);
    if (!b) {
        b = g_new0(ReportBand, 1);
        char *band_file = cli_default_path("reports/error-band.json");
        bool ok = !g_file_test(band_file, G_FILE_TEST_EXISTS) ||
                  report_band_load(band_file, family, gpu, b, error);
        g_free(band_file);
        if (!ok) {
            g_free(b), g_free(key);
            return false;
        }
        g_hash_table_insert(c->bands, key, b), key = NULL;
    }
    g_free(key);
    *band = *b;
    return true;
}
