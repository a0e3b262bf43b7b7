/* search: a Ray Tune campaign as a plan (the workshop's ASHA example, issue 14). Given the
 * campaign's settings and the simulated time of one training step, predicts how many training
 * iterations ASHA runs, the campaign's wall time, the nodes it holds and what JSC charges.
 *
 * The model of Ray Tune's ASHAScheduler (ray/tune/schedulers/async_hyperband.py, _Bracket):
 * rungs at grace_period x reduction_factor^k for k = 0 .. int(log(max_t / grace_period) /
 * log(reduction_factor)); at each rung a trial goes on only when it is in the best
 * 1/reduction_factor of those recorded there, so of n trials about n / rf^k pass rung k; the
 * trials that pass every rung run to max_t. Which trials stop is decided by their metric, unknown
 * here: trial i passes rung k when i is a multiple of rf^(k+1), which spreads the long trials
 * evenly over the launch order. Trials start in launch order on the first free slot (Ray's FIFO
 * placement), `concurrent` at a time. The nodes are held for the whole campaign, and JSC charges
 * them whole. Cost: O(samples x rungs + samples x log concurrent). */
#include "search.h"
#include "../util/cfg.h"

#include <math.h>
#include <string.h>

void search_tune_default(SearchTune *t)
{
    /* ASHAScheduler's defaults: max_t=100, grace_period=1, reduction_factor=4 */
    *t = (SearchTune){.samples = 10,
                      .max_t = 100,
                      .grace = 1,
                      .reduction = 4,
                      .concurrent = 1,
                      .gpus_per_trial = 1,
                      .steps_per_iter = 1};
}

bool search_tune_parse(const char *text, SearchTune *t, GError **error)
{
    char **parts = g_strsplit(text, ",", -1);
    bool ok = true;
    for (char **p = parts; *p && ok; p++) {
        char *eq = strchr(*p, '=');
        char *end = NULL;
        double v = eq ? g_ascii_strtod(eq + 1, &end) : NAN;
        ok = eq && end != eq + 1 && !*end && v > 0 && isfinite(v);
        if (!ok)
            break;
        *eq = '\0';
        const char *k = g_strstrip(*p);
        if (!strcmp(k, "samples"))
            t->samples = (int)v;
        else if (!strcmp(k, "max_t"))
            t->max_t = v;
        else if (!strcmp(k, "grace"))
            t->grace = v;
        else if (!strcmp(k, "reduction"))
            t->reduction = v;
        else if (!strcmp(k, "concurrent"))
            t->concurrent = (int)v;
        else if (!strcmp(k, "gpus_per_trial"))
            t->gpus_per_trial = (int)v;
        else if (!strcmp(k, "step_s"))
            t->step_s = v;
        else if (!strcmp(k, "steps_per_iter"))
            t->steps_per_iter = v;
        else
            ok = false;
    }
    g_strfreev(parts);
    if (ok && (t->grace > t->max_t || t->reduction < 2 || t->samples < 1 || t->concurrent < 1 ||
               t->gpus_per_trial < 1))
        ok = false;
    if (!ok)
        cfg_input_error(error,
                        "option --ray-tune: expected KEY=VALUE,... with samples, max_t, "
                        "grace (<= max_t), reduction (>= 2), concurrent, gpus_per_trial, "
                        "steps_per_iter and optionally step_s, all positive, got \"%s\"",
                        text);
    return ok;
}

