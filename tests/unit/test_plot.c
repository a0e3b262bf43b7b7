/* plot: format lists, quoting, the stacked-bar data (bottoms and tops), the scale CSV (efficiency
 * relative to the first point that fits) and what a figure writes when gnuplot is absent. No
 * gnuplot is run here; tests/integration/plot.sh renders and checks the images. */
#include "testutil.h"
#include "plot/plot.h"

#include <cjson/cJSON.h>

static void test_formats(void **state)
{
    unsigned f = 0;
    assert_true(plot_formats_parse("png", &f));
    assert_int_equal(f, PLOT_PNG);
    assert_true(plot_formats_parse("PDF, svg", &f));
    assert_int_equal(f, PLOT_PDF | PLOT_SVG);
    assert_true(plot_formats_parse("all", &f));
    assert_int_equal(f, PLOT_ALL);
    f = 99;
    assert_false(plot_formats_parse("bmp", &f));
    assert_false(plot_formats_parse("", &f));
    assert_false(plot_formats_parse("png,", &f));
    assert_int_equal(f, 99); /* untouched on error */
}

static void test_quote(void **state)
{
    char *q = plot_quote("a \"b\" \\c\nd");
    assert_string_equal(q, "a \\\"b\\\" \\\\c\\nd");
    g_free(q);
}

static void test_stacked_bars(void **state)
{
    PlotFigure *fig = plot_figure_new("bars", "t");
    double x[2] = {0, 2};
    char *labels[] = {"a", "b"};
    const char *names[] = {"one", "never", "three"};
    const char *colours[] = {"okabe_blue", "okabe_orange", "grey"};
    double values[] = {1, 0, 2, /* bar a */ 4, 0, 0.5 /* bar b */};
    char *marks[] = {NULL, "OOM"};
    plot_stacked_bars(fig, 2, x, labels, 3, names, colours, values, marks, 4.2, "capacity");
    /* segment "never" is zero everywhere: no block, no key entry; "three" sits on "one" */
    assert_null(strstr(fig->data->str, "never"));
    assert_non_null(strstr(fig->data->str, "# one: x bottom top\n0 0 1\n2 0 4\n\n\n"));
    assert_non_null(strstr(fig->data->str, "# three: x bottom top\n0 1 3\n2 4 4.5\n\n\n"));
    assert_non_null(strstr(fig->plot->str, "index 1 using"));
    assert_null(strstr(fig->plot->str, "index 2 using"));
    assert_non_null(strstr(fig->settings->str, "set label \"OOM\" at 2, 4.5"));
    assert_non_null(strstr(fig->settings->str, "first 4.2 to graph 1"));
    assert_non_null(strstr(fig->settings->str, "set xtics (\"a\" 0, \"b\" 2)"));
    /* without gnuplot on PATH: data and script written, success */
    char *dir = g_dir_make_tmp("fsdpsim-plot-XXXXXX", NULL);
    char *path = g_strdup(g_getenv("PATH"));
    g_setenv("PATH", "/nonexistent", TRUE);
    GError *error = NULL;
    PlotSet *set = plot_set_new("plot", dir, PLOT_PNG | PLOT_PDF, &error);
    g_setenv("PATH", path, TRUE);
    assert_non_null(set);
    assert_null(set->gnuplot);
    assert_true(plot_figure_finish(set, fig, &error));
    assert_true(set->noted);
    char *gp_file = g_build_filename(dir, "bars.gp", NULL), *gp = NULL;
    assert_true(g_file_get_contents(gp_file, &gp, NULL, NULL));
    assert_non_null(strstr(gp, "formats = \"png pdf\""));
    assert_non_null(strstr(gp, "okabe_blue = \"#0072B2\"")); /* the style is in the script */
    assert_non_null(strstr(gp, "\"bars.dat\" index 0"));
    char *dat = g_build_filename(dir, "bars.dat", NULL);
    assert_true(g_file_test(dat, G_FILE_TEST_IS_REGULAR));
    g_remove(dat), g_remove(gp_file), g_rmdir(dir);
    g_free(dat), g_free(gp), g_free(gp_file), g_free(path), g_free(dir);
    plot_set_free(set);
}

/* No two bar labels or OOM marks overlap at any size of `fsdpsim scale`'s figures: 1 to 3
 * strategies of 1 to 16 node counts (labels of up to 5 digits, 1 to 16384 nodes), grouped with a
 * gap of one bar, as figure_bars lays them out. Each label, in its direction, fits in the pitch
 * times how often labels are written; each mark fits in one pitch (text, upright text, or a
 * cross). And a 10-node-count, 3-strategy memory figure (the one whose labels ran together as
 * "163264") gets upright labels and upright marks in its script. */
