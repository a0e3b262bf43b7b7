/* plot: report folders (--report DIR), ready to copy into a talk: every figure with its data and
 * script, the numbers as JSON and CSV, and a README.md that shows the figures with a summary. */
#include "plot.h"
#include "../util/cfg.h"

#include <stdio.h>

#define GIB 1073741824.0

/* The image a README shows: PNG when drawn, else SVG, else a link to the PDF or the script. */
static void readme_figure(GString *md, const PlotSet *set, const char *name, const char *caption)
{
    const char *ext = set->formats & PLOT_PNG ? "png" : set->formats & PLOT_SVG ? "svg" : NULL;
    if (ext)
        g_string_append_printf(md, "### %s\n\n![%s](%s.%s)\n\n", caption, caption, name, ext);
    else
        g_string_append_printf(md, "### %s\n\n[%s.pdf](%s.pdf)\n\n", caption, name, name);
    g_string_append_printf(md, "Data: [%s.dat](%s.dat), script: [%s.gp](%s.gp).\n\n", name, name, name, name);
}

static void readme_files(GString *md, const PlotSet *set, const char *extra)
{
    g_string_append(md, "## Files\n\n");
    g_string_append(md, extra);
    g_string_append(md, "- `NAME.dat`, `NAME.gp`: each figure's numbers and its gnuplot script (style from "
                        "fsdpsim's reports/templates/style.gp). Change fonts, colours or the formats in "
                        "`NAME.gp`, then run `gnuplot NAME.gp` in this folder.\n");
    if (!set->gnuplot)
        g_string_append(md, "\ngnuplot was not installed when this report was written, so no images were "
                            "drawn: run `for f in *.gp; do gnuplot $f; done` here.\n");
}

/* trace.json streamed (report_trace_write: hundreds of MB for a long pipeline, never held) */
static bool write_trace(const char *dir, const Report *rep, GError **error)
{
    char *path = g_build_filename(dir, "trace.json", NULL);
    GError *io = NULL;
    bool ok = report_trace_save(path, rep->sched, rep->sim, rep->topo, &io);
    if (!ok) /* a failure of the output, as plot_write_text's */
        g_set_error_literal(error, FSD_ERROR, FSD_ERROR_FAILED, io->message), g_error_free(io);
    g_free(path);
    return ok;
}

bool plot_report_run(const char *dir, unsigned formats, const Report *rep, const char *command,
                     GError **error)
{
    PlotSet *set = plot_set_new("report", dir, formats, error);
    if (!set)
        return false;
    char *json = report_to_json(rep);
    cJSON *o = cJSON_Parse(json);
    char *title = plot_run_title(o);
    /* the single run as a one-point scaling table, so that its CSV has the scale's columns */
    const cJSON *strategy = cJSON_GetObjectItemCaseSensitive(o, "strategy");
    const char *strategies[1] = {cJSON_IsString(strategy) ? strategy->valuestring : "?"};
    int nodes[1] = {rep->info->layout.nodes};
    cJSON *points[1] = {o};
    PlotScale one = {strategies, 1, nodes, 1, points, NULL};
    char *csv = plot_scale_csv(&one);
    char *summary = NULL;
    size_t summary_len = 0;
    FILE *mem = open_memstream(&summary, &summary_len);
    report_print_summary(rep, mem);
    fclose(mem);

    GString *md = g_string_new(NULL);
    g_string_append_printf(md, "# %s\n\nSimulated by fsdpsim: one training step.\n\n", title);
    if (command) /* as the scaling report shows its own, so that the numbers can be made again */
        g_string_append_printf(md, "    %s\n\n", command);
    g_string_append(md, "| | |\n|---|---|\n");
    char *step = report_seconds(rep->step_time_s), *exposed = report_seconds(rep->exposed_comm_s);
    g_string_append_printf(md, "| step time | %s (exposed communication %s) |\n", step, exposed);
    g_free(step), g_free(exposed);
    int world = rep->info->layout.world;
    if (rep->tokens_per_s > 0)
        g_string_append_printf(md, "| throughput | %.0f tokens/s (%.0f per GPU) |\n", rep->tokens_per_s,
                               rep->tokens_per_s / world);
    else
        g_string_append_printf(md, "| throughput | %.1f samples/s (%.1f per GPU) |\n", rep->samples_per_s,
                               rep->samples_per_s / world);
    g_string_append_printf(md, "| compute | %.1f model TFLOP/s per GPU, MFU %.1f %% |\n", rep->tflops_per_gpu,
                           100 * rep->mfu);
    g_string_append_printf(md, "| memory per GPU | peak %.2f GiB of %.2f GiB: %s |\n\n", rep->mem_peak_bytes / GIB,
                           rep->mem_capacity_bytes / GIB, rep->oom ? "**does not fit (OOM)**" : "fits");
    for (guint i = 0; rep->errors && i < rep->errors->len; i++)
        g_string_append_printf(md, "> **error**: %s\n\n", (const char *)g_ptr_array_index(rep->errors, i));
    for (guint i = 0; rep->warnings && i < rep->warnings->len; i++)
        g_string_append_printf(md, "> warning: %s\n\n", (const char *)g_ptr_array_index(rep->warnings, i));

    bool ok = plot_run_figures(set, rep, error);
    if (ok) {
        readme_figure(md, set, "timeline", "Timeline of every stream");
        readme_figure(md, set, "memory", "Memory in use over the step");
        readme_figure(md, set, "memory_breakdown", "Memory at the peak");
        g_string_append_printf(md, "## Summary, as fsdpsim prints it\n\n```\n%s```\n\n", summary);
        readme_files(md, set, "- `result.json`: every number (`fsdpsim --json`); `result.csv`: the main ones, "
                              "with the columns of `fsdpsim scale`'s CSV.\n"
                              "- `summary.txt`: the summary above. `trace.json`: the timeline as a Chrome "
                              "trace (open it in ui.perfetto.dev).\n");
        ok = plot_write_text(dir, "result.json", json, error) && plot_write_text(dir, "result.csv", csv, error) &&
             plot_write_text(dir, "summary.txt", summary, error) && write_trace(dir, rep, error) &&
             plot_write_text(dir, "README.md", md->str, error);
    }
    g_string_free(md, TRUE);
    free(summary);
    g_free(csv);
    g_free(title);
    cJSON_Delete(o);
    cJSON_free(json);
    plot_set_free(set);
    return ok;
}

