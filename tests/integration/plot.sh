#!/usr/bin/env bash
# Integration tests of the figures: --plot, --report, `fsdpsim scale` and `fsdpsim compare --plot`. Each figure kind is
# rendered to PNG and checked to be a complete, valid image of the expected size (pngcheck.py);
# the timeline is decoded and must show the colours of compute and of all-gathers. Cases that need
# gnuplot are reported as TAP skips when it is not installed; the others (what is written without
# gnuplot, bad input, byte-identical output) always run.
#
# usage: plot.sh FSDPSIM SOURCE_ROOT. Prints TAP; exit status 1 if any case failed.
set -u

FSDPSIM=$1
SRC=$2
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
PNGCHECK=$SRC/tests/integration/pngcheck.py
BASE=(-m "$SRC/models/gpt.json" -t "$SRC/topologies/juwels-booster.json")
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-plot.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
OUT=$W/stdout ERR=$W/stderr
HAVE_GNUPLOT=false
command -v gnuplot >/dev/null && HAVE_GNUPLOT=true

fail() {
    local line
    while IFS= read -r line; do printf '# %s\n' "$line"; done <<<"$*"
    [ -s "$ERR" ] && printf '# stderr: %s\n' "$(head -c 600 "$ERR" | tr '\n' ' ')"
    return 1
}

# fsd ARGS...: fsdpsim with a time limit; stdout, stderr and status in OUT, ERR, RC
fsd() {
    timeout 60 "$FSDPSIM" "$@" >"$OUT" 2>"$ERR"
    RC=$?
}

expect_rc() { [ "$RC" -eq "$1" ] || fail "expected exit status $1, got $RC"; }

# png_ok FILE [COLOUR...]: a valid 1600x900 PNG (the default 16:9 size in style.gp)
png_ok() {
    local msg
    msg=$(python3 "$PNGCHECK" "$1" 1600 900 "${@:2}") || fail "$msg"
}

files_ok() { # DIR NAME...: data and script beside every figure
    local d=$1 n
    shift
    for n in "$@"; do
        [ -s "$d/$n.dat" ] || fail "$d/$n.dat missing or empty" || return 1
        [ -s "$d/$n.gp" ] || fail "$d/$n.gp missing or empty" || return 1
        grep -q "\"$n.dat\"" "$d/$n.gp" || fail "$n.gp does not read $n.dat" || return 1
    done
}

# --- cases that need gnuplot ------------------------------------------------------------------

t_run_figures_are_images() {
    fsd "${BASE[@]}" -s hybrid -n 2 --plot "$W/run" --plot-format png
    expect_rc 0 || return 1
    files_ok "$W/run" timeline memory memory_breakdown || return 1
    png_ok "$W/run/memory.png" || return 1
    png_ok "$W/run/memory_breakdown.png" || return 1
    # compute (Okabe-Ito blue) and all-gathers (orange) must be drawn on the timeline
    png_ok "$W/run/timeline.png" '#0072B2' '#E69F00' || return 1
    [ ! -e "$W/run/timeline.svg" ] || fail "--plot-format png also wrote an SVG"
}

t_run_svg_and_pdf() {
    fsd "${BASE[@]}" -n 1 --plot "$W/vec" --plot-format svg,pdf
    expect_rc 0 || return 1
    local n
    for n in timeline memory memory_breakdown; do
        head -c 300 "$W/vec/$n.svg" | grep -q '<svg' || fail "$n.svg is not SVG" || return 1
        grep -q 'viewBox="0 0 1600 900"' "$W/vec/$n.svg" || fail "$n.svg is not 1600x900" || return 1
        [ "$(head -c 5 "$W/vec/$n.pdf")" = "%PDF-" ] || fail "$n.pdf is not PDF" || return 1
        [ ! -e "$W/vec/$n.png" ] || fail "no PNG was asked for" || return 1
    done
}

