/* Shared by the libFuzzer harnesses (tests/fuzz, meson -Dfuzz=true, run by tools/fuzz): the
 * parsers read files, so each input is written to one file per process first. A crash, an
 * assertion, a sanitizer report or a leak is a finding; an input error (exit 2 in fsdpsim) is
 * the expected answer to bad input. */
#ifndef FSD_FUZZ_H
#define FSD_FUZZ_H

#include <glib.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input in a file (in /dev/shm when there is one: thousands of writes a second), its path
 * kept for the process. */
static inline const char *fuzz_file(const char *what, const uint8_t *data, size_t size)
{
    static char *path[4];
    static const char *names[4];
    int slot = 0;
    while (slot < 3 && names[slot] && names[slot] != what)
        slot++;
    if (!path[slot]) {
        const char *dir =
            g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : g_get_tmp_dir();
        path[slot] = g_strdup_printf("%s/fsdpsim-fuzz-%d-%s", dir, (int)getpid(), what);
        names[slot] = what;
    }
    FILE *f = fopen(path[slot], "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return path[slot];
}

/* The input as a NUL-terminated string (g_free it). */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = g_malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

/* Messages of GLib's g_warning / g_critical (a GError set twice, a NULL passed) are findings too.
 */
static inline void fuzz_fatal_warnings(void)
{
    static gboolean done;
    if (!done) {
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
        done = TRUE;
    }
}

#endif
