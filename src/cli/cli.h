/* The command line: `fsdpsim [SUBCOMMAND] [OPTIONS]`. main.c picks the subcommand; each lives in
 * its own file and returns the exit status: 0 success, 1 the run failed, 2 bad input (with one
 * message naming the file or option, the field and what is expected). */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* an integer option the user did not give */
#define UNSET G_MININT

/* subcommands: argv[0] is "fsdpsim SUBCOMMAND" for --help's usage line */
int cli_simulate(int argc, char **argv);
int cli_collective(int argc, char **argv);
int cli_scale(int argc, char **argv);
int cli_search(int argc, char **argv);

/* An output folder for --OPTION: exists and is writable, or can be created (figures.c). */
bool cli_check_dir(const char *option, const char *dir, GError **error);
int cli_compare(int argc, char **argv);
int cli_validate(int argc, char **argv);
int cli_kernels(int argc, char **argv);
int cli_trace(int argc, char **argv);
int cli_list(int argc, char **argv);

/* The file for --OPTION's argument: a path as given, or the name of a shipped file of `kind`
 * ("models", "topologies": `-t jusuf` is topologies/jusuf.json). An unknown name is an input
 * error with a did-you-mean. *path is newly allocated. */
bool cli_data_file(const char *option, const char *kind, const char *arg, char **path,
                   GError **error);

/* the list of subcommands, for --help */
const char *cli_subcommands_help(void);

/* A default data file (models/gpt.json): relative to the working directory when it is there (a
 * source checkout), else under the data directory the build was configured with. g_free it. */
char *cli_default_path(const char *rel);

/* Refuses an output path (for --OPTION) whose directory does not exist or cannot be written, before
 * any work is done, so that an error never comes after output has been printed. NULL is fine. */
bool cli_check_writable(const char *option, const char *path, GError **error);

/* Parses the options of a subcommand with GOption; on bad options prints the message and returns
 * false. Leftover arguments are refused. */
bool cli_parse(const char *params, const char *summary, const char *description,
               const GOptionEntry *entries, int argc, char **argv, GError **error);

/* "; did you mean 'x'?" when `got` is a near miss of one of `choices` (cfg_closest), else "".
 * A static buffer: use it in one message at a time. */
const char *cli_did_you_mean(const char *got, const char *const *choices);
/* --nccl-version TEXT (fsdpsim and fsdpsim collective) into *out (NCCL_VERSION_CODE); NULL
 * leaves *out as it is. Bad text: one message naming the option, exit 2. */
bool cli_nccl_version(const char *text, int *out, GError **error);
/* For GOption's "Unknown option --strategey": "; did you mean --strategy?" from the entries' long
 * names, or "" (other errors, no near miss). g_free it. */
char *cli_option_hint(const GError *error, const GOptionEntry *entries);
/* The whole message for a GOption error: a bad value as "option --nodes: expected an integer, got
 * "four"", an unknown option with its hint, then " (see COMMAND --help)"; a NULL command leaves
 * that out (a search point's options, which the search names itself). g_free it. */
char *cli_option_message(const GError *error, const GOptionEntry *entries, const char *command);
/* "NAME ARG ..." from argv[1..], each argument quoted for the shell where it needs it. */
char *cli_command_line(const char *name, int argc, char **argv);
/* `text` without a leading `prefix` (PyTorch's enum spellings: ShardingStrategy.FULL_SHARD). */
const char *cli_strip_prefix(const char *text, const char *prefix);

/* Prints "fsdpsim: MESSAGE" on stderr, frees the error and returns its exit status (1 or 2). */
int cli_report_error(GError *error);
