# Sourced by fsdprun.sh and fsdprun_nccl.sh: a work directory removed on exit, mpirun as root on
# this one machine (shared memory only, a time limit), and TAP output (check; tap_end).
W=$(mktemp -d "${TMPDIR:-/tmp}/fsdprun-test.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=vader,self
# Open MPI's session folder in a temporary folder of this test's own: the jobs of other users of
# the machine (same uid) do not share it, and what a job leaves behind can be seen (fault tests)
mkdir -p "$W/ompi"
MPIRUN=(env TMPDIR="$W/ompi" timeout 120 mpirun --oversubscribe --bind-to none)
n=0 failed=0
check() { # name, then a command that must succeed
    local name=$1; shift
    n=$((n + 1))
    if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; failed=$((failed + 1)); fi
}
tap_end() {
    echo "1..$n"
    [ $failed -eq 0 ]
}
MODEL=$SRC/tests/validation/tiny-gpt.json TOPO=$SRC/topologies/hgx-a100-40gb.json
