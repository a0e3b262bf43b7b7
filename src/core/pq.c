/* pq: binary heap, O(log n) push and pop; see pq.h. */
#include "pq.h"

#include <glib.h>

static bool before(const PqEvent *a, const PqEvent *b)
{
    return a->time_ns < b->time_ns || (a->time_ns == b->time_ns && a->seq < b->seq);
}

void pq_init(Pq *q)
{
    q->heap = NULL;
    q->size = q->capacity = 0;
    q->next_seq = 0;
}

void pq_destroy(Pq *q)
{
    g_free(q->heap);
    pq_init(q);
}

void pq_push(Pq *q, int64_t time_ns, int32_t cls, int32_t op)
{
    if (q->size == q->capacity) {
        q->capacity = q->capacity ? 2 * q->capacity : 256;
        q->heap = g_renew(PqEvent, q->heap, q->capacity);
    }
    PqEvent ev = {time_ns, q->next_seq++, cls, op};
    uint64_t i = q->size++;
    while (i > 0) {
        uint64_t parent = (i - 1) / 2;
        if (!before(&ev, &q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = ev;
}

bool pq_peek(const Pq *q, PqEvent *out)
{
    if (q->size == 0)
        return false;
    *out = q->heap[0];
    return true;
}

bool pq_pop(Pq *q, PqEvent *out)
{
    if (q->size == 0)
        return false;
    *out = q->heap[0];
    PqEvent last = q->heap[--q->size];
    uint64_t i = 0;
    for (;;) {
        uint64_t child = 2 * i + 1;
        if (child >= q->size)
            break;
        if (child + 1 < q->size && before(&q->heap[child + 1], &q->heap[child]))
            child++;
        if (!before(&q->heap[child], &last))
            break;
        q->heap[i] = q->heap[child];
        i = child;
    }
    if (q->size > 0)
        q->heap[i] = last;
    return true;
}
