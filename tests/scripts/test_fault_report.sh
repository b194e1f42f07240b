#!/usr/bin/env bash
# tests/faults/report against small hand-made tables and cell logs: a cell
# passes only with an ok outcome for each version it is declared for; a
# "not ok" makes it FAIL, a version without an outcome makes it missing, and
# either fails the report; n/a cells need none; an outcome for an undeclared
# cell (a misspelt name) and a row and column that meet in no declaration
# fail it too. TAP output.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib/tap.sh
source "$here/lib/tap.sh"
report=$here/../faults/report

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/cells"
tab=$'\t'
{
    printf '# a comment, then the cells\n'
    printf 'server%sread EIO%sall%stested\n' "$tab" "$tab" "$tab"
    printf 'server%swrite EIO%s-%sn/a: the server writes nothing\n' "$tab" "$tab" "$tab"
    printf 'pg_datakey rewrap%sread EIO%snewest%stested\n' "$tab" "$tab" "$tab"
    printf 'pg_datakey rewrap%swrite EIO%snewest%stested\n' "$tab" "$tab" "$tab"
} >"$work/cells/io.tsv"

# log LINE...: a cell log of these "VERSION|ENTRY|FAULT|ok|NAME" lines.
log() {
    local l
    : >"$work/log"
    for l in "$@"; do tr '|' '\t' <<<"$l" >>"$work/log"; done
}

# Each check is an if: a failing condition is a "not ok", not errexit.
# run: the report on the two versions 17 and 18; sets out and rc.
run() {
    rc=0
    out=$("$report" --cells "$work/cells" --log "$work/log" --versions '17 18' 2>&1) || rc=$?
}

# cell ENTRY FAULT: the state the table shows for that cell.
cell() {
    perl -e '
        my ($entry, $fault, @lines) = @ARGV;
        my ($head) = grep { /\Q$fault\E/ } @lines;
        my ($row) = grep { /^  \Q$entry\E  / } @lines;
        defined $head && defined $row or exit 1;
        my $at = index($head, $fault);
        print substr($row, $at) =~ /^(\S+)/;
    ' "$1" "$2" "${out_lines[@]}"
}

all_ok=(
    '17|server|read EIO|ok|refused' '18|server|read EIO|ok|refused'
    '18|pg_datakey rewrap|read EIO|ok|refused' '18|pg_datakey rewrap|write EIO|ok|refused')

log "${all_ok[@]}"
run
mapfile -t out_lines <<<"$out"
ok "$rc" "every tested cell with an ok outcome for its versions: the report passes"
if [[ $(cell server 'read EIO') == pass && $(cell 'pg_datakey rewrap' 'write EIO') == pass ]]; then r=0; else r=1; fi
ok "$r" "those cells read pass"
if [[ $(cell server 'write EIO') == n/a ]]; then r=0; else r=1; fi
ok "$r" "an n/a cell reads n/a and needs no outcome"
if grep -q 'fault matrix: 4 cells, 3 tested: 3 pass, 0 FAIL, 0 missing; 1 n/a' <<<"$out"; then r=0; else r=1; fi
ok "$r" "the counts: cells, tested, pass, n/a"

log "${all_ok[@]}" '18|pg_datakey rewrap|write EIO|not ok|the old key opens'
run
mapfile -t out_lines <<<"$out"
if ((rc == 1)); then r=0; else r=1; fi
ok "$r" "a not ok outcome fails the report (status $rc)"
if [[ $(cell 'pg_datakey rewrap' 'write EIO') == FAIL ]] && grep -q 'FAIL .*write EIO: the old key opens' <<<"$out"; then r=0; else r=1; fi
ok "$r" "its cell reads FAIL, and the failed assertion is named"

log "${all_ok[@]:1}"
run
mapfile -t out_lines <<<"$out"
if ((rc == 1)) && [[ $(cell server 'read EIO') == missing ]] && grep -q 'no outcome for version 17' <<<"$out"; then r=0; else r=1; fi
ok "$r" "a version without an outcome: missing, and the report fails (status $rc)"

log "${all_ok[@]}" '18|pg_datakey rewrap|read EIOO|ok|a typo'
run
if ((rc == 1)) && grep -q 'read EIOO: an outcome (version 18) for a cell no table declares' <<<"$out"; then r=0; else r=1; fi
ok "$r" "an outcome for an undeclared cell fails the report (status $rc)"

log "${all_ok[@]}"
printf 'pg_datakey repair%sread EIO%snewest%stested\n' "$tab" "$tab" "$tab" >>"$work/cells/io.tsv"
printf '18\tpg_datakey repair\tread EIO\tok\trefused\n' >>"$work/log"
run
mapfile -t out_lines <<<"$out"
if ((rc == 1)) && [[ $(cell 'pg_datakey repair' 'write EIO') == undeclared ]]; then r=0; else r=1; fi
ok "$r" "a row and a column that meet in no declared cell fail the report (status $rc)"

rm "$work/log"
run
if ((rc == 1)) && grep -q 'No cell log' <<<"$out"; then r=0; else r=1; fi
ok "$r" "no cell log at all: every tested cell is missing (status $rc)"

printf 'server\tread EIO\tsome\ttested\n' >"$work/cells/io.tsv"
run
if ((rc == 2)); then r=0; else r=1; fi
ok "$r" "a declaration with bad VERSIONS is bad input (status $rc)"

done_testing
