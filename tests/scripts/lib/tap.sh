# shellcheck shell=bash
# TAP output for the scripts' own tests: ok STATUS NAME counts a test
# (STATUS 0 passes), done_testing prints the plan and fails if one failed.
n=0 failed=0
ok() { # ok COND_STATUS NAME
    n=$((n + 1))
    if (($1 == 0)); then
        printf 'ok %d - %s\n' "$n" "$2"
    else
        printf 'not ok %d - %s\n' "$n" "$2"
        failed=$((failed + 1))
    fi
}
done_testing() {
    printf '1..%d\n' "$n"
    ((failed == 0))
}