static void test_bar_layout_never_collides(void **state)
{
    const double font_px = 16 * 5 / 3.0;
    for (int strategies = 1; strategies <= 3; strategies++)
        for (int counts = 1; counts <= 16; counts++) {
            int bars_span = strategies * (counts + 1) - 1; /* x of the last bar + 1 */
            int digits = counts > 14 ? 5 : counts > 10 ? 4 : counts > 7 ? 3 : counts > 4 ? 2 : 1;
            PlotBarLayout l = plot_bar_layout(bars_span - 1 + 1.4, digits, 3);
            if (l.label_px > 0.9 * l.pitch_px * l.label_every + 1e-9)
                fail_msg("%d strategies x %d counts: labels %.0f px in %.0f px x %d", strategies,
                         counts, l.label_px, l.pitch_px, l.label_every);
            double mark_px = l.mark_style == 0 ? 3 * 0.6 * font_px
                             : l.mark_style == 1 ? 1.2 * font_px
                                                 : 0;
            if (mark_px > 0.9 * l.pitch_px)
                fail_msg("%d strategies x %d counts: marks %.0f px in %.0f px", strategies, counts,
                         mark_px, l.pitch_px);
        }
    /* the wide case really turns: 3 x 10 bars of up to 3 digits */
    PlotFigure *fig = plot_figure_new("memory", "t");
    double x[30], values[30];
    char *labels[30], *marks[30];
    const char *names[] = {"one"}, *colours[] = {"okabe_blue"};
    for (int i = 0; i < 30; i++) {
        x[i] = (i / 10) * 11 + i % 10;
        labels[i] = g_strdup_printf("%d", 1 << (i % 10));
        marks[i] = "OOM";
        values[i] = 1;
    }
    plot_stacked_bars(fig, 30, x, labels, 1, names, colours, values, marks, 0, NULL);
    assert_non_null(strstr(fig->settings->str, "set xtics rotate by 90 right"));
    assert_non_null(strstr(fig->settings->str, "\"OOM\" at 31, 1 left rotate by 90"));
    assert_null(strstr(fig->settings->str, "\"OOM\" at 31, 1 center"));
    for (int i = 0; i < 30; i++)
        g_free(labels[i]);
    /* 120 bars: crosses, named in the key */
    PlotFigure *many = plot_figure_new("memory", "t");
    double xs[120], vs[120];
    char *ls[120], *ms[120];
    for (int i = 0; i < 120; i++)
        xs[i] = i, vs[i] = 1, ls[i] = "8", ms[i] = "OOM";
    plot_stacked_bars(many, 120, xs, ls, 1, names, colours, vs, ms, 0, NULL);
    assert_non_null(strstr(many->settings->str, "at 7, 1 point pt 2"));
    assert_non_null(strstr(many->plot->str, "pt 2 ps 2 lw 3 lc rgb okabe_vermillion title \"OOM\""));
    g_free(many->name);
    g_string_free(many->data, TRUE), g_string_free(many->settings, TRUE);
    g_string_free(many->plot, TRUE);
    g_free(many);
    g_free(fig->name);
    g_string_free(fig->data, TRUE), g_string_free(fig->settings, TRUE), g_string_free(fig->plot, TRUE);
    g_free(fig);
}

static cJSON *point(double tokens_per_s, int world, bool oom)
{
    char *text = g_strdup_printf(
        "{\"model_name\": \"M, v2\", \"topology\": \"t\", \"strategy\": \"ddp\", \"nodes\": 1, \"gpus_per_node\": 4,"
        " \"world_size\": %d, \"step_time_s\": 2, \"tokens_per_s\": %g, \"samples_per_s\": 1, \"tflops_per_gpu\": 1,"
        " \"mfu\": 0.5, \"time\": {\"compute_s\": 1.5, \"exposed_communication_s\": 0.25},"
        " \"memory\": {\"peak_bytes\": 10, \"capacity_bytes\": 20, \"oom\": %s, \"breakdown\": {\"params\": 3}}}",
        world, tokens_per_s, oom ? "true" : "false");
    cJSON *o = cJSON_Parse(text);
    g_free(text);
    return o;
}

static void test_scale_csv(void **state)
{
    const char *strategies[] = {"ddp"};
    int nodes[] = {1, 2, 4};
    /* 1 node does not fit; 2 nodes is the base of the efficiency */
    cJSON *points[] = {point(4000, 4, true), point(8000, 8, false), point(12000, 16, false)};
    PlotScale sc = {strategies, 1, nodes, 3, points, NULL};
    char *csv = plot_scale_csv(&sc);
    char **rows = g_strsplit(csv, "\n", -1);
    assert_int_equal(g_strv_length(rows), 5); /* header, 3 rows, "" after the last newline */
    assert_true(g_str_has_prefix(rows[0], "model,topology,strategy,nodes,gpus,step_time_s,throughput_per_gpu,"));
    /* the model name holds a comma: quoted; per GPU 1000; efficiency 1000 / 1000; the breakdown
     * other_wait = 2 - 1.5 - 0.25 - 0 */
    assert_true(g_str_has_prefix(rows[1], "\"M, v2\",t,ddp,1,4,2,1000,tokens/s,1,1,0.5,1.5,0.25,0,0.25,10,20,true,3,0,"));
    assert_true(g_str_has_prefix(rows[2], "\"M, v2\",t,ddp,2,8,2,1000,tokens/s,1,"));
    assert_true(g_str_has_prefix(rows[3], "\"M, v2\",t,ddp,4,16,2,750,tokens/s,0.75,"));
    g_strfreev(rows);
    g_free(csv);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(points[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_stacked_bars),
        cmocka_unit_test(test_bar_layout_never_collides),
        cmocka_unit_test(test_scale_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
