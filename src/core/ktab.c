/* ktab: integer-keyed open-addressing table; see ktab.h. */
#include "ktab.h"

#include <glib.h>
#include <string.h>

struct KtSlot {
    KtKey key;
    void *value; /* NULL: empty; TOMBSTONE: removed */
};

static char tombstone_mark;
#define TOMBSTONE ((void *)&tombstone_mark)

static uint64_t mix(uint64_t x)
{
    /* splitmix64's finaliser: every input bit reaches every output bit */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint32_t hash(KtKey k)
{
    uint64_t h = mix(((uint64_t)k.tag << 32 | k.a) ^ mix((uint64_t)k.b << 32 | k.c));
    return (uint32_t)h;
}

static bool key_equal(KtKey x, KtKey y)
{
    return x.tag == y.tag && x.a == y.a && x.b == y.b && x.c == y.c;
}

void ktab_init(Ktab *t)
{
    t->mask = 63;
    t->slots = g_new0(KtSlot, t->mask + 1);
    t->used = t->live = 0;
}

void ktab_destroy(Ktab *t, void (*free_value)(void *))
{
    for (uint32_t i = 0; free_value && i <= t->mask; i++)
        if (t->slots[i].value && t->slots[i].value != TOMBSTONE)
            free_value(t->slots[i].value);
    g_free(t->slots);
    t->slots = NULL;
}

/* The slot holding `key`, or NULL. */
static KtSlot *find(const Ktab *t, KtKey key)
{
    for (uint32_t i = hash(key) & t->mask;; i = (i + 1) & t->mask) {
        KtSlot *s = &t->slots[i];
        if (!s->value)
            return NULL;
        if (s->value != TOMBSTONE && key_equal(s->key, key))
            return s;
    }
}

void *ktab_lookup(const Ktab *t, KtKey key)
{
    KtSlot *s = find(t, key);
    return s ? s->value : NULL;
}

static void place(Ktab *t, KtKey key, void *value)
{
    uint32_t i = hash(key) & t->mask;
    while (t->slots[i].value && t->slots[i].value != TOMBSTONE)
        i = (i + 1) & t->mask;
    if (!t->slots[i].value)
        t->used++;
    t->slots[i] = (KtSlot){key, value};
    t->live++;
}

/* Rebuilt without tombstones, twice as large when live keys alone fill half of it. */
static void rebuild(Ktab *t)
{
    KtSlot *old = t->slots;
    uint32_t old_cap = t->mask + 1;
    uint32_t cap = 2 * t->live >= old_cap ? 2 * old_cap : old_cap;
    t->mask = cap - 1;
    t->slots = g_new0(KtSlot, cap);
    t->used = t->live = 0;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].value && old[i].value != TOMBSTONE)
            place(t, old[i].key, old[i].value);
    g_free(old);
}

void ktab_insert(Ktab *t, KtKey key, void *value)
{
    g_assert(value && value != TOMBSTONE);
    if (4 * (t->used + 1) > 3 * (t->mask + 1))
        rebuild(t);
    place(t, key, value);
}

void *ktab_remove(Ktab *t, KtKey key)
{
    KtSlot *s = find(t, key);
    if (!s)
        return NULL;
    void *value = s->value;
    s->value = TOMBSTONE;
    t->live--;
    return value;
}

void ktab_entries(const Ktab *t, KtKey *keys, void **values)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i <= t->mask; i++) {
        if (t->slots[i].value && t->slots[i].value != TOMBSTONE) {
            keys[n] = t->slots[i].key;
            values[n++] = t->slots[i].value;
        }
    }
}
