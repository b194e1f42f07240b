#!/usr/bin/env bash
# As root: the library's commands where there is no /bin/bash, as on a
# system without it (command_shell() falls back to /bin/sh, which has no
# pipefail). In a mount namespace of its own, /dev/null is bound over bash,
# so that access("/bin/bash", X_OK) fails; the unit tests of running
# commands then run as the build user under /bin/sh. Each must run and
# pass: a skip fails here. TAP output.
# Not -e: a failed check is a "not ok" line, not the end of the run.
set -uo pipefail

# shellcheck source=lib/root.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/root.sh"
unit=${FE_DATAKEY_UNIT_TESTS:-$repo/build/default/tests/unit/fe_datakey_unit_tests}
owner=${FE_DATAKEY_PG_USER:-fe_datakey}
[[ -x $unit ]] || {
    echo "Bail out! no $unit (build the default preset first)"
    exit 1
}
# The program where the build user can run it: the clone may lie below a
# directory only root may enter (as pg_datakey_trust.sh does with pg_datakey).
work=$(mktemp -d /tmp/fe_datakey-root-nobash.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
cp "$unit" "$work/unit_tests"
chmod 0755 "$work/unit_tests"
unit=$work/unit_tests
bash_path=$(readlink -f /bin/bash)
suites='Command.*:Runner.*:Interrupted.*:Leftovers.*:Store.*:Terminal.*'
out=$(cd "$work" && unshare --mount --propagation private -- /bin/sh -c '
    mount --bind /dev/null "$1" || exit 90
    [ -x /bin/bash ] && exit 91
    shift
    exec runuser -u "$@"' sh "$bash_path" "$owner" -- "$unit" --gtest_filter="$suites" 2>&1)
rc=$?
check() { ok "$@"; }
hidden=0
grep -q '^\[==========\] Running' <<<"$out" || hidden=1 # the tests never started
((rc != 90 && rc != 91)) || hidden=1
check "$hidden" "/bin/bash is hidden in the namespace and the tests start (status $rc)"
check "$rc" "the command tests pass under /bin/sh"
check "$(grep -q '^\[  SKIPPED \]' <<<"$out" && echo 1 || echo 0)" "none of them is skipped"
count=$(sed -n 's/^\[==========\] \([0-9]*\) tests from.*ran.*/\1/p' <<<"$out")
check "$( ((${count:-0} >= 40)) && echo 0 || echo 1)" "they ran (${count:-0} tests)"
# The fallback itself: the test that names the shell expects /bin/sh there.
check "$(grep -q '^\[       OK \] Command.NamesAndShell' <<<"$out" && echo 0 || echo 1)" \
    "command_shell() is /bin/sh without bash"
# On stderr, so that prove shows it.
((rc == 0)) || tail -n 30 <<<"$out" | sed 's/^/# /' >&2
done_testing