void search_tune_plan(const SearchTune *t, int gpus_per_node, int cores_per_node,
                      SearchTunePlan *out)
{
    *out = (SearchTunePlan){0};
    int rungs = (int)(log(t->max_t / t->grace) / log(t->reduction) + 1e-9) + 1;
    rungs = MIN(rungs, SEARCH_TUNE_MAX_RUNGS);
    out->rungs = rungs;
    double *iters = g_new0(double, t->samples);
    for (int i = 0; i < t->samples; i++) {
        /* the rungs a trial passes: i a multiple of rf^1 .. rf^p */
        int passed = 0;
        double m = t->reduction;
        while (passed < rungs && (m > 1e15 ? i == 0 : i % (gint64)m == 0))
            passed++, m *= t->reduction;
        bool finishes = passed == rungs;
        iters[i] = finishes ? t->max_t : t->grace * pow(t->reduction, passed);
        for (int r = 0; r <= MIN(passed, rungs - 1); r++)
            out->rung_trials[r]++;
        out->trial_iters += iters[i];
        out->finished += finishes;
    }
    for (int r = 0; r < rungs; r++)
        out->rung_iters[r] = t->grace * pow(t->reduction, r);
    /* FIFO list scheduling on `concurrent` slots: each trial to the slot that frees first */
    int slots = MIN(t->concurrent, t->samples);
    double *free_at = g_new0(double, slots);
    double iter_s = t->step_s * t->steps_per_iter;
    for (int i = 0; i < t->samples; i++) {
        int best = 0;
        for (int s = 1; s < slots; s++) /* O(slots): campaigns run tens of trials at once */
            if (free_at[s] < free_at[best])
                best = s;
        free_at[best] += iters[i] * iter_s;
        out->wall_s = MAX(out->wall_s, free_at[best]);
    }
    out->concurrency = slots;
    if (t->gpus_per_trial <= gpus_per_node) {
        out->trials_per_node = gpus_per_node / t->gpus_per_trial;
        out->nodes = (slots + out->trials_per_node - 1) / out->trials_per_node;
    } else {
        out->trials_per_node = 0; /* a trial spans nodes */
        out->nodes = slots * ((t->gpus_per_trial + gpus_per_node - 1) / gpus_per_node);
    }
    out->gpu_hours_used = out->trial_iters * iter_s * t->gpus_per_trial / 3600;
    out->node_hours = out->nodes * out->wall_s / 3600;
    out->gpu_hours_charged = out->node_hours * gpus_per_node;
    out->core_hours = out->node_hours * cores_per_node;
    g_free(free_at);
    g_free(iters);
}

void search_tune_print(const SearchTune *t, const SearchTunePlan *p, int gpus_per_node, FILE *out)
{
    fprintf(out,
            "Ray Tune campaign: %d trials, ASHA (grace %g, max_t %g, reduction %g), %d at a "
            "time, %d GPU%s each; one iteration %g step%s of %.3f s\n",
            t->samples, t->grace, t->max_t, t->reduction, p->concurrency, t->gpus_per_trial,
            t->gpus_per_trial > 1 ? "s" : "", t->steps_per_iter, t->steps_per_iter == 1 ? "" : "s",
            t->step_s);
    fprintf(out, "rungs (iterations: trials reaching them):");
    for (int r = 0; r < p->rungs; r++)
        fprintf(out, "%s %g: %d", r ? "," : "", p->rung_iters[r], p->rung_trials[r]);
    fprintf(out, "; %d trial%s run to max_t\n", p->finished, p->finished == 1 ? "" : "s");
    fprintf(out, "iterations in all: %.0f (%.1f%% of running every trial to max_t)\n",
            p->trial_iters, 100 * p->trial_iters / (t->samples * t->max_t));
    if (p->trials_per_node)
        fprintf(out, "packing: %d trial%s per node of %d GPUs, %d node%s\n", p->trials_per_node,
                p->trials_per_node == 1 ? "" : "s", gpus_per_node, p->nodes,
                p->nodes == 1 ? "" : "s");
    else
        fprintf(out, "packing: each trial spans %d nodes, %d nodes\n", p->nodes / p->concurrency,
                p->nodes);
    fprintf(out,
            "wall time: %.2f h; charged (whole nodes x wall time): %.1f node-hours, %.1f "
            "GPU-hours, %.0f core-hours; GPUs busy %.0f%% of the charge\n",
            p->wall_s / 3600, p->node_hours, p->gpu_hours_charged, p->core_hours,
            p->gpu_hours_charged > 0 ? 100 * p->gpu_hours_used / p->gpu_hours_charged : 0);
}
