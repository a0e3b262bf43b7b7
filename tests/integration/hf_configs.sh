#!/usr/bin/env bash
# Real Hugging Face config.json files load as transformers saves them (issue 19). For every
# architecture fsdpsim reads, the shipped model file without its "fsdpsim" section is the
# published config.json: it must load (exit 0) with nothing on stderr and print the published
# parameter total; with save_pretrained's bookkeeping keys added it must still load and name those
# keys once, in one note line on stderr.
#
# usage: hf_configs.sh FSDPSIM SOURCE_ROOT. Prints TAP; exit status 1 if any case failed.
set -u
FSDPSIM=$1
SRC=$2
TOPO=$SRC/topologies/juwels-booster.json
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdpsim-hf.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
n=0 failed=0
check() { # check NAME STATUS WHY
    n=$((n + 1))
    if [ "$2" = 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; echo "# $3"; failed=$((failed + 1)); fi
}
for f in bert-large falcon-7b gemma-7b gemma2-9b gpt-neox-20b gpt2 llama3-8b mistral-7b phi3-mini \
    qwen2.5-7b roberta-large vit-l16 mixtral-8x7b qwen1.5-moe-a2.7b t5-base; do
    python3 - "$SRC/models/$f.json" "$W/$f.json" "$W/$f.want" "$W/$f-saved.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
fs = d.pop("fsdpsim")
json.dump(d, open(sys.argv[2], "w"), indent=2)
open(sys.argv[3], "w").write("%.3f B parameters" % (fs["published_params"] / 1e9))
# what save_pretrained and the Hub add on top of the published file
d.update(_attn_implementation_autoset=True, n_special=0,
         quantization_config={"load_in_4bit": True, "quant_method": "bitsandbytes"})
json.dump(d, open(sys.argv[4], "w"), indent=2)
PY
    "$FSDPSIM" -m "$W/$f.json" -t "$TOPO" --nodes 2 >"$W/out" 2>"$W/err"
    rc=$?
    want=$(cat "$W/$f.want")
    why="exit $rc, stderr: $(head -c 400 "$W/err")"
    [ $rc = 0 ] && [ ! -s "$W/err" ] && grep -q "$want" "$W/out"
    check "$f/as-published" $? "$why; expected '$want' on stdout"
    "$FSDPSIM" -m "$W/$f-saved.json" -t "$TOPO" --nodes 2 >"$W/out" 2>"$W/err"
    rc=$?
    why="exit $rc, stderr: $(head -c 400 "$W/err")"
    [ $rc = 0 ] && [ "$(wc -l <"$W/err")" = 1 ] &&
        grep -q "note: .*not read: .*_attn_implementation_autoset.*n_special.*quantization_config" "$W/err"
    check "$f/save-pretrained-bookkeeping-noted" $? "$why"
done
echo "1..$n"
[ $failed = 0 ]
