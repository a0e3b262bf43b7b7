/* fsdpsim trace summary FILES... [--json]: PyTorch profiler (Kineto) traces of a real job, one
 * file per rank (or directories of them, .json or .json.gz): per rank and step the breakdown
 * Holistic Trace Analysis users know, kernel classes, the NCCL table in nccl-tests' columns with
 * the collectives matched across ranks, and the stragglers. See src/trace/trace.h. */
#include "cli.h"
#include "../trace/trace.h"
#include "../util/cfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int trace_summary(int argc, char **argv)
{
    char **files = NULL;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json,
         "Print one JSON object (ranks[].steps[], collectives[], stragglers[]) instead of tables",
         NULL},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILES..."},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    TraceSet *set = NULL;
    int status = 0;
    if (!cli_parse("FILES... - a PyTorch profiler trace per rank: steps, NCCL table, stragglers",
                   "FILES: trace files (.json or .json.gz, one per rank, the rank from "
                   "distributedInfo) or directories of them.\nStep time: ProfilerStep#N's span. "
                   "Collective time: end - latest start over the ranks given.",
                   "Example:\n  fsdpsim trace summary traces/ --json", entries, argc, argv,
                   &error) ||
        (!files && !cfg_input_error(&error, "expected one or more profiler traces (files or "
                                            "directories), got none (see fsdpsim trace summary "
                                            "--help)")) ||
        !(set = trace_set_read((const char *const *)files, (int)g_strv_length(files), &error))) {
        status = cli_report_error(error);
        goto out;
    }
    if (json) {
        char *text = trace_summary_json(set);
        printf("%s\n", text);
        cJSON_free(text);
    } else {
        trace_print_summary(set, stdout);
    }
out:
    trace_set_free(set);
    g_strfreev(files);
    return status;
}

static int trace_calibrate_main(int argc, char **argv)
{
    char **files = NULL;
    char *topology = NULL, *output = NULL;
    GOptionEntry entries[] = {
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &topology,
         "The topology to calibrate (its GPU should be the trace's)", "FILE"},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Write the calibrated topology here",
         "FILE"},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILES..."},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    TraceSet *set = NULL;
    char *what = NULL;
    int status = 0;
    if (!cli_parse("FILES... - a topology calibrated from profiler traces",
                   "Writes the topology with the launch call (median cudaLaunchKernel) and the "
                   "kernel model's GEMM figures\nfitted to the GEMM shapes the trace records "
                   "(record_shapes=True), each sourced \"measured from trace\";\nprints the NCCL "
                   "busbw per size against the collective model.",
                   "Example:\n  fsdpsim trace calibrate traces/ -t topologies/jusuf.json -o "
                   "jusuf-measured.json",
                   entries, argc, argv, &error) ||
        (!topology && !cfg_input_error(&error, "option --topology: expected a topology file, got "
                                               "nothing (--topology and --output are required)")) ||
        (!output && !cfg_input_error(&error, "option --output: expected a file to write, got "
                                             "nothing (--topology and --output are required)")) ||
        !cli_check_writable("output", output, &error) ||
        (!files && !cfg_input_error(&error, "expected one or more profiler traces (files or "
                                            "directories), got none")) ||
        !(set = trace_set_read((const char *const *)files, (int)g_strv_length(files), &error))) {
        status = cli_report_error(error);
        goto out;
    }
    what = g_strjoinv(", ", files);
    if (!trace_calibrate(set, what, topology, output, stdout, &error))
        status = cli_report_error(error);
out:
    trace_set_free(set);
    g_strfreev(files);
    g_free(topology), g_free(output), g_free(what);
    return status;
}

