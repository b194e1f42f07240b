#!/usr/bin/env bash
# The "# Versions:" line of an e2e file (scripts/lib/e2e_versions.sh): the
# forms the runner reads pass, and a line it would misread or a version it
# does not know is reported, so that the e2e stage fails instead of running
# the file where it was not meant to, or nowhere. TAP output.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
# shellcheck source=lib/tap.sh
source "$here/lib/tap.sh"
PG_VERSIONS=(15 17 18)
# shellcheck source=../../scripts/lib/e2e_versions.sh
source "$repo/scripts/lib/e2e_versions.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
problem_of() { # problem_of FILE-TEXT
    printf '%s\nuse strict;\n' "$1" >"$work/t.pl"
    e2e_versions_problem "$work/t.pl"
}
for good in "# Versions: newest" "# Versions: 17 18" "# Versions: across" "# Versions: 15 newest" "# no such line"; do
    p=$(problem_of "$good")
    ok "$([[ -z $p ]] && echo 0 || echo 1)" "accepted: $good"
done
for bad in "# Versions: 16" "# Version: 15" "#Versions: 15" "# versions: newest" "# Versions: across 15" "# Versions:"; do
    p=$(problem_of "$bad")
    ok "$([[ -n $p ]] && echo 0 || echo 1)" "reported: $bad${p:+ ($p)}"
done
is_newest=$(printf '# Versions: newest\n' >"$work/n.pl" && e2e_versions "$work/n.pl")
ok "$([[ $is_newest == newest ]] && echo 0 || echo 1)" "e2e_versions reads the line's value"
# Every file of the tree has a line the runner reads.
bad_files=0
for f in "$repo"/tests/e2e/*.pl; do
    p=$(e2e_versions_problem "$f")
    [[ -z $p ]] || { printf '# %s: %s\n' "${f#"$repo"/}" "$p"; bad_files=$((bad_files + 1)); }
done
ok "$bad_files" "every tests/e2e file's Versions line is one the runner reads"
done_testing
