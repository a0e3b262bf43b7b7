/* sim_links: the busiest links of a simulated job and the link utilisation over time, from the
 * flow model's link classes (sim_links.h). */
#include "sim_links.h"

#include <math.h>
#include <string.h>

/* The busiest links: by the time their bytes take at full capacity, then link id, so the order
 * is total. Selected in one pass (insertion into the SIM_TOP_LINKS best so far) rather than by
 * sorting every link: a JUPITER job has 100k. */
static bool busier(const NetLinkStats *a, double cap_a, uint32_t la, const NetLinkStats *b,
                   double cap_b, uint32_t lb)
{
    double ta = a->bytes / cap_a, tb = b->bytes / cap_b;
    return ta != tb ? ta > tb : la < lb;
}

/* Links loaded alike: the same busy time and peak, and the same bytes to 1e-9. Each transfer
 * adds its bytes at the end of each of its rate segments (src/net/flow.c integrate), so two
 * NICs that carry the same transfers' twins, whose rates change at other times (a neighbour's
 * transfer starts beside one of them), sum the same bytes rounded differently: 1e-16 to 1e-14
 * apart, where the summary prints 4 digits. */
static bool stats_alike(const NetTopo *net, const NetLinkStats *a, uint32_t la,
                        const NetLinkStats *b, uint32_t lb)
{
    return fabs(a->bytes - b->bytes) <= 1e-9 * fmax(fabs(a->bytes), fabs(b->bytes)) &&
           a->busy_ns == b->busy_ns && a->peak_util == b->peak_util &&
           net->capacity_Bps[la] == net->capacity_Bps[lb] &&
           net_link_kind(net, la) == net_link_kind(net, lb);
}

/* A class of links of the flow model: its lowest link, its size, their statistics. */
typedef struct {
    uint32_t link;
    int size;
    const NetLinkStats *st;
} LinkGroup;

static int cmp_link_group(const void *x, const void *y)
{
    const LinkGroup *a = x, *b = y;
    return (a->link > b->link) - (a->link < b->link);
}

static bool alike_in(const NetTopo *net, const LinkGroup *top, int n, const LinkGroup *g)
{
    for (int i = 0; i < n; i++)
        if (stats_alike(net, top[i].st, top[i].link, g->st, g->link))
            return true;
    return false;
}

/* The busiest links, one per group of links with identical statistics (the first by index),
 * each with the size of its group. The links of a class of the flow model share their statistics
 * exactly, so this walks the classes, each as its lowest link, in link order: the same selection
 * as walking every link (a later link of a group is either alike to one kept or less busy than
 * its group's first, by the tie on link id) in O(classes x SIM_TOP_LINKS) instead of O(links x
 * SIM_TOP_LINKS) (a JUPITER job: 14 classes, 95k links; the walk over the links was 58 % of it). */
void sim_collect_links(SimResult *res, const NetTopo *net, const NetFlows *flows)
{
    const double *cap = net->capacity_Bps;
    int n_classes = net_flows_link_classes(flows), n_groups = 0;
    LinkGroup *groups = g_new(LinkGroup, MAX(1, n_classes));
    for (int c = 0; c < n_classes; c++) {
        LinkGroup g;
        g.st = net_flows_class_stats(flows, c, &g.link, &g.size);
        if (g.st->bytes > 0)
            groups[n_groups++] = g;
    }
    qsort(groups, (size_t)n_groups, sizeof *groups, cmp_link_group);
    LinkGroup top[SIM_TOP_LINKS];
    int n = 0;
    for (int k = 0; k < n_groups; k++) {
        const LinkGroup *g = &groups[k];
        uint32_t l = g->link;
        if (alike_in(net, top, n, g))
            continue; /* one line per group of links loaded alike; counted below */
        if (n == SIM_TOP_LINKS) {
            const LinkGroup *w = &top[n - 1];
            if (!busier(g->st, cap[l], l, w->st, cap[w->link], w->link))
                continue;
            n--;
        }
        int i = n++;
        for (; i > 0 && busier(g->st, cap[l], l, top[i - 1].st, cap[top[i - 1].link],
                               top[i - 1].link);
             i--)
            top[i] = top[i - 1];
        top[i] = *g;
    }
    res->n_links = n;
    res->links = g_new0(SimLink, MAX(1, n));
    for (int i = 0; i < n; i++)
        res->links[i] = (SimLink){net_link_name(net, top[i].link), net_link_kind(net, top[i].link),
                                  cap[top[i].link], *top[i].st, 0};
    /* Symmetric jobs load many links alike (every node's NIC 0): the report says how many
     * instead of listing them. */
    for (int k = 0; k < n_groups; k++)
        for (int i = 0; i < n; i++)
            if (stats_alike(net, top[i].st, top[i].link, groups[k].st, groups[k].link))
                res->links[i].alike += groups[k].size;
    g_free(groups);
    int ns;
    const NetUtilSample *samples = net_flows_samples(flows, &ns);
    res->n_util_samples = ns;
    res->util_samples = g_memdup2(samples, sizeof *samples * (gsize)MAX(1, ns));
}

