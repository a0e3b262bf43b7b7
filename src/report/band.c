/* band: the error band a prediction carries, from the tool's measured error on the development
 * set (reports/error-band.json, written by tests/validation/devset.py --write-band; its format is
 * documented there). The band is not symmetric around the prediction: where the model is biased
 * (too fast on a kind of run), the band says so, e.g. "1.21 s, likely 1.37-1.77 s".
 *
 * Groups are matched most specific first: the first whose family is the run's ("fsdp", "ddp",
 * "3d") or "*", and whose gpu_match is empty or names a substring of the topology's GPU. */
#include "report.h"

#include "../util/cfg.h"

#include <string.h>

const char *report_band_family(const StratOptions *opt, const StratLayout *layout)
{
    if (layout->tp > 1 || layout->pp > 1)
        return "3d";
    return opt->kind == STRAT_DDP ? "ddp" : "fsdp";
}

static bool gpu_matches(const cJSON *list, const char *gpu)
{
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)
        return true;
    for (const cJSON *it = list->child; it; it = it->next)
        if (cJSON_IsString(it) && strstr(gpu, it->valuestring))
            return true;
    return false;
}

bool report_band_load(const char *file, const char *family, const char *gpu, ReportBand *band,
                      GError **error)
{
    memset(band, 0, sizeof *band);
    cJSON *root = cfg_parse_file(file, error);
    if (!root)
        return false;
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(root, "groups");
    bool ok = cJSON_IsString(format) && strcmp(format->valuestring, "fsdpsim-error-band") == 0 &&
              cJSON_IsArray(groups);
    if (!ok)
        cfg_set_error(error, file, "", "format",
                      "expected \"fsdpsim-error-band\" with a \"groups\" array");
    for (const cJSON *g = ok ? groups->child : NULL; g; g = g->next) {
        const cJSON *fam = cJSON_GetObjectItemCaseSensitive(g, "family");
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(g, "step_time_factor_low");
        const cJSON *hi = cJSON_GetObjectItemCaseSensitive(g, "step_time_factor_high");
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(g, "rows");
        const cJSON *mae = cJSON_GetObjectItemCaseSensitive(g, "mae");
        if (!cJSON_IsString(fam) || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) ||
            !cJSON_IsNumber(rows) || lo->valuedouble <= 0 || hi->valuedouble < lo->valuedouble) {
            cfg_set_error(error, file, "groups", "step_time_factor_low",
                          "expected family, rows and 0 < step_time_factor_low <= "
                          "step_time_factor_high in every group");
            ok = false;
            break;
        }
        if (strcmp(fam->valuestring, family) != 0 && strcmp(fam->valuestring, "*") != 0)
            continue;
        if (!gpu_matches(cJSON_GetObjectItemCaseSensitive(g, "gpu_match"), gpu))
            continue;
        band->present = true;
        band->factor_low = lo->valuedouble;
        band->factor_high = hi->valuedouble;
        band->rows = (int)rows->valuedouble;
        const cJSON *sources = cJSON_GetObjectItemCaseSensitive(g, "sources");
        band->sources = cJSON_IsNumber(sources) ? (int)sources->valuedouble : 0;
        band->mae = cJSON_IsNumber(mae) ? mae->valuedouble : 0;
        g_strlcpy(band->family, fam->valuestring, sizeof band->family);
        break;
    }
    cJSON_Delete(root);
    return ok;
}
