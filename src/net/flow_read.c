/* flow_read: what the flow model reports to the engine and the report, read from its state:
 * transfers in flight, rates, link statistics (their busy time brought up to date on read; their
 * bytes lack the open rate segments of transfers still in flight, flow.c integrate: complete
 * once none is, where the engine reads them) and utilisation samples. Internal to src/net; split from flow.c to keep files short. */
#include "flow_priv.h"

int net_flows_link_classes(const NetFlows *f)
{
    return f->n_classes;
}

int net_flows_active(const NetFlows *f)
{
    return f->active.n;
}

double net_flows_rate(const NetFlows *f, int id)
{
    g_assert(id >= 0 && (guint)id < f->transfers->len);
    return g_array_index(f->transfers, Transfer, id).rate;
}

const NetLinkStats *net_flows_stats(const NetFlows *f, uint32_t link)
{
    g_assert(link < (uint32_t)f->t->n_links);
    LinkClass *lc = (LinkClass *)&f->cls[f->class_of[link]]; /* the value, not the model, changes */
    flow_busy_flush(lc, f->now);
    lc->stats.bytes = f->bytes[f->class_of[link]];
    return &lc->stats;
}

const NetLinkStats *net_flows_class_stats(const NetFlows *f, int c, uint32_t *first_link,
                                          int *n_links)
{
    g_assert(c >= 0 && c < f->n_classes);
    *first_link = f->cls[c].first_link;
    *n_links = f->cls[c].size;
    LinkClass *lc = (LinkClass *)&f->cls[c]; /* the value, not the model, changes */
    flow_busy_flush(lc, f->now);
    lc->stats.bytes = f->bytes[c];
    return &lc->stats;
}

const NetUtilSample *net_flows_samples(const NetFlows *f, int *n)
{
    *n = (int)f->samples->len;
    return (const NetUtilSample *)f->samples->data;
}

const int *net_flows_active_ids(const NetFlows *f, int *n)
{
    *n = f->active.n;
    return f->active.v;
}
