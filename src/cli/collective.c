/* fsdpsim collective: one collective over every GPU of N nodes, sizes doubling from --min-bytes to
 * --max-bytes, printed in nccl-tests' columns so that a user can hold the table against their own
 * all_reduce_perf (or all_gather_perf, ...) run. Each size is a one-op schedule replayed by the
 * same engine and network model as a training step. */
#include "cli.h"
#include "../coll/coll.h"
#include "../core/sim.h"
#include "../util/cfg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name; /* nccl-tests' -d */
    int bytes;
    HwDtype dtype;
} DataType;

static const DataType types[] = {
    {"float", 4, HW_DTYPE_FP32},
    {"half", 2, HW_DTYPE_FP16},
    {"bfloat16", 2, HW_DTYPE_BF16},
    {"double", 8, HW_DTYPE_FP32},
};

static const char *const op_names[IR_COLL_KIND_COUNT] = {
    [IR_COLL_ALLGATHER] = "allgather", [IR_COLL_REDUCE_SCATTER] = "reduce_scatter",
    [IR_COLL_ALLREDUCE] = "allreduce", [IR_COLL_BROADCAST] = "broadcast",
    [IR_COLL_ALLTOALL] = "alltoall",
};

static int run(const char *op_text, const char *topo_arg, int nodes, int gpn_arg,
               const char *min_text, const char *max_text, const char *type_text, const char *algo,
               const char *proto, int per_thread, GError **error)
{
    IrCollKind kind = IR_COLL_KIND_COUNT;
    for (int k = 0; k < IR_COLL_KIND_COUNT; k++)
        if (!strcmp(op_text, op_names[k]))
            kind = (IrCollKind)k;
    if (kind == IR_COLL_KIND_COUNT)
        return cfg_input_error(error,
                               "option --op: expected allreduce, allgather, reduce_scatter, "
                               "broadcast or alltoall, got \"%s\"",
                               op_text),
               2;
    const DataType *type = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++)
        if (!strcmp(type_text, types[i].name))
            type = &types[i];
    if (!type)
        return cfg_input_error(error,
                               "option --datatype: expected float, half, bfloat16 or double, "
                               "got \"%s\"",
                               type_text),
               2;
    uint64_t lo, hi;
    if (!cfg_parse_size(min_text, &lo) || lo == 0 || lo > (1ull << 40))
        return cfg_input_error(error,
                               "option --min-bytes: expected a size from 1 to 1T (suffixes K, M, "
                               "G, T), got \"%s\"",
                               min_text),
               2;
    if (!cfg_parse_size(max_text, &hi) || hi < lo || hi > (1ull << 40))
        return cfg_input_error(error,
                               "option --max-bytes: expected a size from --min-bytes (%s) to 1T, "
                               "got \"%s\"",
                               min_text, max_text),
               2;
    g_autofree char *topo_default = cli_default_path("topologies/juwels-booster.json");
    HwTopology *topo = hw_topology_load(topo_arg ? topo_arg : topo_default, error);
    if (!topo)
        return 2;
    int status = 2;
    int gpn = gpn_arg != UNSET ? gpn_arg : topo->gpus_per_node;
    CollModel coll;
    coll_model_analytic_init(&coll, topo);
    NetTopo *net = NULL;
    if (nodes < 1 || nodes > topo->nodes_max) {
        cfg_input_error(error, "option --nodes: %s has %d nodes; expected 1..%d, got %d",
                        topo->name, topo->nodes_max, topo->nodes_max, nodes);
        goto out;
    }
    if (gpn < 1 || gpn > topo->gpus_per_node) {
        cfg_input_error(error,
                        "option --gpus-per-node: a %s node has %d GPUs; expected 1..%d, got %d",
                        topo->name, topo->gpus_per_node, topo->gpus_per_node, gpn_arg);
        goto out;
    }
    if (per_thread < 1 || per_thread > gpn) {
        cfg_input_error(error, "option --gpus-per-thread: expected 1..%d (GPUs per node), got %d",
                        gpn, per_thread);
        goto out;
    }
    if (algo && !coll_algo_parse(algo, &coll.force_algo)) {
        cfg_input_error(
            error, "option --nccl-algo: expected ring, tree, nvls or nvlstree, got \"%s\"", algo);
        goto out;
    }
    if (proto && !coll_proto_parse(proto, &coll.force_proto)) {
        cfg_input_error(error, "option --nccl-proto: expected LL, LL128 or Simple, got \"%s\"",
                        proto);
        goto out;
    }
    net = net_topo_new(topo, nodes, gpn);
    int n = nodes * gpn;
    printf("# fsdpsim collective: %s on %s, %d nodes x %d GPUs = %d ranks (%s)\n", op_text,
           topo->name, nodes, gpn, n, topo->gpu.name);
    printf(
        "# simulated: NCCL's algorithm and protocol choice and latencies, flow-level link model\n");
    printf("#\n# %10s %12s %8s %6s %6s %9s %7s %7s  %5s %6s\n", "size", "count", "type", "redop",
           "root", "time", "algbw", "busbw", "algo", "proto");
    printf("# %10s %12s %8s %6s %6s %9s %7s %7s\n", "(B)", "(elements)", "", "", "", "(us)",
           "(GB/s)", "(GB/s)");
    const char *redop =
        kind == IR_COLL_ALLREDUCE || kind == IR_COLL_REDUCE_SCATTER ? "sum" : "none";
    int root = kind == IR_COLL_BROADCAST ? 0 : -1;
    double sum_busbw = 0;
    int rows = 0;
    for (uint64_t bytes = lo; bytes <= hi; bytes *= 2) {
        /* nccl-tests rounds the size down to whole elements, per rank for the gathered ops */
        uint64_t per = kind == IR_COLL_ALLREDUCE || kind == IR_COLL_BROADCAST ? 1 : (uint64_t)n;
        uint64_t count = bytes / type->bytes / per * per;
        uint64_t size = count * type->bytes;
        double t = 0;
        if (size > 0 &&
            !sim_collective_s(topo, &coll, net, nodes, gpn, kind, type->dtype, size, &t, error))
            goto out;
        t = size > 0 ? coll_nccltests_op_s(topo, t, per_thread) : 0;
        CollShape shape = {kind, size, n, nodes, gpn};
        CollChoice choice = {0};
        coll.time_s(&coll, &shape, &choice);
        double algbw = t > 0 ? size / t / 1e9 : 0, busbw = algbw * coll_busbw_factor(kind, n);
        if (kind == IR_COLL_BROADCAST)
            busbw = algbw;
        printf("  %10" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT
               " %8s %6s %6d %9.2f %7.2f %7.2f  %5s %6s\n",
               size, count, type->name, redop, root, t * 1e6, algbw, busbw,
               coll_algo_name(choice.algo), coll_proto_name(choice.proto));
        sum_busbw += busbw;
        rows++;
        if (bytes > UINT64_MAX / 2)
            break;
    }
    printf("# Avg bus bandwidth    : %g\n", rows ? sum_busbw / rows : 0.0);
    status = 0;
