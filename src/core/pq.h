/* pq: a binary min-heap of events ordered by (time_ns, seq). seq is assigned at push, so events at
 * the same time pop in the order they were pushed: a total, stable order that makes every run
 * deterministic. Narrow API so the implementation can change (a calendar queue, say). */
#ifndef FSD_PQ_H
#define FSD_PQ_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t time_ns;
    uint64_t seq;
    int32_t cls; /* rank class */
    int32_t op;  /* op index */
} PqEvent;

typedef struct {
    PqEvent *heap;
    uint64_t size, capacity;
    uint64_t next_seq;
} Pq;

void pq_init(Pq *q);
void pq_destroy(Pq *q);
void pq_push(Pq *q, int64_t time_ns, int32_t cls, int32_t op);
bool pq_pop(Pq *q, PqEvent *out);
bool pq_peek(const Pq *q, PqEvent *out);
static inline uint64_t pq_size(const Pq *q)
{
    return q->size;
}

#endif
