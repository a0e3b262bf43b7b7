/* trace: opening a profiler trace, plain or gzip, and telling one from fsdprun's traces (see
 * trace.h). */
#include "trace.h"
#include "trace_deps.h"

#include "../util/cfg.h"

#include <gio/gio.h>
#include <stdio.h>
#include <string.h>

GInputStream *trace_open_stream(const char *file, GError **error)
{
    GFile *f = g_file_new_for_path(file);
    GError *e = NULL;
    GFileInputStream *raw = g_file_read(f, NULL, &e);
    g_object_unref(f);
    if (!raw) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT, "%s: cannot read the file: %s", file,
                    e->message);
        g_error_free(e);
        return NULL;
    }
    /* gzip by its magic bytes, not by the name: torch.profiler writes .json.gz, users rename */
    GBufferedInputStream *buffered =
        G_BUFFERED_INPUT_STREAM(g_buffered_input_stream_new(G_INPUT_STREAM(raw)));
    g_object_unref(raw);
    g_buffered_input_stream_fill(buffered, 2, NULL, NULL);
    gsize avail = 0;
    const guint8 *head = g_buffered_input_stream_peek_buffer(buffered, &avail);
    if (avail >= 2 && head[0] == 0x1f && head[1] == 0x8b) {
        GZlibDecompressor *z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
        GInputStream *s = g_converter_input_stream_new(G_INPUT_STREAM(buffered), G_CONVERTER(z));
        g_object_unref(z), g_object_unref(buffered);
        return s;
    }
    return G_INPUT_STREAM(buffered);
}

bool trace_file_sniff(const char *file)
{
    /* gzip: fsdprun and fsdpsim write plain JSON, so a compressed trace is the profiler's */
    guint8 head[2] = {0};
    FILE *f = fopen(file, "rb");
    size_t got = f ? fread(head, 1, 2, f) : 0;
    if (f)
        fclose(f);
    if (got == 2 && head[0] == 0x1f && head[1] == 0x8b)
        return true;
    GInputStream *s = trace_open_stream(file, NULL);
    if (!s)
        return false;
    char buf[65536];
    gsize n = 0;
    g_input_stream_read_all(s, buf, sizeof buf - 1, &n, NULL, NULL);
    g_object_unref(s);
    buf[n] = 0;
    return strstr(buf, "\"schemaVersion\"") != NULL;
}
