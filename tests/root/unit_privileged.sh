#!/usr/bin/env bash
# As root (scripts/test runs it while still root, after the unprivileged
# run has built the unit tests): the unit tests that need privileges, which
# ctest leaves out (ConfPrivileged.*). A rewritten configuration file keeps
# another user's owner and group (root), fails before anything is renamed
# when its owner cannot be kept (a child drops to nobody), and keeps a
# supplementary group of an unprivileged writer (the build user, given a
# second group with setpriv). Each must run and pass: a skip fails here.
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
work=$(mktemp -d /tmp/fe_datakey-root-unit.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"

# passed_all OUTPUT N: gtest ran N tests, all passed, none skipped.
passed_all() {
    grep -qxF "[  PASSED  ] $2 test$( (($2 > 1)) && echo s)." <<<"$1" &&
        ! grep -q '^\[  SKIPPED \]\|^\[  FAILED  \]' <<<"$1"
}

rc=0
out=$(cd "$work" && "$unit" --gtest_filter='ConfPrivileged.RootKeeps*:ConfPrivileged.AnOwnerThatCannotBeKept*' 2>&1) || rc=$?
ok "$rc" "as root: the two root-only ConfPrivileged tests exit 0"
passed_all "$out" 2
ok $? "as root: both ran and passed, none skipped"
((rc == 0)) || printf '# %s\n' "${out//$'\n'/$'\n# '}"

# The build user with a second group (users, gid 100 on Debian).
second=$(getent group users | cut -d: -f3)
chown "$owner:" "$work"
rc=0
out=$(cd "$work" && setpriv --reuid="$owner" --regid="$(id -g "$owner")" --groups="$(id -g "$owner"),$second" \
    --reset-env -- "$unit" --gtest_filter='ConfPrivileged.SetKeepsASupplementaryGroupOfTheWriter' 2>&1) || rc=$?
ok "$rc" "as $owner with a second group: the supplementary-group test exits 0"
passed_all "$out" 1
ok $? "as $owner with a second group: it ran and passed, not skipped"
((rc == 0)) || printf '# %s\n' "${out//$'\n'/$'\n# '}"

done_testing
