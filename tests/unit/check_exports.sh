#!/usr/bin/env bash
# Usage: check_exports.sh LIBRARY HEADER
# The shared library's dynamic symbol table holds the C API and nothing else:
# every defined symbol is an fe_datakey_* function declared in HEADER, and
# every function HEADER declares is there.
set -euo pipefail
lib=$1 header=$2

defined=$(nm -D --defined-only "$lib" | awk '{ print $NF }' | sort -u)
declared=$(grep -oE '\bfe_datakey_[a-z0-9_]+\(' "$header" | tr -d '(' | sort -u)
[[ -n $declared ]] || { echo "no function declarations found in $header" >&2; exit 1; }

rc=0
extra=$(comm -23 <(printf '%s\n' "$defined") <(printf '%s\n' "$declared"))
if [[ -n $extra ]]; then
    echo "exported but not part of the C API ($(wc -l <<<"$extra") symbols):" >&2
    head -n 20 <<<"$extra" >&2
    rc=1
fi
missing=$(comm -13 <(printf '%s\n' "$defined") <(printf '%s\n' "$declared"))
if [[ -n $missing ]]; then
    echo "declared in $(basename "$header") but not exported:" >&2
    printf '%s\n' "$missing" >&2
    rc=1
fi
((rc == 0)) && echo "$(wc -l <<<"$defined") symbols, all of them the C API"
exit "$rc"
