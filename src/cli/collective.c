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

/* nccl-tests' gather_perf and scatter_perf as NCCL runs them (src/coll/nccltests.c): one group
 * of point-to-point messages of bytes / n, every other rank's part to the root, rank 0
 * (gather), or the root's part for each rank to it (scatter), all in flight at once: the root's
 * receives (sends) each on a stream of its own, so that the flow model shares the root's NVLink
 * port and NIC among them, and each rank in a class of its own (the peer differs per rank). The
 * root's own part is a local copy, left out. Cost: n classes and n - 1 root streams per size. */
static bool rooted_p2p_s(const HwTopology *topo, const CollModel *coll, const NetTopo *net,
                         int nodes, int gpn, uint64_t bytes, bool gather, double *out,
                         GError **error)
{
    int n = nodes * gpn;
    uint64_t part = bytes / (uint64_t)n;
    IrSchedule *s = ir_schedule_new(nodes, gpn);
    IrClass *root = ir_class_add(s, 0, 1, 1);
    ir_stream_add(root, "host", true);
    for (int r = 1; r < n; r++) {
        char name[24];
        g_snprintf(name, sizeof name, "peer%d", r);
        IrOp op = {.kind = gather ? IR_OP_RECV : IR_OP_SEND,
                   .stream = (uint16_t)ir_stream_add(root, name, false)};
        op.u.p2p.peer_offset = r;
        op.u.p2p.bytes = part;
        ir_op_add(root, &op, gather ? "recv" : "send", NULL, 0);
    }
    for (int r = 1; r < n; r++) {
        IrClass *c = ir_class_add(s, r, 1, 1);
        ir_stream_add(c, "host", true);
        IrOp op = {.kind = gather ? IR_OP_SEND : IR_OP_RECV,
                   .stream = (uint16_t)ir_stream_add(c, "p2p", false)};
        op.u.p2p.peer_offset = -r;
        op.u.p2p.bytes = part;
        ir_op_add(c, &op, gather ? "send" : "recv", NULL, 0);
    }
    return sim_schedule_makespan_s(s, topo, coll, net, out, error);
}

/* --op as nccl-tests' table names it (allreduce), as its binary (all_reduce_perf) or as PyTorch
 * (all_reduce, dist.all_gather_into_tensor, reduce_scatter_tensor, all_to_all_single), in any
 * case: underscores, the prefix and the suffix dropped, then compared with the table's names
 * spelt the same way. NULL when none matches. */
static const char *const collective_ops[] = {
    "allreduce", "allgather", "reduce_scatter", "broadcast", "reduce",
    "alltoall",  "sendrecv",  "gather",         "scatter",   NULL};

/* A copy of text without its underscores. */
static char *collective_op_squeeze(const char *text)
{
    char *bare = g_strdup(text), *to = bare;
    for (const char *from = text; *from; from++)
        if (*from != '_')
            *to++ = *from;
    *to = '\0';
    return bare;
}

static const CollTest *collective_op_find(const char *text)
{
    static const char *const torch_suffixes[] = {"_perf", "_into_tensor", "_tensor", "_single",
                                                 NULL};
    g_autofree char *word = g_ascii_strdown(text, -1);
    const char *name = cli_strip_prefix(cli_strip_prefix(word, "torch.distributed."), "dist.");
    g_autofree char *stem = g_strdup(name);
    for (int i = 0; torch_suffixes[i]; i++)
        if (g_str_has_suffix(stem, torch_suffixes[i]) && strlen(stem) > strlen(torch_suffixes[i]))
            stem[strlen(stem) - strlen(torch_suffixes[i])] = '\0';
    g_autofree char *bare = collective_op_squeeze(stem);
    for (int i = 0; collective_ops[i]; i++) {
        g_autofree char *op = collective_op_squeeze(collective_ops[i]);
        if (strcmp(bare, op) == 0)
            return coll_test_find(collective_ops[i]);
    }
    return NULL;
}

