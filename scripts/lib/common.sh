# shellcheck shell=bash
# Shared helpers for scripts/build, scripts/test and scripts/update-patches.
# Source it; it does not change shell options of its own.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUILD_DIR=$ROOT/build
PG_PREFIX=$BUILD_DIR/pg
PG_SRC=$BUILD_DIR/pg-src
LOG_DIR=$BUILD_DIR/logs
PATCH_DIR=$ROOT/patches/pg15

# initdb refuses to run as root: when the scripts run as root, everything
# that builds or runs PostgreSQL runs as this system user instead.
PG_USER=fe_datakey
PG_USER_HOME=/var/lib/$PG_USER

JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# The compiler cache lives in build/ unless CCACHE_DIR names one outside the
# clone, shared by several clones: CCACHE_BASEDIR makes their paths match and
# CCACHE_NOHASHDIR keeps the directory of a -g build out of the hash (the
# debug information may then name another clone's directory).
export CCACHE_DIR=${CCACHE_DIR:-$BUILD_DIR/ccache}
export CCACHE_BASEDIR=$ROOT
export CCACHE_NOHASHDIR=1
# The patched PostgreSQL Makefiles find the library and its adapters with
# pkg-config, at make time too.
case ":${PKG_CONFIG_PATH:-}:" in
*":$PG_PREFIX/lib/pkgconfig:"*) ;;
*) export PKG_CONFIG_PATH=$PG_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} ;;
esac

# Debian 12 packages the build and the tests need.
DEPS=(
    g++ cmake make pkg-config libssl-dev openssl
    libboost-dev libboost-program-options-dev libboost-filesystem-dev
    libgtest-dev libbenchmark-dev
    libipc-run-perl libio-pty-perl
    ccache bison flex libreadline-dev zlib1g-dev perl dpkg-dev
    acl procps python3 clang-format git
    # the fuzz stage: libFuzzer harnesses built with clang (-fsanitize=fuzzer,address
    # links clang's runtime libraries, which libclang-rt-14-dev has)
    clang-14 libfuzzer-14-dev libclang-rt-14-dev
    # the key stores of tests/e2e/6xx_keystore_*.pl: PKCS#11, KMIP, Tang, TPM 2.0
    softhsm2 opensc p11-kit p11-kit-modules python3-pykmip tang-common clevis socat swtpm tpm2-tools clevis-tpm2 libtss2-tcti-swtpm0
    # HA and backup tests (tests/e2e/7xx): Patroni 3.0 with its etcd client, etcd 3.4, pgBackRest 2.45
    patroni python3-etcd etcd-server etcd-client pgbackrest
)

step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# True when this process is the unprivileged half of a script that was
# started as root (see reexec_as_pg_user).
is_delegated() { [[ ${FE_DATAKEY_DELEGATED:-} == 1 ]]; }

# run_logged LOGNAME CMD...: run CMD with its output in build/logs/LOGNAME.log;
# on failure show the end of the log and return the command's status.
run_logged() {
    local log=$LOG_DIR/$1.log
    shift
    mkdir -p "$LOG_DIR"
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    if ((rc != 0)); then
        printf 'error: "%s" failed (exit %d); last lines of %s:\n' "$*" "$rc" "${log#"$ROOT"/}" >&2
        tail -n 40 "$log" | sed 's/^/    /' >&2
    fi
    return "$rc"
}

# Seconds since the epoch with a fraction, for timings.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# --- packages ----------------------------------------------------------------

# missing_deps PACKAGE...: print the packages that are not installed, one a
# line. dpkg-query exits 1 when any name is unknown to dpkg (a package never
# installed on this machine): that is the normal case here, so its status is
# not a failure, and no pipeline hides an error of ours.
missing_deps() {
    local out=""
    out=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "$@" 2>/dev/null) || true
    local -A installed=()
    local p status
    while read -r p status; do
        [[ $status == ii ]] && installed[$p]=1
    done <<<"$out"
    for p in "$@"; do
        [[ -n ${installed[$p]:-} ]] || printf '%s\n' "$p"
    done
    return 0
}

