/* The files of in-process simulations (simulate_cache.c), for simulate.c: loaded on first use,
 * owned by the cache. */
#pragma once

#include "simulate.h"
#include "../hw/hw.h"
#include "../model/model.h"
#include "../report/report.h"

HwTopology *cli_sim_cache_topology(CliSimCache *cache, const char *file, GError **error);
/* Keyed by the file and every override. Returns a working copy that the run may change (its
 * modules and scalars; not its strings): release it with cli_sim_cache_model_release. */
Model *cli_sim_cache_model(CliSimCache *cache, const char *file, const ModelOverrides *ov,
                           GError **error);
void cli_sim_cache_model_release(Model *work);
/* the error band of a family on a GPU (reports/error-band.json, read once per pair; cache NULL:
 * read now) */
bool cli_sim_cache_band(CliSimCache *cache, const char *family, const char *gpu, ReportBand *band,
                        GError **error);
