#!/usr/bin/env bash
# Bash completion (tools/completion/fsdpsim.bash) and the man page (help2man, when it was found)
# (issue 19, point 7). Each case fails if the completion offers the wrong words.
#
# usage: completion.sh FSDPSIM SOURCE_ROOT [MANPAGE]. Prints TAP; exit status 1 if any failed.
set -u
FSDPSIM=$1
SRC=$2
MAN=${3:-}
case $FSDPSIM in /*) ;; *) FSDPSIM=$PWD/$FSDPSIM ;; esac
cd "$SRC" || exit 1
# shellcheck source=/dev/null
source tools/completion/fsdpsim.bash
n=0 failed=0
# completes WANT WORD...: completing the last WORD offers every word of WANT
completes() {
    local want=$1
    shift
    n=$((n + 1))
    COMP_WORDS=("$FSDPSIM" "$@")
    COMP_CWORD=$(($# ))
    COMPREPLY=()
    _fsdpsim
    local got=" ${COMPREPLY[*]} " w missing=""
    for w in $want; do
        [[ $got == *" $w "* ]] || missing="$missing $w"
    done
    if [ -z "$missing" ]; then echo "ok $n - $* -> $want"; else
        echo "not ok $n - $*"; echo "# missing:$missing; offered:$got"; failed=$((failed + 1)); fi
}
completes "jureca-dc jupiter-booster jusuf juwels-booster" -t ju
completes "llama2-7b llama2-70b llama3-8b" --model lla
completes "--strategy" --strat
completes "--reference --max-bytes" collective --
completes "scale" sc
completes "models" list m
completes "--max-minutes --go-on --keep" validate --
if [ -n "$MAN" ]; then
    n=$((n + 1))
    if grep -q -- 'topology' "$MAN" && grep -q '^\.SH' "$MAN" && grep -q 'list' "$MAN"; then
        echo "ok $n - man page from --help"
    else
        echo "not ok $n - man page from --help"; failed=$((failed + 1))
    fi
fi
echo "1..$n"
[ $failed = 0 ]