bool plot_report_scale(const char *dir, unsigned formats, const PlotScale *sc, GError **error)
{
    PlotSet *set = plot_set_new("report", dir, formats, error);
    if (!set)
        return false;
    bool ok = plot_scale_figures(set, sc, error);
    char *csv = plot_scale_csv(sc);
    cJSON *all = cJSON_CreateArray();
    for (int i = 0; i < sc->n_strategies * sc->n_nodes; i++)
        cJSON_AddItemReferenceToArray(all, sc->points[i]);
    char *json = cfg_json_print(all, true);
    cJSON_Delete(all);

    const cJSON *p0 = sc->points[0];
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(p0, "model_name");
    const cJSON *topo = cJSON_GetObjectItemCaseSensitive(p0, "topology");
    GString *md = g_string_new(NULL);
    const char *mname = cJSON_IsString(model) ? model->valuestring : "?";
    const char *tname = cJSON_IsString(topo) ? topo->valuestring : "?";
    if (sc->n_nodes > 1)
        g_string_append_printf(md, "# Scaling %s on %s\n\n", mname, tname);
    else
        g_string_append_printf(md, "# %s on %d %s nodes: strategies compared\n\n", mname, sc->nodes[0], tname);
    if (sc->command)
        g_string_append_printf(md, "Simulated by fsdpsim:\n\n    %s\n\n", sc->command);
    /* the table: one row per point, the numbers a slide quotes */
    g_string_append(md, "| strategy | nodes | GPUs | step time (ms) | throughput per GPU | efficiency | MFU | "
                        "memory peak (GiB) | fits |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    char **rows = g_strsplit(csv, "\n", -1);
    for (char **r = rows + 1; *r && **r; r++) {
        /* fields after the quoted model name; topology and strategy names have no commas */
        char *after = strrchr(*r, '"');
        char **f = g_strsplit(after ? after + 2 : *r, ",", -1);
        if (g_strv_length(f) >= 16)
            g_string_append_printf(md, "| %s | %s | %s | %.2f | %.4g %s | %.0f %% | %.1f %% | %.2f | %s |\n", f[1],
                                   f[2], f[3], g_ascii_strtod(f[4], NULL) * 1e3, g_ascii_strtod(f[5], NULL), f[6],
                                   100 * g_ascii_strtod(f[7], NULL), 100 * g_ascii_strtod(f[9], NULL),
                                   g_ascii_strtod(f[14], NULL) / GIB, !strcmp(f[16], "true") ? "**OOM**" : "yes");
        g_strfreev(f);
    }
    g_strfreev(rows);
    if (sc->n_nodes > 1)
        g_string_append(md, "\nEfficiency is throughput per GPU relative to the smallest node count at which "
                            "the strategy fits in memory.");
    g_string_append(md, "\n\n");
    if (ok) {
        if (sc->n_nodes > 1) {
            readme_figure(md, set, "throughput", "Throughput per GPU");
            readme_figure(md, set, "efficiency", "Scaling efficiency");
        }
        readme_figure(md, set, "breakdown", "Where the step time goes");
        readme_figure(md, set, "memory", "Memory per GPU at the peak");
        readme_files(md, set, "- `results.csv`: one row per strategy and node count. `results.json`: the "
                              "`fsdpsim --json` object of every point.\n");
        ok = plot_write_text(dir, "results.csv", csv, error) && plot_write_text(dir, "results.json", json, error) &&
             plot_write_text(dir, "README.md", md->str, error);
    }
    g_string_free(md, TRUE);
    g_free(csv);
    cJSON_free(json);
    plot_set_free(set);
    return ok;
}