static int run(const char *op_text, const char *topo_arg, int nodes, int gpn_arg,
               const char *min_text, const char *max_text, const char *type_text, const char *algo,
               const char *proto, bool collnet, int per_thread, const char *reference,
               const char *section, const char *nccl_version, GError **error)
{
    const CollTest *test = collective_op_find(op_text);
    if (!test)
        return cfg_input_error(error,
                               "option --op: expected %s (or nccl-tests' and PyTorch's names: "
                               "all_reduce_perf, all_reduce, ...), got \"%s\"%s",
                               coll_tests_names, op_text,
                               cli_did_you_mean(op_text, collective_ops)),
               2;
    IrCollKind kind = test->kind;
    bool p2p = test->run != COLL_RUN_COLLECTIVE; /* sendrecv, gather, scatter */
    if (p2p && (algo || proto))
        return cfg_input_error(error,
                               "options --nccl-algo/--nccl-proto choose among NCCL's "
                               "collective algorithms; %s is point-to-point (NCCL runs it with "
                               "Simple), expected neither",
                               test->op),
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
    if (section && !reference)
        return cfg_input_error(error, "option --reference-section: expected --reference FILE "
                                      "as well (the file whose table it picks)"),
               2;
    /* --reference: the sizes of the user's own nccl-tests run, and its times beside ours */
    CollNcclTestsRow ref[128];
    int n_ref = 0;
    if (reference) {
        g_autofree char *text = NULL;
        GError *e = NULL;
        if (!g_file_get_contents(reference, &text, NULL, &e)) {
            cfg_input_error(error, "%s: cannot read file: %s", reference, e->message);
            g_error_free(e);
            return 2;
        }
        /* a file of several tables (one per run, each under a "=== ..." heading): the one whose
         * heading contains `section`, up to the next heading, read as strictly as a whole file */
        const char *table = text;
        g_autofree char *part = NULL;
        if (section) {
            if (!strstr(text, section))
                return cfg_input_error(error, "option --reference-section: no line of %s contains \"%s\"",
                                       reference, section),
                       2;
            /* the other tables' lines blanked, so that messages keep the file's line numbers */
            char **lines = g_strsplit(text, "\n", -1);
            bool in = false;
            for (char **l = lines; *l; l++) {
                bool heading = strstr(*l, "===") != NULL;
                if (heading)
                    in = strstr(*l, section) != NULL;
                if (heading || !in)
                    **l = '\0';
            }
            part = g_strjoinv("\n", lines);
            g_strfreev(lines);
            table = part;
        }
        n_ref = coll_nccltests_read(reference, table, test, ref, G_N_ELEMENTS(ref), error);
        if (n_ref < 0)
            return 2;
        if (n_ref == 0)
            return cfg_input_error(error,
                                   "%s: field 'rows': expected nccl-tests result lines (size count "
                                   "type redop [root] time algbw busbw #wrong time algbw busbw "
                                   "#wrong), got none",
                                   reference),
                   2;
    }
    g_autofree char *topo_default = cli_default_path("topologies/juwels-booster.json");
    g_autofree char *topo_named = NULL; /* -t jusuf */
    if (topo_arg && !cli_data_file("topology", "topologies", topo_arg, &topo_named, error))
        return 2;
    HwTopology *topo = hw_topology_load(topo_named ? topo_named : topo_default, error);
    if (!topo)
        return 2;
    int status = 2;
    int gpn = gpn_arg != UNSET ? gpn_arg : topo->gpus_per_node;
    CollModel coll;
    coll_model_analytic_init(&coll, topo);
    coll.collnet_enable = collnet;
    NetTopo *net = NULL;
    GArray *sizes = NULL;
    if (!cli_nccl_version(nccl_version, &coll.nccl_version, error))
        goto out;
    if (collnet && !coll_topology_has_sharp(topo)) {
        cfg_input_error(error,
                        "option --nccl-collnet: CollNet needs SHARP in the InfiniBand switches "
                        "(network.sharp in the topology), which %s does not state; expected a "
                        "topology with network.sharp, or leave the option out",
                        topo->name);
        goto out;
    }
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
        cfg_input_error(error,
                        "option --nccl-algo: expected ring, tree, nvls, nvlstree, pat, "
                        "collnetdirect or collnetchain, got \"%s\"",
                        algo);
        goto out;
    }
    if (proto && !coll_proto_parse(proto, &coll.force_proto)) {
        cfg_input_error(error, "option --nccl-proto: expected LL, LL128 or Simple, got \"%s\"",
                        proto);
        goto out;
    }
    int n = nodes * gpn;
    if (p2p && n < 2) {
        cfg_input_error(
            error,
            "option --op %s: expected at least 2 ranks (it sends to %s), got %d node x %d GPU",
            test->op, test->run == COLL_RUN_SENDRECV ? "the next one" : "or from the root", nodes,
            gpn);
        goto out;
    }
    net = net_topo_new(topo, nodes, gpn);
    /* the sizes: those of the reference run, or doubling from min to max as nccl-tests -f 2 */
    sizes = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    for (int r = 0; r < n_ref; r++)
        g_array_append_val(sizes, ref[r].bytes);
    for (uint64_t b = lo; !reference && b <= hi; b *= 2) {
        g_array_append_val(sizes, b);
        if (b > UINT64_MAX / 2)
            break;
    }
    /* A forced algorithm or protocol that cannot run this collective: said before any output. */
    for (guint r = 0; !p2p && r < sizes->len; r++) {
        CollShape shape = {kind, g_array_index(sizes, uint64_t, r), n, nodes, gpn};
        CollChoice choice = {0};
        coll.time_s(&coll, &shape, &choice);
        if (choice.forced_unavailable) {
            cfg_input_error(error,
                            "options --nccl-algo/--nccl-proto: %s%s%s cannot run %s of %d GPUs "
                            "(%d nodes x %d) on %s in this model; expected one that can (NVLS "
                            "and NVLSTree: allreduce with NVLink SHARP, Simple only; tree: "
                            "allreduce across nodes; pat: allgather or reduce_scatter with one GPU "
                            "per node, Simple; collnetdirect, collnetchain: allreduce across "
                            "nodes of up to 8 GPUs where the switches offer SHARP, network.sharp, "
                            "Simple, collnetdirect on 8-GPU NVSwitch nodes), or leave them out "
                            "for NCCL's choice",
                            algo ? algo : "", algo && proto ? "/" : "", proto ? proto : "",
                            test->op, n, nodes, gpn, topo->name);
            goto out;
        }
    }
    printf("# fsdpsim collective: %s on %s, %d node%s x %d GPUs = %d ranks (%s)\n", test->op,
           topo->name, nodes, nodes == 1 ? "" : "s", gpn, n, topo->gpu.name);
    printf(
        "# simulated: NCCL's algorithm and protocol choice and latencies, flow-level link model\n");
    if (reference)
        printf("# measured: %s%s%s (%d sizes: out-of-place and in-place time, the faster one's "
               "busbw); error = (sim - real) / real of busbw against the faster, + means the "
               "simulation is too fast\n",
               reference, section ? ", table " : "", section ? section : "", n_ref);
    /* nccl-tests' columns: out-of-place, then in-place (the same op in this model: NCCL's
     * in-place run skips a local copy at most), #wrong N/A as with -c 0; then NCCL's choice */
    printf("#\n# %10s %12s %8s %6s %6s %32s %32s\n", "", "", "", "", "", "out-of-place",
           "in-place");
    printf("# %10s %12s %8s %6s %6s %9s %7s %7s %6s %9s %7s %7s %6s  %8s %6s", "size", "count",
           "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw", "busbw",
           "#wrong", "algo", "proto");
    if (reference)
        printf("  %9s %9s %11s %8s", "real oop", "real ip", "real busbw", "error");
    printf("\n# %10s %12s %8s %6s %6s %9s %7s %7s %6s %9s %7s %7s %6s  %8s %6s", "(B)",
           "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)",
           "", "", "");
    if (reference)
        printf("  %9s %9s %11s", "(us)", "(us)", "(GB/s)");
    printf("\n");
    const char *redop = test->reduces ? "sum" : "none";
    int root = test->rooted ? 0 : -1;
    double sum_busbw = 0;
    int rows = 0;
    for (guint r = 0; r < sizes->len; r++) {
        uint64_t bytes = g_array_index(sizes, uint64_t, r);
        /* nccl-tests rounds the size down to whole elements, per rank for the gathered ops */
        uint64_t per = test->run == COLL_RUN_SENDRECV ||
                               (!p2p && (kind == IR_COLL_ALLREDUCE || kind == IR_COLL_BROADCAST))
                           ? 1
                           : (uint64_t)n;
        uint64_t count = bytes / type->bytes / per * per;
        uint64_t size = count * type->bytes;
        double t = 0;
        if (size > 0 && !(test->run == COLL_RUN_SENDRECV
                              ? sim_sendrecv_s(topo, &coll, net, nodes, gpn, size, &t, error)
                          : p2p ? rooted_p2p_s(topo, &coll, net, nodes, gpn, size,
                                               test->run == COLL_RUN_GATHER, &t, error)
                                : sim_collective_s(topo, &coll, net, nodes, gpn, kind, type->dtype,
                                                   size, &t, error)))
            goto out;
        t = size > 0 ? coll_nccltests_op_s(topo, t, per_thread) : 0;
        CollChoice choice = {0};
        if (!p2p) {
            CollShape shape = {kind, size, n, nodes, gpn};
            coll.time_s(&coll, &shape, &choice);
        }
        double algbw = t > 0 ? size / t / 1e9 : 0,
               busbw = algbw * coll_test_busbw_factor(test, n);
        printf("  %10" G_GUINT64_FORMAT " %12" G_GUINT64_FORMAT " %8s %6s %6d", size, count,
               type->name, redop, root);
        for (int place = 0; place < 2; place++) /* out-of-place, in-place */
            printf(" %9.2f %7.2f %7.2f %6s", t * 1e6, algbw, busbw, "N/A");
        printf("  %8s %6s", p2p ? "p2p" : coll_algo_name(choice.algo),
               p2p ? "Simple" : coll_proto_name(choice.proto));
        if (reference)
            printf("  %9.2f %9.2f %11.2f %+7.1f%%", ref[r].out_of_place_s * 1e6,
                   ref[r].in_place_s * 1e6, ref[r].busbw_GBps,
                   t > 0 ? 100 * (ref[r].time_s / t - 1) : 0.0);
        printf("\n");
        sum_busbw += busbw;
        rows++;
    }
    printf("# Avg bus bandwidth    : %g\n", rows ? sum_busbw / rows : 0.0);
    status = 0;