static int trace_whatif_main(int argc, char **argv)
{
    char **files = NULL;
    char *topology = NULL, *ranks_text = NULL, *emit = NULL;
    GOptionEntry entries[] = {
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &topology,
         "The machine to re-cost the collectives on", "FILE"},
        {"emit-schedule", 0, 0, G_OPTION_ARG_FILENAME, &emit,
         "Write the step as fsdpsim's schedule at the first --ranks size (fsdpsim --schedule FILE "
         "runs it)",
         "FILE"},
        {"ranks", 'n', 0, G_OPTION_ARG_STRING, &ranks_text,
         "Job sizes to re-cost the step at, comma-separated (16,64)", "LIST"},
        {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILES..."},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GError *error = NULL;
    TraceSet *set = NULL;
    GArray *ranks = g_array_new(FALSE, FALSE, sizeof(int));
    int status = 0;
    bool ok = cli_parse("FILES... - a traced step replayed, and re-costed at other job sizes",
                        "Infers the layout from the collectives, replays the step from its "
                        "dependencies (error against the trace),\nthen re-costs the collectives "
                        "over the world group with the NCCL model at each size; the rest is "
                        "kept as measured.",
                        "Example:\n  fsdpsim trace whatif traces/ -t topologies/abci-v100.json "
                        "--ranks 16,64",
                        entries, argc, argv, &error) &&
              (topology || cfg_input_error(&error, "option --topology: expected a topology "
                                                   "file, got nothing (--topology and --ranks "
                                                   "are required)")) &&
              (ranks_text || cfg_input_error(&error, "option --ranks: expected job sizes such as "
                                                     "16,64, got nothing"));
    if (ok) {
        char **parts = g_strsplit(ranks_text, ",", -1);
        for (int i = 0; ok && parts[i]; i++) {
            char *end = NULL;
            long v = strtol(parts[i], &end, 10);
            if (end == parts[i] || *end || v < 1 || v > 1000000)
                ok = cfg_input_error(&error,
                                     "option --ranks: expected job sizes in [1, 1000000], "
                                     "comma-separated, got '%s'",
                                     parts[i]);
            int n = (int)v;
            g_array_append_val(ranks, n);
        }
        g_strfreev(parts);
    }
    ok = ok &&
         (files || cfg_input_error(&error, "expected one or more profiler traces (files or "
                                           "directories), got none")) &&
         (set = trace_set_read((const char *const *)files, (int)g_strv_length(files), &error)) &&
         trace_whatif(set, topology, (const int *)ranks->data, (int)ranks->len, emit, stdout,
                      &error);
    if (!ok)
        status = cli_report_error(error);
    trace_set_free(set);
    g_strfreev(files);
    g_array_free(ranks, TRUE);
    g_free(topology), g_free(ranks_text), g_free(emit);
    return status;
}

int cli_trace(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*main)(int, char **);
    } actions[] = {{"summary", trace_summary},
                   {"calibrate", trace_calibrate_main},
                   {"whatif", trace_whatif_main}};
    const char *what = argc > 1 ? argv[1] : "";
    for (size_t i = 0; i < G_N_ELEMENTS(actions); i++)
        if (!strcmp(what, actions[i].name)) {
            char *prog = g_strdup_printf("%s %s", argv[0], actions[i].name);
            argv[1] = prog;
            int status = actions[i].main(argc - 1, argv + 1);
            g_free(prog);
            return status;
        }
    if (!strcmp(what, "--help") || !strcmp(what, "-h")) {
        printf(
            "Usage:\n  fsdpsim trace summary FILES... [--json]\n"
            "  fsdpsim trace calibrate FILES... --topology T --output T2\n"
            "  fsdpsim trace whatif FILES... --topology T --ranks 16,64\n\n"
            "PyTorch profiler (Kineto) traces of a real job: per rank and step the breakdown\n"
            "(compute, exposed communication, waiting, memcpy, idle), kernel classes, the NCCL\n"
            "table in nccl-tests' columns, stragglers; a topology calibrated from the trace;\n"
            "the step replayed and re-costed at other job sizes. fsdpsim trace ACTION --help\n"
            "gives each action's options.\n");
        return 0;
    }
    fprintf(stderr,
            "fsdpsim: trace: unknown action '%s': expected summary, calibrate or whatif (see "
            "fsdpsim trace "
            "--help)\n",
            what);
    return 2;
}
