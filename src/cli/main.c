/* fsdpsim: picks the subcommand. `fsdpsim [OPTIONS]` simulates one job (simulate.c); the other
 * subcommands are named by the first argument, as git and meson do. */
#include "cli.h"
#include "../util/cfg.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
} Subcommand;

static const Subcommand subcommands[] = {
    {"collective", cli_collective, "an nccl-tests sweep of one collective, simulated"},
    {"scale", cli_scale,
     "scaling study over node counts and strategies: table, CSV, figures, report"},
    {"search", cli_search,
     "the best layout and knobs by simulation: exhaustive, random or ASHA; JSON Lines, --shard"},
    {"validate", cli_validate,
     "calibrate, simulate and run a job for real on an emulated cluster; print the error"},
    {"kernels", cli_kernels,
     "a kernel microbenchmark table (GEMM, attention) beside the kernel model; --fit refits it"},
    {"compare", cli_compare,
     "real run (fsdprun or profiler trace) beside the simulated one: step time, error per op kind, "
     "figures"},
    {"trace", cli_trace,
     "PyTorch profiler traces: step breakdown, NCCL table, stragglers, calibrate, what-if"},
    {"list", cli_list, "the shipped models or topologies, one line each: fsdpsim list models"},
    {NULL, NULL, NULL},
};

const char *cli_subcommands_help(void)
{
    static char text[2048];
    GString *s = g_string_new("Subcommands (fsdpsim SUBCOMMAND --help for their options):\n");
    for (const Subcommand *c = subcommands; c->name; c++)
        g_string_append_printf(s, "  %-12s %s\n", c->name, c->summary);
    g_string_append(s, "\nExit status: 0 success, 1 failure, 2 bad input.\n"
                       "Defaults in brackets. Report bugs with the command line and files used.");
    g_strlcpy(text, s->str, sizeof text);
    g_string_free(s, TRUE);
    return text;
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "C"); /* '.' as decimal point in every output, whatever the user's locale */
    cfg_oom_install("fsdpsim");
    if (argc > 1 && argv[1][0] != '-') {
        for (const Subcommand *c = subcommands; c->name; c++) {
            if (strcmp(argv[1], c->name) != 0)
                continue;
            /* "fsdpsim collective" as argv[0], so that --help shows the whole command */
            char *prog = g_strdup_printf("fsdpsim %s", c->name);
            argv[1] = prog;
            g_set_prgname(prog);
            int status = c->main(argc - 1, argv + 1);
            g_free(prog);
            return status;
        }
        if (strcmp(argv[1], "compare-traces") == 0) { /* merged into compare (issue 4) */
            fprintf(stderr, "fsdpsim: compare-traces is now compare: fsdpsim compare --real REAL "
                            "--sim SIM --plot DIR\n");
            return 2;
        }
        GString *names = g_string_new(NULL);
        for (const Subcommand *c = subcommands; c->name; c++)
            g_string_append_printf(names, "%s%s", names->len ? ", " : "", c->name);
        fprintf(stderr,
                "fsdpsim: unknown subcommand '%s': expected %s%sor options (see fsdpsim --help)\n",
                argv[1], names->str, names->len ? ", " : "");
        g_string_free(names, TRUE);
        return 2;
    }
    g_set_prgname("fsdpsim");
    return cli_simulate(argc, argv);
}