t_regenerate_from_script() {
    # the promise to users: edit NAME.gp, run gnuplot in the folder, get the figure again
    fsd "${BASE[@]}" -n 1 --plot "$W/regen" --plot-format png
    expect_rc 0 || return 1
    rm "$W/regen/memory.png"
    (cd "$W/regen" && sed -i 's/^png_size = .*/png_size = "800,450"/' memory.gp && gnuplot memory.gp) 2>"$ERR" ||
        fail "gnuplot memory.gp failed" || return 1
    python3 "$PNGCHECK" "$W/regen/memory.png" 800 450 >/dev/null || fail "re-drawn memory.png is not 800x450"
}

t_scale_figures_are_images() {
    fsd scale "${BASE[@]}" --nodes 1,2,4 --strategy ddp,full --plot "$W/scale" --plot-format png -j 2
    expect_rc 0 || return 1
    files_ok "$W/scale" throughput efficiency breakdown memory || return 1
    local n
    for n in throughput efficiency breakdown memory; do png_ok "$W/scale/$n.png" || return 1; done
}

t_scale_oom_is_marked() {
    # Llama-2-7B with DDP cannot fit on a 40 GB A100 (16 bytes per parameter of model state alone)
    fsd scale -m "$SRC/models/llama2-7b.json" --nodes 1,2 --strategy ddp,full --plot "$W/oom" --plot-format png
    expect_rc 0 || return 1
    grep -q 'does not fit' "$OUT" || fail "the table does not say DDP does not fit" || return 1
    grep -q 'set label "OOM"' "$W/oom/memory.gp" || fail "memory.gp marks no OOM" || return 1
    grep -q 'does not fit (OOM)' "$W/oom/throughput.gp" || fail "throughput.gp has no OOM key" || return 1
    png_ok "$W/oom/memory.png"
}

t_report_run() {
    fsd "${BASE[@]}" -n 2 -s hybrid --report "$W/rep" --plot-format png
    expect_rc 0 || return 1
    local f
    for f in README.md result.json result.csv summary.txt trace.json; do
        [ -s "$W/rep/$f" ] || fail "report has no $f" || return 1
    done
    # every image the README shows exists and is a valid figure
    for f in $(grep -o '([a-z_]*\.png)' "$W/rep/README.md" | tr -d '()'); do
        png_ok "$W/rep/$f" || return 1
    done
    [ "$(grep -c '\.png)' "$W/rep/README.md")" -eq 3 ] || fail "README shows $(grep -c '\.png)' "$W/rep/README.md") images, expected 3" || return 1
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["step_time_s"] > 0' "$W/rep/result.json" ||
        fail "result.json is not the --json object" || return 1
    [ "$(wc -l <"$W/rep/result.csv")" -eq 2 ] || fail "result.csv should have a header and one row" || return 1
    # the command that made it, as the scaling report shows its own, so the numbers can be made again
    grep -qF -- "    fsdpsim ${BASE[*]} -n 2 -s hybrid --report $W/rep --plot-format png" "$W/rep/README.md" ||
        fail "README does not show the command line"
}

t_report_scale() {
    fsd scale "${BASE[@]}" --nodes 1,2 --strategy full,hybrid --report "$W/srep" --plot-format png
    expect_rc 0 || return 1
    [ "$(wc -l <"$W/srep/results.csv")" -eq 5 ] || fail "results.csv: expected header + 4 rows" || return 1
    local f
    for f in $(grep -o '([a-z_]*\.png)' "$W/srep/README.md" | tr -d '()'); do png_ok "$W/srep/$f" || return 1; done
    [ "$(grep -c '\.png)' "$W/srep/README.md")" -eq 4 ] || fail "README should show 4 figures" || return 1
    grep -q '| hybrid_shard | 2 | 8 |' "$W/srep/README.md" || fail "README table lacks the hybrid_shard 2-node row"
}

