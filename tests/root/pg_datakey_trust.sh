#!/usr/bin/env bash
# As root (scripts/test runs it while still root, after the unprivileged
# run): pg_datakey refuses root, and refuses a user other than the data
# directory's owner, before anything there is read; a planted postmaster.opts
# and postgresql.auto.conf never run. The cluster is made by its owner
# (fe_datakey); "another user" is nobody. TAP output.
# Not -e: a failed check is a "not ok" line, not the end of the run.
set -uo pipefail

# shellcheck source=lib/root.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/root.sh"
pg_bin=${FE_DATAKEY_PG_BIN:?FE_DATAKEY_PG_BIN names the patched PostgreSQL bin directory}
datakey=${FE_DATAKEY_BIN:-$repo/build/fe_datakey/bin}/pg_datakey
owner=${FE_DATAKEY_PG_USER:-fe_datakey}
other=nobody
[[ -x $datakey && -x $pg_bin/initdb ]] || {
    echo "Bail out! no $datakey or $pg_bin/initdb"
    exit 1
}

work=$(mktemp -d /tmp/fe_datakey-root-trust.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
chown "$owner:" "$work"
marks=$work/marks
mkdir "$marks"
chmod 1777 "$marks" # any user could leave a marker here
pgdata=$work/data
# The program itself where every user can run it: the clone may lie below a
# directory that only root and the build user can enter (scripts/test grants
# the build user access), and the refusal must come from pg_datakey, not
# from the file system. It links libfe_datakey statically.
mkdir "$work/bin"
cp "$datakey" "$work/bin/pg_datakey"
chmod 0755 "$work/bin" "$work/bin/pg_datakey"
datakey=$work/bin/pg_datakey
runuser -u "$owner" -- "$pg_bin/initdb" -D "$pgdata" -A trust -N --no-instructions -y \
    '--key-wrap-command=cat > "%p"' '--key-unwrap-command=cat "%p"' >"$work/initdb.log" 2>&1 || {
    echo "Bail out! initdb failed: $(tail -n 5 "$work/initdb.log")"
    exit 1
}
# The planted files, and a data directory anyone may read: without the
# checks, nothing would stop root or nobody from reading and running them.
printf '/bin/sh "-c" "touch %s/opts"\n' "$marks" >"$pgdata/postmaster.opts"
printf "data_encryption_key_unwrap_command = 'touch %s/auto; cat \"%%p\"'\n" "$marks" \
    >>"$pgdata/postgresql.auto.conf"
chown "$owner:" "$pgdata/postmaster.opts"
chmod -R o+rX "$pgdata"

# run USER ARGS...: pg_datakey as USER (root: directly); sets rc, err.
run() {
    local user=$1
    shift
    rc=0
    if [[ $user == root ]]; then
        err=$(cd "$work" && "$datakey" "$@" 2>&1 >/dev/null) || rc=$?
    else
        err=$(cd "$work" && runuser -u "$user" -- "$datakey" "$@" 2>&1 >/dev/null) || rc=$?
    fi
}
no_marker() { [[ ! -e $marks/opts && ! -e $marks/auto ]]; }
has_line() { grep -qxF -- "$2" <<<"$1"; }
commands=(status verify rewrap repair)
args_for() {
    case $1 in
    rewrap) printf '%s\n' rewrap '--new-key-wrap-command=cat > "%p"' '--new-key-unwrap-command=cat "%p"' ;;
    *) printf '%s\n' "$1" ;;
    esac
}

for c in "${commands[@]}"; do
    mapfile -t a < <(args_for "$c")
    run root "${a[@]}" -D "$pgdata"
    ok $((rc == 14 ? 0 : 1)) "root: $c is refused with exit status 14 (got $rc)"
    has_line "$err" 'pg_datakey: error: cannot be run as root'
    ok $? "root: $c says it cannot be run as root"
    has_line "$err" 'pg_datakey: hint: Please log in (using, e.g., "su") as the (unprivileged) user that will own the server process.'
    ok $? "root: $c gives pg_ctl's hint"
    no_marker
    ok $? "root: $c runs nothing from postmaster.opts or postgresql.auto.conf"
done
# PGDATA instead of -D: the same.
rc=0
err=$(cd "$work" && PGDATA=$pgdata "$datakey" 2>&1 >/dev/null) || rc=$?
ok $((rc == 14 ? 0 : 1)) "root: the default command with PGDATA is refused (got $rc)"
run root --help
ok "$rc" "root: --help works"
run root --version
ok "$rc" "root: --version works"

for c in "${commands[@]}"; do
    mapfile -t a < <(args_for "$c")
    run "$other" "${a[@]}" -D "$pgdata"
    ok $((rc == 14 ? 0 : 1)) "$other: $c is refused with exit status 14 (got $rc)"
    has_line "$err" "pg_datakey: error: data directory \"$pgdata\" is owned by another user"
    ok $? "$other: $c names the data directory and its ownership"
    has_line "$err" "pg_datakey: detail: It is owned by \"$owner\" (uid $(id -u "$owner")); pg_datakey runs as \"$other\" (uid $(id -u "$other"))."
    ok $? "$other: $c names both users"
    has_line "$err" "pg_datakey: hint: Run pg_datakey as the owner of the data directory, e.g. \"runuser -u $owner -- pg_datakey ...\"."
    ok $? "$other: $c says how to run it"
    no_marker
    ok $? "$other: $c runs nothing from postmaster.opts or postgresql.auto.conf"
done

# The owner: status and repair run no command at all; verify runs the
# configured unwrap command, postgresql.auto.conf's, as the server would:
# it is the owner's own setting (and shows the markers above could appear).
run "$owner" status -D "$pgdata"
ok "$rc" "$owner: status works"
run "$owner" repair -D "$pgdata"
ok "$rc" "$owner: repair works"
[[ ! -e $marks/opts && ! -e $marks/auto ]]
ok $? "$owner: status and repair run nothing"
run "$owner" verify -D "$pgdata"
ok "$rc" "$owner: verify works"
[[ ! -e $marks/opts ]]
ok $? "$owner: verify never runs the program postmaster.opts names"
[[ -e $marks/auto ]]
ok $? "$owner: verify runs the unwrap command the configuration names (the owner's setting)"

done_testing
