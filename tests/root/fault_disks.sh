#!/usr/bin/env bash
# As root (mounts): the fault matrix's disk cells (tests/faults/cells/disks.tsv)
# on real file systems: a data directory on its own tmpfs, filled up (a
# filler file, written until ENOSPC) or remounted read-only, and a tmpfs of
# its own for a postgresql.conf outside the data directory. The tools run as
# the cluster's owner (fe_datakey), against FE_DATAKEY_PG_BIN. For each cell:
# a clear error naming the fault, nothing half-written under a final name
# (key.bin, key.check and the configuration are the old files or, past the
# commit, the new ones), the key still opens, and once the disk has room or
# is writable again the operation (or pg_datakey repair) finishes and the
# server starts. TAP output; each outcome also goes to $FE_DATAKEY_FAULT_CELLS.
# Not -e: a failed check is a "not ok" line, not the end of the run.
set -uo pipefail

# shellcheck source=lib/root.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/root.sh"
pg_bin=${FE_DATAKEY_PG_BIN:?FE_DATAKEY_PG_BIN names the patched PostgreSQL bin directory}
datakey=${FE_DATAKEY_BIN:-$repo/build/fe_datakey/bin}/pg_datakey
owner=${FE_DATAKEY_PG_USER:-fe_datakey}
[[ -x $datakey && -x $pg_bin/initdb ]] || {
    echo "Bail out! no $datakey or $pg_bin/initdb"
    exit 1
}
major=$("$pg_bin/pg_config" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')

work=$(mktemp -d /tmp/fe_datakey-root-disks.XXXXXX)
mounts=()
cleanup() {
    local m
    [[ -n ${pgdata:-} ]] && runuser -u "$owner" -- "$pg_bin/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1
    for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
chmod 0755 "$work"
chown "$owner:" "$work"
# pg_datakey where the owner can run it (see pg_datakey_trust.sh).
mkdir "$work/bin"
cp "$datakey" "$work/bin/pg_datakey"
chmod 0755 "$work/bin" "$work/bin/pg_datakey"
for p in old new; do
    printf '%s secret\n' "$p" >"$work/$p.pass"
    chown "$owner:" "$work/$p.pass"
    chmod 0600 "$work/$p.pass"
done
wrap() { printf 'openssl enc -e -aes-128-cbc -pbkdf2 -pass file:%s -out "%%p"' "$work/$1.pass"; }
unwrap() { printf 'openssl enc -d -aes-128-cbc -pbkdf2 -pass file:%s -in "%%p"' "$work/$1.pass"; }
port=$((20000 + $$ % 20000))

# as CMD...: CMD as the owner, with the PostgreSQL under test and pg_datakey
# first in PATH, in $work, for 120 seconds at most; sets rc and err (its
# stderr).
as() {
    rc=0
    err=$(cd "$work" && runuser -u "$owner" -- timeout 120 env PATH="$pg_bin:$work/bin:$PATH" "$@" 2>&1 >/dev/null) || rc=$?
}
# cell STATUS ENTRY FAULT NAME: a TAP line, and the outcome in the cell log.
cell() {
    ok "$1" "[$2 | $3] $4"
    [[ -n ${FE_DATAKEY_FAULT_CELLS:-} ]] || return 0
    printf '%s\t%s\t%s\t%s\t%s\n' "$major" "$2" "$3" "$( (($1 == 0)) && echo ok || echo 'not ok')" "$4" \
        >>"$FE_DATAKEY_FAULT_CELLS"
}
# t CMD...: 0 if CMD succeeds, else 1 (for cell).
t() { if "$@" >/dev/null 2>&1; then echo 0; else echo 1; fi; }

# A tmpfs of SIZE at DIR, owned by the owner.
mount_tmpfs() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || {
        echo "Bail out! could not mount a tmpfs at $1"
        exit 1
    }
    mounts+=("$1")
    chown "$owner:" "$1"
}
# fill_cmd DIR: shell text that fills DIR's file system (as the owner).
fill_cmd() { printf '{ cat /dev/zero >%s/filler; } 2>/dev/null; true' "$1"; }
fill() { runuser -u "$owner" -- timeout 60 sh -c "$(fill_cmd "$1")"; }
unfill() { rm -f "$1/filler"; }
read_only() { mount -o remount,ro "$1"; }
writable() { mount -o remount,rw "$1"; }

disk=$work/disk
mount_tmpfs "$disk" 160m
etc=$work/etc
mount_tmpfs "$etc" 1m

# initdb ENTRY DIR [ARGS...]: initdb of DIR with the old passphrase's commands.
run_initdb() {
    local dir=$1
    shift
    as initdb -D "$dir" -A trust -N --no-instructions -y "$@"
}
server_conf() {
    printf "port = %d\nunix_socket_directories = '%s'\nlisten_addresses = ''\n" "$port" "$work" >>"$1"
}
# starts DIR [postgres options]: the server starts there, answers, and stops.
starts() {
    local dir=$1 opts=${2:-}
    as pg_ctl -D "$dir" -l "$work/server.log" -w -t 60 ${opts:+-o "$opts"} start
    ((rc == 0)) || return 1
    as psql -h "$work" -p "$port" -d postgres -Atc 'SELECT 1'
    local q=$rc
    as pg_ctl -D "$dir" -m fast -w -t 60 stop
    ((q == 0))
}
key_files() { cat "$1/pg_encryption/key.bin" "$1/pg_encryption/key.check" | sha256sum; }

# The cluster that --copy-key-from copies, on the ordinary disk.
run_initdb "$work/source" "--key-wrap-command=$(wrap old)" "--key-unwrap-command=$(unwrap old)"
((rc == 0)) || {
    echo "Bail out! initdb of the source cluster failed: $err"
    exit 1
}
source_key=$work/source/pg_encryption/key.bin

# initdb: the disk fills up while the wrap command runs (after it wrote the
# key), so the key steps that follow run out of space; a read-only file
# system stops initdb at its first directory, before any key step.
for entry in 'initdb -y' 'initdb --copy-key-from'; do
    copy=()
    [[ $entry == *copy* ]] && copy=("--copy-key-from=$source_key")
    pgdata_try=$disk/data
    run_initdb "$pgdata_try" "--key-wrap-command=$(wrap old) && $(fill_cmd "$disk")" \
        "--key-unwrap-command=$(unwrap old)" "${copy[@]}"
    cell $((rc != 0 ? 0 : 1)) "$entry" 'full disk' "initdb fails (status $rc)"
    grep -q 'No space left on device' <<<"$err"
    cell $? "$entry" 'full disk' 'the error says the disk is full'
    cell "$(t test ! -e "$pgdata_try")" "$entry" 'full disk' 'no data directory is left behind'
    unfill "$disk"
    run_initdb "$pgdata_try" "--key-wrap-command=$(wrap old)" "--key-unwrap-command=$(unwrap old)" "${copy[@]}"
    cell "$rc" "$entry" 'full disk' 'with room again, initdb succeeds'
    server_conf "$pgdata_try/postgresql.conf"
    cell "$(t starts "$pgdata_try")" "$entry" 'full disk' 'and the server starts'
    rm -rf "$pgdata_try"

    read_only "$disk"
    run_initdb "$pgdata_try" "--key-wrap-command=$(wrap old)" "--key-unwrap-command=$(unwrap old)" "${copy[@]}"
    cell $((rc != 0 ? 0 : 1)) "$entry" 'read-only file system' "initdb fails (status $rc)"
    grep -q 'Read-only file system' <<<"$err"
    cell $? "$entry" 'read-only file system' 'the error says the file system is read-only'
    cell "$(t test ! -e "$pgdata_try")" "$entry" 'read-only file system' 'no data directory is left behind'
    writable "$disk"
    run_initdb "$pgdata_try" "--key-wrap-command=$(wrap old)" "--key-unwrap-command=$(unwrap old)" "${copy[@]}"
    cell "$rc" "$entry" 'read-only file system' 'writable again, initdb succeeds'
    rm -rf "$pgdata_try"
done

# The cluster of the other cells, on the disk.
pgdata=$disk/data
run_initdb "$pgdata" "--key-wrap-command=$(wrap old)" "--key-unwrap-command=$(unwrap old)"
((rc == 0)) || {
    echo "Bail out! initdb on the tmpfs failed: $err"
    exit 1
}
server_conf "$pgdata/postgresql.conf"
cur=old next=new
swap() { local x=$cur; cur=$next next=$x; }
rewrap_args() { printf '%s\n' rewrap -D "$pgdata" "--new-key-wrap-command=$(wrap "$next")$1" "--new-key-unwrap-command=$(unwrap "$next")"; }
opens_with() { as pg_datakey verify -D "$pgdata" "--key-unwrap-command=$(unwrap "$1")" && ((rc == 0)); }
configured_opens() { as pg_datakey verify -D "$pgdata" "$@" && ((rc == 0)); }

# The server's key load reads and writes nothing in pg_encryption: the
# server's own files decide. Full or read-only, PostgreSQL refuses at its
# lock file (postmaster.pid), before the key load; the key files stay as
# they were, and once the fault is gone the server starts.
for fault in 'full disk' 'read-only file system'; do
    before=$(key_files "$pgdata")
    if [[ $fault == 'full disk' ]]; then
        fill "$disk"
        want='No space left on device'
    else
        read_only "$disk"
        want='Read-only file system'
    fi
    log=$work/server-${fault// /-}.log
    as pg_ctl -D "$pgdata" -l "$log" -w -t 60 start
    cell $((rc != 0 ? 0 : 1)) server "$fault" 'the server does not start'
    ((rc == 0)) && as pg_ctl -D "$pgdata" -m fast -w -t 60 stop
    grep -q "could not .*postmaster.pid.*$want" "$log" 2>/dev/null && ! grep -qi 'key' "$log"
    cell $? server "$fault" "PostgreSQL says why (postmaster.pid: $want), and nothing about the key"
    unfill "$disk"
    writable "$disk"
    cell "$(t test "$(key_files "$pgdata")" = "$before")" server "$fault" 'key.bin and key.check are unchanged'
    cell "$(t starts "$pgdata")" server "$fault" 'once the fault is gone, the server starts'
done

# pg_datakey rewrap: the disk fills while the new wrap command runs, so the
# journal (the commit) cannot be written; read-only: the first write, the
# lock file, fails. Both before the commit: nothing changes.
for fault in 'full disk' 'read-only file system'; do
    before=$(key_files "$pgdata")
    if [[ $fault == 'full disk' ]]; then
        mapfile -t a < <(rewrap_args " && $(fill_cmd "$disk")")
        want='No space left on device'
    else
        mapfile -t a < <(rewrap_args '')
        read_only "$disk"
        want='Read-only file system'
    fi
    as pg_datakey "${a[@]}"
    cell $((rc != 0 ? 0 : 1)) 'pg_datakey rewrap' "$fault" "rewrap fails (status $rc)"
    grep -q "$want" <<<"$err"
    cell $? 'pg_datakey rewrap' "$fault" "the error says so: $want"
    if [[ $fault == 'full disk' ]]; then
        grep -q 'left unchanged' <<<"$err"
        cell $? 'pg_datakey rewrap' "$fault" 'and that nothing changed'
    fi
    unfill "$disk"
    writable "$disk"
    cell "$(t test "$(key_files "$pgdata")" = "$before")" 'pg_datakey rewrap' "$fault" 'key.bin and key.check are unchanged'
    cell "$(t configured_opens)" 'pg_datakey rewrap' "$fault" 'the configured command opens the old key'
    cell "$(t starts "$pgdata")" 'pg_datakey rewrap' "$fault" 'the server starts'
    mapfile -t a < <(rewrap_args '')
    as pg_datakey "${a[@]}"
    cell "$rc" 'pg_datakey rewrap' "$fault" 'once the fault is gone, a rewrap succeeds'
    swap
    cell "$(t configured_opens)" 'pg_datakey rewrap' "$fault" 'the configured command opens the new key'
done

# pg_datakey repair of a rewrap killed after its commit: on a full disk
# its first step that needs room is the configuration's new file; on a
# read-only one its lock file.
for fault in 'full disk' 'read-only file system'; do
    mapfile -t a < <(rewrap_args '')
    as env FE_DATAKEY_CRASH_AT=after-journal pg_datakey "${a[@]}"
    ((rc == 137)) || echo "# the rewrap to repair was not killed (status $rc): $err"
    if [[ $fault == 'full disk' ]]; then
        fill "$disk"
        want='No space left on device'
    else
        read_only "$disk"
        want='Read-only file system'
    fi
    as pg_datakey repair -D "$pgdata"
    cell $((rc != 0 ? 0 : 1)) 'pg_datakey repair' "$fault" "repair fails (status $rc)"
    grep -q "$want" <<<"$err"
    cell $? 'pg_datakey repair' "$fault" "the error says so: $want"
    unfill "$disk"
    writable "$disk"
    if [[ $fault == 'full disk' ]]; then
        # The rename to key.bin needs no room: it came before.
        cell "$(t opens_with "$next")" 'pg_datakey repair' "$fault" 'key.bin, renamed, opens with the new passphrase'
    else
        cell "$(t opens_with "$cur")" 'pg_datakey repair' "$fault" 'key.bin still opens with the old passphrase'
    fi
    as pg_datakey repair -D "$pgdata"
    cell "$rc" 'pg_datakey repair' "$fault" 'once the fault is gone, repair completes the rewrap'
    swap
    cell "$(t configured_opens)" 'pg_datakey repair' "$fault" 'the configured command opens the new key'
    cell "$(t starts "$pgdata")" 'pg_datakey repair' "$fault" 'the server starts'
done

# The configuration update, with postgresql.conf on a file system of its
# own (the server started with config_file there): full, the update after
# the commit fails and repair finishes it; read-only, rewrap refuses before
# anything changes (it checks that the file can be rewritten).
conf=$etc/postgresql.conf
cp "$pgdata/postgresql.conf" "$conf"
chown "$owner:" "$conf"
chmod 0600 "$conf"
opts="-c config_file=$conf"
for fault in 'full disk' 'read-only file system'; do
    before=$(key_files "$pgdata")
    conf_before=$(sha256sum <"$conf")
    mapfile -t a < <(rewrap_args '')
    if [[ $fault == 'full disk' ]]; then
        fill "$etc"
        want='No space left on device'
    else
        read_only "$etc"
        want='Read-only file system'
    fi
    as pg_datakey "${a[@]}" "--config-file=$conf"
    cell $((rc != 0 ? 0 : 1)) 'pg_datakey config update' "$fault" "rewrap fails (status $rc)"
    grep -q "$want" <<<"$err"
    cell $? 'pg_datakey config update' "$fault" "the error names the configuration file's fault: $want"
    cell "$(t test "$(sha256sum <"$conf")" = "$conf_before")" 'pg_datakey config update' "$fault" \
        'the configuration file is the old one, whole'
    unfill "$etc"
    writable "$etc"
    if [[ $fault == 'full disk' ]]; then
        cell "$(t opens_with "$next")" 'pg_datakey config update' "$fault" 'past the commit, key.bin opens with the new passphrase'
        as pg_datakey repair -D "$pgdata" "--config-file=$conf"
        cell "$rc" 'pg_datakey config update' "$fault" 'once the disk has room, repair finishes the update'
    else
        cell "$(t test "$(key_files "$pgdata")" = "$before")" 'pg_datakey config update' "$fault" 'key.bin and key.check are unchanged'
        cell "$(t configured_opens --config-file="$conf")" 'pg_datakey config update' "$fault" 'the configured command opens the old key'
        as pg_datakey "${a[@]}" "--config-file=$conf"
        cell "$rc" 'pg_datakey config update' "$fault" 'writable again, the rewrap succeeds'
    fi
    swap
    cell "$(t configured_opens --config-file="$conf")" 'pg_datakey config update' "$fault" 'the configured command opens the new key'
    cell "$(t starts "$pgdata" "$opts")" 'pg_datakey config update' "$fault" 'the server starts with that configuration'
done

done_testing
