#!/usr/bin/env bash
# Makes the real pg_control seeds of fuzz_pg_control and what pg_controldata
# prints for each (tests/unit/pg_controldata/NAME.txt, compared field by
# field by tests/unit/test_real_control_files.cpp): one cluster per kind,
# made by the real initdb of build/pg-N (15, 17, 18) and of Debian's stock
# postgresql-15 (pg_control version 1300), then removed. Run it as the user
# that runs the servers (initdb refuses root), from the top of the tree:
#   tests/fuzz/make_real_pg_control.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seeds=tests/fuzz/corpus/fuzz_pg_control
expected=tests/unit/pg_controldata
work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

# make_one NAME BINDIR INITDB-OPTION...
make_one() {
    local name=$1 bin=$2
    shift 2
    "$bin/initdb" -D "$work/$name" -A trust -U postgres "$@" >"$work/$name.log" 2>&1 || {
        cat "$work/$name.log" >&2
        return 1
    }
    install -m 644 "$work/$name/global/pg_control" "$seeds/real_$name"
    LC_ALL=C "$bin/pg_controldata" "$work/$name" >"$expected/$name.txt"
    rm -rf -- "$work/$name"
}

mkdir -p "$expected"
for v in 15 17 18; do
    bin=build/pg-$v/bin
    make_one "pg${v}_plain" "$bin"
    # Checksums on, so that the field before the encryption fields is not 0.
    make_one "pg${v}_encrypted_128_checksums" "$bin" --data-encryption=128 --no-key-wrap -k
    make_one "pg${v}_encrypted_256" "$bin" --data-encryption=256 --no-key-wrap
done
make_one pg15_stock /usr/lib/postgresql/15/bin