out:
    if (sizes)
        g_array_free(sizes, TRUE);
    net_topo_free(net);
    hw_topology_free(topo);
    return status;
}

int cli_collective(int argc, char **argv)
{
    char *op = NULL, *topology = NULL, *min = NULL, *max = NULL, *type = NULL, *algo = NULL,
         *proto = NULL, *nccl_version = NULL;
    int nodes = 1, gpn = UNSET, per_thread = 1;
    gboolean collnet = FALSE;
    char *reference = NULL, *section = NULL;
    GOptionEntry entries[] = {
        {"op", 'o', 0, G_OPTION_ARG_STRING, &op,
         "allreduce, allgather, reduce_scatter, broadcast, reduce, alltoall, sendrecv, gather, "
         "scatter; also as nccl-tests' binaries and PyTorch name them (all_reduce_perf, "
         "all_gather_into_tensor), in any case [allreduce]",
         "OP"},
        {"topology", 't', 0, G_OPTION_ARG_FILENAME, &topology,
         "Machine description: a file or a shipped topology's name (fsdpsim list topologies) "
         "[topologies/juwels-booster.json]",
         "FILE|NAME"},
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
        {"reference", 0, 0, G_OPTION_ARG_FILENAME, &reference,
         "Your own nccl-tests output (e.g. all_reduce_perf ... > FILE): simulate its sizes and "
         "print its times and the error beside ours",
         "FILE"},
        {"reference-section", 0, 0, G_OPTION_ARG_STRING, &section,
         "In a --reference file of several tables: the one under the heading line that contains "
         "TEXT (up to the next line with \"===\")",
         "TEXT"},
        {"nccl-algo", 0, 0, G_OPTION_ARG_STRING, &algo,
         "Force NCCL's algorithm like NCCL_ALGO: ring, tree, nvls, nvlstree, pat, collnetdirect, "
         "collnetchain [NCCL's choice]",
         "ALGO"},
        {"nccl-collnet", 0, 0, G_OPTION_ARG_NONE, &collnet,
         "Let NCCL choose CollNet (SHARP in the switches, network.sharp) like "
         "NCCL_COLLNET_ENABLE=1 [off, as NCCL]",
         NULL},
        {"nccl-proto", 0, 0, G_OPTION_ARG_STRING, &proto,
         "Force NCCL's protocol like NCCL_PROTO: LL, LL128, Simple [NCCL's choice]", "PROTO"},
        {"nccl-version", 0, 0, G_OPTION_ARG_STRING, &nccl_version,
         "The NCCL release whose rules apply where they changed (when LL128 is enabled: Hopper "
         "from 2.15, GH200 across nodes from 2.27; before 2.12, 2.8.4's latencies and per-channel "
         "caps; 2.12-2.22 their own latencies, caps and algorithms) [2.30.7]",
         "X.Y.Z"},
        {NULL, 0, 0, 0, NULL, NULL, NULL}};
    GError *error = NULL;
    int status;
    if (!cli_parse(
            "- simulate an nccl-tests sweep of one collective",
            "Prints nccl-tests' columns (size, count, type, redop, root, then time, algbw, busbw\n"
            "and #wrong out of place and in place: the same simulated op), plus the algorithm and\n"
            "protocol NCCL's tuner would pick.\n\n"
            "Example:\n  fsdpsim collective --op allreduce -t topologies/hgx-h100-ndr400.json "
            "--nodes 2 -b 8 -e 8G",
            NULL, entries, argc, argv, &error))
        status = 2;
    else
        status = run(op ? op : "allreduce", topology, nodes, gpn, min ? min : "8", max ? max : "8G",
                     type ? type : "float", algo, proto, collnet, per_thread, reference, section,
                     nccl_version, &error);
    if (error)
        status = cli_report_error(error);
    g_free(op), g_free(topology), g_free(min), g_free(max), g_free(type), g_free(algo),
        g_free(proto), g_free(reference), g_free(section), g_free(nccl_version);
    return status;
}
