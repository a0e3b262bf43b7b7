/* sim_links: the engine's link statistics (internal to src/core). */
#ifndef FSD_SIM_LINKS_H
#define FSD_SIM_LINKS_H

#include "sim.h"

/* Fills res->links (the SIM_TOP_LINKS busiest, one per group of links loaded alike) and
 * res->util_samples from the flow model at the end of a run. Cost: proportional to the flow
 * model's link classes, not its links. */
void sim_collect_links(SimResult *res, const NetTopo *net, const NetFlows *flows);

#endif
