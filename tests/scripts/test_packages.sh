#!/usr/bin/env bash
# The package check of scripts/lib/common.sh, under the shell options the
# scripts use (set -euo pipefail), on names dpkg has never heard of: the
# case only a fresh machine meets. Also the path of a user who can neither
# install packages nor use sudo: one clear error, nothing built. TAP output.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)

# shellcheck source=lib/tap.sh
source "$here/lib/tap.sh"
# check NAME COMMAND...: passes when COMMAND succeeds (never trips errexit).
check() {
    local name=$1
    shift
    if "$@"; then ok 0 "$name"; else ok 1 "$name"; fi
}
contains() { [[ $1 == *"$2"* ]]; }
is() { # is GOT WANT NAME
    local rc=0
    [[ $1 == "$2" ]] || rc=1
    ok "$rc" "$3"
    ((rc == 0)) || printf '#   got:  %q\n#   want: %q\n' "$1" "$2"
}

if [[ $(id -u) -eq 0 ]]; then
    # As root the no-sudo case cannot happen; scripts/test runs this as
    # the unprivileged user.
    echo "Bail out! run through scripts/test (as an ordinary user), not as root"
    exit 1
fi

# shellcheck source=../../scripts/lib/common.sh
source "$repo/scripts/lib/common.sh"

unknown=fe-datakey-no-such-package-$$
installed=$(dpkg-query -W -f='${Package}\n' bash)

is "$(missing_deps "$installed")" "" "missing_deps: an installed package is not missing"
is "$(missing_deps "$unknown")" "$unknown" "missing_deps: a package dpkg never heard of is missing"
is "$(missing_deps "$installed" "$unknown" bash)" "$unknown" \
    "missing_deps: an unknown package among installed ones is the only one listed"

# The form that once ended early and reported nothing: a process
# substitution under errexit and pipefail.
list=()
mapfile -t list < <(missing_deps "$unknown" "$installed" "$unknown-2")
is "${list[*]}" "$unknown $unknown-2" "missing_deps: complete through a process substitution under set -euo pipefail"

rc=0
out=$(missing_deps "$unknown") || rc=$?
is "$rc" 0 "missing_deps: exit status 0 even when dpkg-query fails"

# A user without password-less sudo, on a machine that lacks a package: a
# copy of the scripts whose DEPS has one package this machine does not have,
# and a sudo that refuses as `sudo -n` does when it would ask for a password.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/repo" "$scratch/bin"
cp -a "$repo/scripts" "$scratch/repo/"
sed -i "s/^DEPS=(\$/DEPS=(\\n    $unknown/" "$scratch/repo/scripts/lib/common.sh"
check "the scratch copy's DEPS names the unknown package" \
    grep -q "^    $unknown\$" "$scratch/repo/scripts/lib/common.sh"
printf '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n' >"$scratch/bin/sudo"
chmod +x "$scratch/bin/sudo"

rc=0
# Not as the unprivileged half of a root run (scripts/test sets that).
err=$(env -u FE_DATAKEY_DELEGATED PATH="$scratch/bin:$PATH" "$scratch/repo/scripts/build" --no-pg 2>&1 >/dev/null) || rc=$?
ok "$((rc == 0))" "scripts/build without root or sudo fails when a package is missing"
check "the error names the missing package" contains "$err" "missing packages: $unknown"
check "the error gives the one command that installs it" \
    contains "$err" "Run once as root: $scratch/repo/scripts/build --system-only"
check "the error also gives the plain apt-get command" \
    contains "$err" "apt-get install --no-install-recommends $unknown"
check "nothing was built or written (no build/ directory)" test ! -e "$scratch/repo/build"
((failed == 0)) || printf '# output was:\n%s\n' "$(sed 's/^/#   /' <<<"$err")"

rc=0
err=$(env -u FE_DATAKEY_DELEGATED PATH="$scratch/bin:$PATH" "$scratch/repo/scripts/build" --system-only 2>&1 >/dev/null) || rc=$?
ok "$((rc == 0))" "scripts/build --system-only refuses without root or sudo"
check "and says why" contains "$err" "needs root or password-less sudo"

done_testing
