/* libFuzzer harness: schedule files (fsdpsim-schedule JSON) through ir_schedule_from_text, which
 * checks a schedule as a whole (ir_check.c), then written back and read again: what the reader
 * accepts, the writer must write and the reader accept again, unchanged. Small schedules that
 * pass fsdpsim's checks before simulating (cli_check_op_times) are then simulated on a 4-GPU
 * node topology: the engine must end with a result or an input error (a deadlock), never crash.
 * Seeds: tests/fuzz/seeds/schedule and schedules tools/fuzz emits. */
#include "fuzz.h"

#include "cli/budget.h"
#include "coll/coll.h"
#include "core/sim.h"
#include "ir/ir.h"
#include "net/net.h"

#include <string.h>

static HwTopology *topology(void)
{
    static HwTopology *topo;
    if (!topo) {
        GError *error = NULL;
        topo = hw_topology_load(FSDPSIM_SOURCE_ROOT "/topologies/juwels-booster.json", &error);
        if (!topo)
            abort();
    }
    return topo;
}

static void simulate(const IrSchedule *s)
{
    HwTopology *topo = topology();
    uint64_t ops = cli_schedule_ops(s);
    GError *error = NULL;
    if (s->world > 16 || s->gpus_per_node > topo->gpus_per_node || ops > 4000 ||
        !cli_check_op_times(s, topo, "fuzz.json", &error)) {
        g_clear_error(&error);
        return;
    }
    CollModel coll;
    coll_model_analytic_init(&coll, topo);
    NetTopo *net = net_topo_new(topo, s->nodes, s->gpus_per_node);
    SimConfig cfg = {topo, &coll, net};
    SimResult *r = sim_run(s, &cfg, &error);
    if (!r && (!error || error->domain != FSD_ERROR))
        abort();
    sim_result_free(r);
    g_clear_error(&error);
    net_topo_free(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_fatal_warnings();
    char *text = fuzz_text(data, size);
    GError *error = NULL;
    IrSchedule *s = ir_schedule_from_text("fuzz.json", text, &error);
    if (s) {
        char *json = ir_schedule_to_json(s);
        IrSchedule *back = ir_schedule_from_text("fuzz-back.json", json, &error);
        if (!back || !ir_schedule_equal(s, back))
            abort(); /* the writer wrote what the reader refuses or reads differently */
        ir_schedule_free(back);
        g_free(json);
        simulate(s);
        ir_schedule_free(s);
    } else if (!error || error->domain != FSD_ERROR) {
        abort();
    }
    g_clear_error(&error);
    g_free(text);
    return 0;
}
