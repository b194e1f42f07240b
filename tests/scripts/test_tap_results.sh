#!/usr/bin/env bash
# The check a pg-* stage makes of its suite (scripts/lib/tap_results.sh), on
# the output of each build system as it looks: a series test that skipped,
# failed or never ran, and a suite in which nothing ran, each fail it. TAP.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
# shellcheck source=lib/tap.sh
source "$here/lib/tap.sh"
note() { printf '# %s\n' "$*"; }
# shellcheck source=../../scripts/lib/tap_results.sh
source "$repo/scripts/lib/tap_results.sh"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passes() { if tap_results_check "$@" >/dev/null; then echo yes; else echo no; fi; }
is() { # is GOT WANT NAME
    local rc=0
    [[ $1 == "$2" ]] || rc=1
    ok "$rc" "$3"
    ((rc == 0)) || printf '#   got:  %q\n#   want: %q\n' "$1" "$2"
}

# make check's prove output, as PostgreSQL 15 prints it.
cat >"$work/ran.log" <<'LOG'
# +++ tap check in src/bin/initdb +++
t/001_initdb.pl ............ ok
t/002_data_encryption.pl ... ok
All tests successful.
LOG
cat >"$work/skipped.log" <<'LOG'
t/001_initdb.pl ............ ok
t/002_data_encryption.pl ... skipped: data encryption key support not built
LOG
cat >"$work/failed.log" <<'LOG'
t/001_initdb.pl ............ ok
t/002_data_encryption.pl ... Dubious, test returned 1 (wstat 256, 0x100)
LOG
printf 'All tests successful.\n' >"$work/none.log"
for f in ran skipped failed none; do tap_results_from_prove "$work/$f.log" >"$work/$f.results"; done
is "$(cat "$work/ran.results")" "001_initdb ok
002_data_encryption ok" "prove: each file's result is read"
is "$(passes "$work/ran.results" 002_data_encryption)" yes "prove: the series' test ran and passed"
is "$(passes "$work/skipped.results" 002_data_encryption)" no "prove: a skipped series test fails the stage"
is "$(passes "$work/failed.results" 002_data_encryption)" no "prove: a failed series test fails the stage"
is "$(passes "$work/ran.results" 003_missing)" no "prove: a series test that never ran fails the stage"
is "$(passes "$work/none.results")" no "prove: a suite in which nothing ran fails, even with no series test"

# meson's testlog.json, one object a line.
cat >"$work/testlog.json" <<'LOG'
{"name": "setup/tmp_install", "result": "OK", "duration": 1.0}
{"name": "initdb/001_initdb", "result": "OK", "duration": 2.0}
{"name": "initdb/002_data_encryption", "result": "SKIP", "duration": 0.1}
LOG
tap_results_from_meson "$work/testlog.json" >"$work/meson.results"
is "$(passes "$work/meson.results" 001_initdb)" yes "meson: a test that passed passes"
is "$(passes "$work/meson.results" 002_data_encryption)" no "meson: SKIP fails the stage"
sed -i 's/"SKIP"/"FAIL"/' "$work/testlog.json"
tap_results_from_meson "$work/testlog.json" >"$work/meson.results"
is "$(passes "$work/meson.results" 002_data_encryption)" no "meson: FAIL fails the stage"
printf '%s\n' '{"name": "setup/tmp_install", "result": "OK"}' >"$work/empty.json"
tap_results_from_meson "$work/empty.json" >"$work/empty.results"
is "$(passes "$work/empty.results")" no "meson: no test but the setup (No suitable tests defined) fails"
done_testing