APT_UPDATED=0
apt_update() {
    ((APT_UPDATED)) && return 0
    step "apt-get update"
    run_logged apt-update "${SUDO[@]}" apt-get update
    APT_UPDATED=1
}

# How to run what needs root: directly as root, through `sudo -n` for a user
# who may use sudo without a password, else not at all (SUDO unset).
unset SUDO
find_sudo() {
    if is_root; then
        SUDO=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        return 1
    fi
}

# Install whatever of DEPS is missing. Quick (no apt at all) when nothing is.
# Needs SUDO (see prepare_system).
install_deps() {
    local list
    list=$(missing_deps "${DEPS[@]}")
    [[ -n $list ]] || return 0
    local -a missing
    mapfile -t missing <<<"$list"
    step "Installing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Update first only when there are no package lists at all; otherwise
    # try with the lists we have and update once if that fails.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        run_logged apt-update "${SUDO[@]}" apt-get update -q || die "apt-get update failed"
        APT_UPDATED=1
    fi
    if ! run_logged apt-install "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; then
        ((APT_UPDATED)) && die "could not install: ${missing[*]}"
        run_logged apt-update "${SUDO[@]}" apt-get update -q || die "apt-get update failed"
        APT_UPDATED=1
        run_logged apt-install "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" ||
            die "could not install: ${missing[*]}"
    fi
}

# prepare_system NEED_PG_SOURCE: make sure the machine has every package in
# DEPS and, when NEED_PG_SOURCE is 1, a deb-src entry that lists
# postgresql-15. Root does it, a user with password-less sudo does it through
# sudo; anyone else gets one error that names everything missing and the one
# command that installs it, before anything has been built or written.
prepare_system() {
    local need_src=$1 list
    list=$(missing_deps "${DEPS[@]}")
    if ((need_src)) && have_pg_source_package; then
        need_src=0
    fi
    [[ -z $list ]] && ((!need_src)) && return 0
    if find_sudo; then
        install_deps
        ((need_src)) && ensure_deb_src
        return 0
    fi
    local -a names=()
    [[ -n $list ]] && mapfile -t names <<<"$list"
    local nl=$'\n'
    local msg="this machine lacks what the build needs, and this user cannot install it (not root, no password-less sudo):"
    [[ -n $list ]] && msg+="$nl  missing packages: ${names[*]}"
    ((need_src)) && msg+="$nl  no deb-src entry for bookworm: apt-get source postgresql-15 cannot fetch PostgreSQL's source"
    msg+="${nl}Run once as root: $ROOT/scripts/build --system-only"
    [[ -n $list ]] && msg+="$nl(or, for the packages alone: apt-get install --no-install-recommends ${names[*]})"
    ((need_src)) && msg+="$nl(or give a PostgreSQL 15 source tree or tarball with --pg-source)"
    die "$msg"
}

# --- PostgreSQL source from Debian's archive ---------------------------------

DEB_SRC_FILE=/etc/apt/sources.list.d/fe-datakey-src.sources

# (Not `| grep -q`: under pipefail, grep quitting early fails the pipeline.)
have_pg_source_package() {
    local out
    out=$(apt-cache showsrc postgresql-15 2>/dev/null || true)
    [[ $out == *$'\nVersion: '* ]]
}

# Make sure `apt-cache showsrc postgresql-15` knows versions: add a deb-src
# entry in a file of our own when the system has none for bookworm (never
# touching debian.sources), then update the lists. Needs SUDO.
ensure_deb_src() {
    if have_pg_source_package; then
        return 0
    fi
    local have=0 f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        if grep -Eq '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' "$f" && grep -q bookworm "$f"; then
            have=1
        fi
    done
    if ((!have)); then
        step "Adding a deb-src entry for bookworm in $DEB_SRC_FILE"
        # Signed-By must match the value debian.sources uses for the same
        # archive, or apt refuses with "Conflicting values set for option
        # Signed-By".
        "${SUDO[@]}" tee "$DEB_SRC_FILE" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    APT_UPDATED=0
    apt_update
    have_pg_source_package ||
        die "apt-cache showsrc postgresql-15 lists no version, even after adding a deb-src entry"
}