out:
    net_topo_free(net);
    hw_topology_free(topo);
    return status;
}

int cli_collective(int argc, char **argv)
{
    char *op = NULL, *topology = NULL, *min = NULL, *max = NULL, *type = NULL, *algo = NULL,
         *proto = NULL;
    int nodes = 1, gpn = UNSET, per_thread = 1;
    GOptionEntry entries[] = {
        {"op", 'o', 0, G_OPTION_ARG_STRING, &op,
         "allreduce, allgather, reduce_scatter, broadcast, alltoall [allreduce]", "OP"},
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &topology,
         "Machine description [topologies/juwels-booster.json]", "FILE"},
        {"nodes", 'n', 0, G_OPTION_ARG_INT, &nodes, "Number of nodes [1]", "N"},
        {"gpus-per-node", 'g', 0, G_OPTION_ARG_INT, &gpn,
         "GPUs (ranks) per node [all of the node's]", "G"},
        {"min-bytes", 'b', 0, G_OPTION_ARG_STRING, &min,
         "Smallest size, suffixes K, M, G (as nccl-tests -b) [8]", "SIZE"},
        {"max-bytes", 'e', 0, G_OPTION_ARG_STRING, &max,
         "Largest size; sizes double from min to max (-e, -f 2) [8G]", "SIZE"},
        {"datatype", 'd', 0, G_OPTION_ARG_STRING, &type,
         "float, half, bfloat16, double (as nccl-tests -d) [float]", "TYPE"},
        {"gpus-per-thread", 0, 0, G_OPTION_ARG_INT, &per_thread,
         "GPUs one host thread drives, as nccl-tests -g: each op is launched on each of them in "
         "turn [1]",
         "G"},
        {"nccl-algo", 0, 0, G_OPTION_ARG_STRING, &algo,
         "Force NCCL's algorithm like NCCL_ALGO: ring, tree, nvls, nvlstree [NCCL's choice]",
         "ALGO"},
        {"nccl-proto", 0, 0, G_OPTION_ARG_STRING, &proto,
         "Force NCCL's protocol like NCCL_PROTO: LL, LL128, Simple [NCCL's choice]", "PROTO"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GError *error = NULL;
    int status;
    if (!cli_parse(
            "- simulate an nccl-tests sweep of one collective",
            "Prints size, count, type, redop, root, time, algbw and busbw as nccl-tests does\n"
            "(out-of-place columns), plus the algorithm and protocol NCCL's tuner would pick.\n\n"
            "Example:\n  fsdpsim collective --op allreduce -t topologies/hgx-h100-ndr400.json "
            "--nodes 2 -b 8 -e 8G",
            NULL, entries, argc, argv, &error))
        status = 2;
    else
        status = run(op ? op : "allreduce", topology, nodes, gpn, min ? min : "8", max ? max : "8G",
                     type ? type : "float", algo, proto, per_thread, &error);
    if (error)
        status = cli_report_error(error);
    g_free(op), g_free(topology), g_free(min), g_free(max), g_free(type), g_free(algo),
        g_free(proto);
    return status;
}
