/* libFuzzer harness: topology files through hw_topology_load, then the network built on the
 * largest layout the file allows (capped so one input stays fast). Seeds: topologies/. */
#include "fuzz.h"

#include "hw/hw.h"
#include "net/net.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fatal_warnings();
    const char *file = fuzz_file("topology", data, size);
    GError *error = NULL;
    HwTopology *t = hw_topology_load(file, &error);
    if (t) {
        int nodes = MIN(t->nodes_max, 64);
        NetTopo *net = net_topo_new(t, nodes, t->gpus_per_node);
        net_topo_free(net);
        hw_topology_free(t);
    } else if (!error || error->domain != FSD_ERROR) {
        abort();
    }
    g_clear_error(&error);
    return 0;
}
