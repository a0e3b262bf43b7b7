/* ktab: the engine's lookup tables (rendezvous, link-load patterns), keyed by three packed 32-bit
 * integers and a tag instead of formatted strings: no formatting, hashing of text or allocation
 * per lookup. Open addressing with linear probing, in one array of slots; a removed key leaves a
 * tombstone, and the table is rebuilt (without them) when live keys and tombstones fill 3/4 of it.
 * Lookup, insert and remove are O(1) expected. Iteration order is never used, so the layout
 * cannot change results. */
#ifndef FSD_KTAB_H
#define FSD_KTAB_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint32_t tag, a, b, c;
} KtKey;

typedef struct KtSlot KtSlot;

typedef struct {
    KtSlot *slots;
    uint32_t mask; /* capacity - 1, a power of two */
    uint32_t used; /* live keys and tombstones */
    uint32_t live;
} Ktab;

void ktab_init(Ktab *t);
/* Frees the table; free_value (may be NULL) is called on every value still in it. */
void ktab_destroy(Ktab *t, void (*free_value)(void *));
/* The value of `key`, NULL when absent. */
void *ktab_lookup(const Ktab *t, KtKey key);
/* Adds `key` (absent) with `value` (not NULL). */
void ktab_insert(Ktab *t, KtKey key, void *value);
/* Removes `key` and returns its value (NULL when absent). */
void *ktab_remove(Ktab *t, KtKey key);
/* Number of keys, and the keys with their values (in no meaningful order: callers sort) into
 * keys[] and values[] of at least that many entries. */
static inline uint32_t ktab_count(const Ktab *t)
{
    return t->live;
}
void ktab_entries(const Ktab *t, KtKey *keys, void **values);

#endif