# --- the unprivileged user ---------------------------------------------------

ensure_pg_user() {
    id -u "$PG_USER" >/dev/null 2>&1 && return 0
    step "Creating system user $PG_USER (PostgreSQL does not run as root)"
    useradd --system --user-group --create-home --home-dir "$PG_USER_HOME" \
        --shell /bin/bash "$PG_USER"
}

as_pg_user_test() { runuser -u "$PG_USER" -- "$@" 2>/dev/null; }

# Let PG_USER reach and read the repository: search permission on every
# ancestor it cannot traverse (e.g. a 0700 mktemp directory, /root), read
# access to the tree. build/ is owned by PG_USER (see own_build_dir).
grant_repo_access() {
    local -a ancestors=()
    local d=$ROOT
    while [[ $d != / ]]; do
        d=$(dirname "$d")
        ancestors=("$d" "${ancestors[@]}")
    done
    for d in "${ancestors[@]}"; do
        if ! as_pg_user_test test -x "$d"; then
            note "granting $PG_USER search permission on $d"
            setfacl -m "u:$PG_USER:x" "$d"
        fi
    done
    local blocked
    blocked=$(cd / && runuser -u "$PG_USER" -- find "$ROOT" \
        \( -path "$ROOT/build" -o -path "$ROOT/.git" \) -prune -o \
        ! -type l \( ! -readable -o -type d ! -executable \) -print -quit 2>/dev/null || true)
    if [[ -n $blocked ]]; then
        note "granting $PG_USER read access to $ROOT (e.g. ${blocked#"$ROOT"/} was not readable)"
        find "$ROOT" \( -path "$ROOT/build" -o -path "$ROOT/.git" \) -prune -o ! -type l -print0 |
            xargs -0 setfacl -m "u:$PG_USER:rX"
    fi
}

# build/ belongs to PG_USER when we are root, so that the library build, the
# PostgreSQL build and the tests can all write there.
own_build_dir() {
    local d
    for d in "$BUILD_DIR" "$CCACHE_DIR"; do
        mkdir -p "$d"
        if [[ -n $(find "$d" ! -user "$PG_USER" -print -quit) ]]; then
            chown -R "$PG_USER:$PG_USER" "$d"
        fi
    done
}

# Everything root has to do before the unprivileged part can run.
prepare_root() {
    ensure_pg_user
    grant_repo_access
    own_build_dir
}

# reexec_as_pg_user SCRIPT ARGS...: when root, run SCRIPT again as PG_USER
# with a small, explicit environment; never returns.
reexec_as_pg_user() {
    local script=$1
    shift
    local -a envs=(
        "HOME=$PG_USER_HOME" "USER=$PG_USER" "LOGNAME=$PG_USER"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        "FE_DATAKEY_DELEGATED=1" "JOBS=$JOBS"
    )
    local v
    for v in CI TERM LANG LC_ALL PG_SOURCE PROVE_FLAGS E2E_PROVE_FLAGS PROVE_TESTS \
        FE_DATAKEY_NO_COLOR FE_DATAKEY_T0 CCACHE_DIR; do
        [[ -n ${!v+x} ]] && envs+=("$v=${!v}")
    done
    cd "$ROOT" || exit 1
    exec runuser -u "$PG_USER" -- env "${envs[@]}" bash "$script" "$@"
}

# git on build/pg-src, whoever owns it (root running the scripts by hand
# would otherwise trip over git's "dubious ownership" check).
# The identity is for the commits git am makes (the author comes from the
# patch) and for git am --abort, which needs one too.
pg_git() {
    git -c safe.directory="$PG_SRC" -c user.name="fe_datakey build" \
        -c user.email="fe_datakey@localhost" -C "$PG_SRC" "$@"
}