t_compare_figures() {
    "$FSDPSIM" "${BASE[@]}" -n 2 -s hybrid --trace "$W/sim.json" >/dev/null || fail "no trace" || return 1
    as_real "$W/sim.json" "$W/real.json" || fail "cannot dress the trace as fsdprun's" || return 1
    fsd compare --real "$W/real.json" --sim "$W/sim.json" --plot "$W/cmp" --plot-format png
    expect_rc 0 || return 1
    files_ok "$W/cmp" compare_timeline compare_error || return 1
    # compute (Okabe-Ito blue) and all-gathers (orange) on both timelines
    png_ok "$W/cmp/compare_timeline.png" '#0072B2' '#E69F00' || return 1
    png_ok "$W/cmp/compare_error.png" || return 1
    # real rows above simulated rows
    grep -q '^set ytics ("real class 0: host" 0, ' "$W/cmp/compare_timeline.gp" || fail "first row is not real" || return 1
    grep -q '"sim class 0: compute"' "$W/cmp/compare_timeline.gp" || fail "no simulated rows" || return 1
}

# --- cases that always run --------------------------------------------------------------------

t_no_gnuplot_still_writes_data_and_scripts() {
    # fsdpsim by its full path, gnuplot hidden from PATH
    PATH=/nonexistent "$(command -v timeout)" 60 "$FSDPSIM" "${BASE[@]}" -n 1 --plot "$W/nognu" >"$OUT" 2>"$ERR"
    RC=$?
    expect_rc 0 || return 1
    [ "$(grep -c 'gnuplot was not found' "$ERR")" -eq 1 ] || fail "expected one note about gnuplot" || return 1
    files_ok "$W/nognu" timeline memory memory_breakdown || return 1
    ! ls "$W/nognu"/*.png >/dev/null 2>&1 || fail "images written without gnuplot?"
}

t_scale_csv_is_deterministic() {
    fsd scale "${BASE[@]}" --nodes 1,2,4 --strategy ddp,hybrid --csv -j 1
    expect_rc 0 || return 1
    cp "$OUT" "$W/csv1"
    fsd scale "${BASE[@]}" --nodes 1,2,4 --strategy ddp,hybrid --csv -j 4
    cmp -s "$OUT" "$W/csv1" || fail "CSV differs between -j 1 and -j 4" || return 1
    [ "$(wc -l <"$OUT")" -eq 7 ] || fail "expected a header and 6 rows" || return 1
    head -1 "$OUT" | grep -q '^model,topology,strategy,nodes,gpus,step_time_s,' || fail "CSV header changed"
    # the hybrid row at 1 node must be the simulation of that point
    local want
    want=$("$FSDPSIM" "${BASE[@]}" --json -n 4 -s hybrid | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_time_s"])')
    awk -F, -v w="$want" '$3=="hybrid_shard" && $4==4 { if (($6 - w) ^ 2 > 1e-18) exit 1; found=1 } END { exit !found }' "$OUT" ||
        fail "the hybrid_shard 4-node row does not hold fsdpsim --json's step_time_s $want"
}

t_figure_files_are_deterministic() {
    PATH=/nonexistent "$FSDPSIM" "${BASE[@]}" -n 2 --plot "$W/d1" >/dev/null 2>&1
    PATH=/nonexistent "$FSDPSIM" "${BASE[@]}" -n 2 --plot "$W/d2" >/dev/null 2>&1
    local f
    for f in timeline.dat timeline.gp memory.dat memory.gp memory_breakdown.dat memory_breakdown.gp; do
        cmp -s "$W/d1/$f" "$W/d2/$f" || fail "$f differs between two runs" || return 1
    done
}

# cairo stamps the time of drawing into every PDF; fsdpsim fixes it (SOURCE_DATE_EPOCH, else 1970)
t_pdf_figures_are_byte_identical() {
    fsd "${BASE[@]}" -n 2 --plot "$W/p1" --plot-format pdf
    expect_rc 0 || return 1
    sleep 1.1 # a second later: a date to the second would differ
    fsd "${BASE[@]}" -n 2 --plot "$W/p2" --plot-format pdf
    expect_rc 0 || return 1
    local f
    for f in timeline memory memory_breakdown; do
        [ -s "$W/p1/$f.pdf" ] || fail "$f.pdf was not written" || return 1
        cmp -s "$W/p1/$f.pdf" "$W/p2/$f.pdf" || fail "$f.pdf differs between two runs" || return 1
    done
    grep -aq '/CreationDate (D:19700101000000Z)' "$W/p1/timeline.pdf" ||
        fail "timeline.pdf does not carry the fixed date" || return 1
    SOURCE_DATE_EPOCH=1700000000 fsd "${BASE[@]}" -n 2 --plot "$W/p3" --plot-format pdf
    grep -aq '/CreationDate (D:20231114221320Z)' "$W/p3/timeline.pdf" ||
        fail "SOURCE_DATE_EPOCH=1700000000 is not the PDF's date"
}

# as_real SIM OUT: a simulated trace dressed as fsdprun's (one measured iteration, the step time
# of the simulation); its process names keep the rank classes, so compare weights them alike
as_real() {
    python3 - "$1" "$2" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
end = 0
for e in t["traceEvents"]:
    if e.get("ph") == "X":
        e.setdefault("args", {})["iter"] = 0
        end = max(end, e["ts"] + e["dur"])
t["otherData"] = {"generator": "fsdprun", "step_time_s": [end * 1e-6]}
json.dump(t, open(sys.argv[2], "w"))
PY
}

t_compare_table() {
    "$FSDPSIM" "${BASE[@]}" -n 2 -s hybrid --trace "$W/a.json" >/dev/null || fail "no trace" || return 1
    as_real "$W/a.json" "$W/a-real.json" || fail "cannot dress the trace as fsdprun's" || return 1
    # a trace against itself: the step and every kind's error is exactly 0
    fsd compare --real "$W/a-real.json" --sim "$W/a.json"
    expect_rc 0 || return 1
    grep -q '^  allgather .* +0.0%$' "$OUT" || fail "allgather row missing or non-zero error" || return 1
    grep -q '^step time .* +0.0%$' "$OUT" || fail "step time row missing or non-zero error" || return 1
    [ "$(grep -c '%$' "$OUT")" -eq "$(grep -c '[+-]0.0%$' "$OUT")" ] || fail "a trace differs from itself" || return 1
    # a PyTorch profiler trace (DLRM, 8 x V100): its NCCL kernels are classified by the
    # collective their annotation names (all_to_all runs as ncclKernel_SendRecv), else by name
    local k=$SRC/../shared/data/kineto/dlrm-v100-8rank/worker0_step_12.1694128201545.pt.trace.json
    if [ -f "$k" ]; then
        fsd compare --real "$k" --sim "$W/a.json"
        expect_rc 0 || return 1
        grep -q 'pytorch-profiler, 1 ProfilerSteps (each the median over the ranks), 1 ranks' "$OUT" || fail "not read as a profiler trace" || return 1
        grep -q '^  alltoall ' "$OUT" || fail "nccl:all_to_all's SendRecv kernels not counted as alltoall" || return 1
        ! grep -q '^  send/recv ' "$OUT" || fail "nccl:all_to_all's SendRecv kernels counted as send/recv" || return 1
        grep -q '^  allreduce ' "$OUT" || fail "ncclKernel_AllReduce not counted" || return 1
    fi
}

t_compare_bad_input() {
    echo 'not json' >"$W/bad.json"
    "$FSDPSIM" "${BASE[@]}" -n 1 --trace "$W/ok.json" >/dev/null
    fsd compare --real "$W/bad.json" --sim "$W/ok.json" --plot "$W/nope"
    expect_input_error "bad.json" "malformed JSON" || return 1
    [ ! -e "$W/nope" ] || fail "a folder was created for bad input" || return 1
    # the simulated trace as the real one: named, nothing written
    fsd compare --real "$W/ok.json" --sim "$W/ok.json" --plot "$W/nope"
    expect_input_error "ok.json" "otherData.generator" '"fsdprun"' || return 1
    [ ! -e "$W/nope" ] || fail "a folder was created for bad input" || return 1
    fsd compare --sim "$W/ok.json"
    expect_input_error "--real" "required" || return 1
    fsd compare --real "$W/ok.json" --sim "$W/ok.json" --plot "$W/nope" --plot-format gif
    expect_input_error "--plot-format" '"gif"' || return 1
    # the old command name says where it went
    fsd compare-traces --real "$W/ok.json" --simulated "$W/ok.json"
    expect_input_error "compare-traces is now compare" "--plot DIR"
}

t_progress_only_on_a_terminal() {
    fsd scale "${BASE[@]}" --nodes 1,2 --strategy ddp
    expect_rc 0 || return 1
    [ ! -s "$ERR" ] || fail "stderr is not a terminal, yet something was written to it"
}

expect_input_error() { # WORD...: status 2, empty stdout, one line naming the WORDs
    expect_rc 2 || return 1
    [ ! -s "$OUT" ] || fail "stdout should be empty" || return 1
    local w
    for w in "$@"; do grep -qF -- "$w" "$ERR" || fail "stderr does not mention '$w'" || return 1; done
}

t_bad_plot_format() {
    fsd "${BASE[@]}" --plot "$W/bad" --plot-format bmp
    expect_input_error "--plot-format" "png, svg, pdf" '"bmp"' || return 1
    [ ! -e "$W/bad" ] || fail "a directory was created for bad input"
}

t_plot_dir_not_creatable() {
    fsd "${BASE[@]}" --plot "$W/no/such/dir"
    expect_input_error "--plot" "no such parent directory" || return 1
    : >"$W/afile"
    fsd "${BASE[@]}" --report "$W/afile"
    expect_input_error "--report" "not a directory"
}

t_scale_bad_nodes() {
    fsd scale --nodes 4,2
    expect_input_error "--nodes" "ascending" '"4,2"' || return 1
    fsd scale --nodes 1,x
    expect_input_error "--nodes" '"1,x"' || return 1
    fsd scale --strategy ddp,ddp
    expect_input_error "--strategy" "distinct"
}

t_scale_relays_simulation_errors() {
    fsd scale "${BASE[@]}" --nodes 1,2 --strategy ddp,bogus
    expect_input_error "--strategy" '"bogus"' "--strategy bogus --nodes 1" || return 1
    fsd scale "${BASE[@]}" --nodes 1 --micro-batch -3
    expect_input_error "--micro-batch" || return 1
    fsd scale "${BASE[@]}" --trace "$W/t.json"
    expect_input_error "--trace" "scaling study"
}

CASES_GNUPLOT=(t_run_figures_are_images t_run_svg_and_pdf t_regenerate_from_script t_scale_figures_are_images
               t_scale_oom_is_marked t_report_run t_report_scale t_compare_figures
               t_pdf_figures_are_byte_identical)
CASES=(t_no_gnuplot_still_writes_data_and_scripts t_scale_csv_is_deterministic t_figure_files_are_deterministic
       t_progress_only_on_a_terminal t_bad_plot_format t_plot_dir_not_creatable t_scale_bad_nodes
       t_scale_relays_simulation_errors t_compare_table t_compare_bad_input)

echo "1..$((${#CASES_GNUPLOT[@]} + ${#CASES[@]}))"
n=0 failed=0
for fn in "${CASES_GNUPLOT[@]}" "${CASES[@]}"; do
    n=$((n + 1))
    : >"$OUT"
    : >"$ERR"
    if [ "$HAVE_GNUPLOT" = false ] && [[ " ${CASES_GNUPLOT[*]} " == *" $fn "* ]]; then
        echo "ok $n - ${fn#t_} # SKIP gnuplot is not installed (Debian: gnuplot-nox)"
        continue
    fi
    if "$fn" >"$W/diag"; then
        echo "ok $n - ${fn#t_}"
    else
        echo "not ok $n - ${fn#t_}"
        failed=$((failed + 1))
    fi
    cat "$W/diag"
done
[ "$failed" -eq 0 ]
