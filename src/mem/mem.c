/* mem: see mem.h. O(1) per alloc/free (hash lookup); the timeline grows by one sample per
 * change, which is what the memory-over-time plot needs. */
#include "mem.h"

#include "../util/cfg.h"

typedef struct {
    int64_t bytes;
    int category;
} Slot;

void mem_tracker_init(MemTracker *t)
{
    *t = (MemTracker){0};
    t->timeline = g_array_new(FALSE, FALSE, sizeof(MemSample));
    t->live = g_hash_table_new(g_direct_hash, g_direct_equal);
    t->slots = g_array_new(FALSE, FALSE, sizeof(Slot));
}

void mem_tracker_clear(MemTracker *t)
{
    if (t->timeline)
        g_array_free(t->timeline, TRUE);
    if (t->live)
        g_hash_table_destroy(t->live);
    if (t->slots)
        g_array_free(t->slots, TRUE);
    *t = (MemTracker){0};
}

static void record(MemTracker *t, int64_t time_ns)
{
    MemSample s = {time_ns, t->total};
    g_array_append_val(t->timeline, s);
    if (t->total > t->peak) {
        t->peak = t->total;
        t->peak_time_ns = time_ns;
        for (int i = 0; i < IR_MEM_CATEGORY_COUNT; i++)
            t->at_peak[i] = t->current[i];
    }
}

bool mem_tracker_alloc(MemTracker *t, int64_t time_ns, uint32_t buffer, const char *buffer_name,
                       IrMemCategory category, uint64_t bytes, GError **error)
{
    gpointer key = GUINT_TO_POINTER(buffer + 1);
    if (g_hash_table_contains(t->live, key)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "schedule: buffer \"%s\" is allocated while it is still live", buffer_name);
        return false;
    }
    /* Checked: a schedule file may hold many buffers of up to 10^18 bytes each, and a signed
     * overflow of the sums would be undefined. */
    int64_t current, total;
    if (bytes > (uint64_t)INT64_MAX ||
        __builtin_add_overflow(t->current[category], (int64_t)bytes, &current) ||
        __builtin_add_overflow(t->total, (int64_t)bytes, &total)) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "schedule: buffer \"%s\" of %" G_GUINT64_FORMAT " bytes takes the memory in "
                    "use past 2^63 bytes; expected buffers that fit a GPU",
                    buffer_name, bytes);
        return false;
    }
    Slot slot = {(int64_t)bytes, category};
    g_array_append_val(t->slots, slot);
    g_hash_table_insert(t->live, key, GUINT_TO_POINTER(t->slots->len));
    t->current[category] = current;
    t->total = total;
    record(t, time_ns);
    return true;
}

bool mem_tracker_free(MemTracker *t, int64_t time_ns, uint32_t buffer, const char *buffer_name,
                      GError **error)
{
    gpointer key = GUINT_TO_POINTER(buffer + 1);
    gpointer found = g_hash_table_lookup(t->live, key);
    if (!found) {
        g_set_error(error, FSD_ERROR, FSD_ERROR_INPUT,
                    "schedule: buffer \"%s\" is freed but is not allocated", buffer_name);
        return false;
    }
    Slot *slot = &g_array_index(t->slots, Slot, GPOINTER_TO_UINT(found) - 1);
    t->current[slot->category] -= slot->bytes;
    t->total -= slot->bytes;
    g_hash_table_remove(t->live, key);
    record(t, time_ns);
    return true;
}

typedef struct {
    int64_t id, bytes;
    int64_t category;
} LiveEntry;

static int cmp_live(const void *x, const void *y)
{
    const LiveEntry *a = x, *b = y;
    return (a->id > b->id) - (a->id < b->id);
}

void mem_tracker_snapshot(const MemTracker *t, uint32_t shift_from, int64_t id_offset,
                          GByteArray *out)
{
    g_byte_array_append(out, (const guint8 *)&t->total, sizeof t->total);
    g_byte_array_append(out, (const guint8 *)t->current, sizeof t->current);
    g_byte_array_append(out, (const guint8 *)&t->peak, sizeof t->peak);
    guint n = g_hash_table_size(t->live), k = 0;
    LiveEntry *live = g_new(LiveEntry, MAX(1, n));
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, t->live);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        uint32_t id = GPOINTER_TO_UINT(key) - 1;
        const Slot *slot = &g_array_index(t->slots, Slot, GPOINTER_TO_UINT(value) - 1);
        /* a buffer that moves along (id >= shift_from) apart from one that does not: moved back
         * by id_offset it can take the number of a buffer allocated before the region that is
         * still live (a warm-up's activation a steady backward frees), and the two states
         * compared equal where the first's pending free was of that fixed buffer and the
         * second's of a moving one (a pipeline whose host waits for its GPU, so that the warm-up
         * buffer's free is still in flight at the checkpoint: a skip freed a buffer never
         * allocated) */
        int64_t norm = id >= shift_from ? ((int64_t)1 << 40) + (int64_t)id - id_offset : (int64_t)id;
        live[k++] = (LiveEntry){norm, slot->bytes, slot->category};
    }
    qsort(live, n, sizeof *live, cmp_live);
    g_byte_array_append(out, (const guint8 *)&n, sizeof n);
    g_byte_array_append(out, (const guint8 *)live, (guint)(sizeof *live * n));
    g_free(live);
}

void mem_tracker_skip(MemTracker *t, guint from_len, int64_t periods, int64_t period_ns,
                      uint32_t shift_from, int64_t id_shift)
{
    guint len = t->timeline->len;
    for (int64_t j = 1; j <= periods; j++) {
        for (guint i = from_len; i < len; i++) {
            MemSample s = g_array_index(t->timeline, MemSample, i);
            s.time_ns += j * period_ns;
            g_array_append_val(t->timeline, s);
        }
    }
    GHashTable *live = g_hash_table_new(g_direct_hash, g_direct_equal);
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, t->live);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        uint32_t id = GPOINTER_TO_UINT(key) - 1;
        if (id >= shift_from)
            id = (uint32_t)((int64_t)id + id_shift);
        g_hash_table_insert(live, GUINT_TO_POINTER(id + 1), value);
    }
    g_hash_table_destroy(t->live);
    t->live = live;
}
