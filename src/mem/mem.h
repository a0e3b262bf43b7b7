/* mem: the memory accountant. Replays the schedule's ALLOC and FREE ops in simulated time and
 * keeps the peak per GPU with its breakdown by category. Buffers are named; allocating a live
 * buffer twice or freeing one that is not live is an error in the schedule. */
#ifndef FSD_MEM_H
#define FSD_MEM_H

#include "../ir/ir.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t time_ns;
    int64_t bytes; /* total live after this change */
} MemSample;

typedef struct {
    int64_t current[IR_MEM_CATEGORY_COUNT];
    int64_t total;
    int64_t peak;
    int64_t peak_time_ns;
    int64_t at_peak[IR_MEM_CATEGORY_COUNT];
    GArray *timeline;  /* of MemSample, one per change */
    GHashTable *live;  /* buffer id -> index into slots */
    GArray *slots;     /* of {bytes, category} */
} MemTracker;

void mem_tracker_init(MemTracker *t);
void mem_tracker_clear(MemTracker *t);
/* `buffer_name` is used in messages only. */
bool mem_tracker_alloc(MemTracker *t, int64_t time_ns, uint32_t buffer, const char *buffer_name,
                       IrMemCategory category, uint64_t bytes, GError **error);
bool mem_tracker_free(MemTracker *t, int64_t time_ns, uint32_t buffer, const char *buffer_name,
                      GError **error);

/* For the engine's steady state (src/core/sim_steady.c). The tracker's state that its future
 * depends on, appended to `out` with buffer ids at or above `shift_from` reduced by `id_offset`
 * (buffers of the pipeline's steady phase get new ids each period) and marked apart from those
 * below (which stay), and sorted: total, per category, peak, live buffers. */
void mem_tracker_snapshot(const MemTracker *t, uint32_t shift_from, int64_t id_offset,
                          GByteArray *out);
/* Advances the tracker by `periods` repeats of what it did since its timeline had `from_len`
 * samples: those samples again, `period_ns` later each time; live buffers at or above
 * `shift_from` renamed + id_shift (the ids the program's skipped ops took: a compact run's
 * gap takes none). The peak is unchanged (the caller checked that the period did not raise
 * it). */
void mem_tracker_skip(MemTracker *t, guint from_len, int64_t periods, int64_t period_ns,
                      uint32_t shift_from, int64_t id_shift);

#endif
