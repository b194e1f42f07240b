# shellcheck shell=bash
# Shared helpers for scripts/build, scripts/test and scripts/update-patches.
# Source it; it does not change shell options of its own.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUILD_DIR=$ROOT/build
LOG_DIR=$BUILD_DIR/logs
# libfe_datakey, its adapters and pg_datakey: one installation that every
# PostgreSQL version links (its pkg-config files carry an rpath).
LIB_PREFIX=$BUILD_DIR/fe_datakey

# The PostgreSQL major versions with a patch series (patches/pgN), oldest
# first. Each builds from build/pg-N-src and installs into build/pg-N;
# build/pg is a link to the newest, the one scripts/demo uses.
PG_VERSIONS=(15 17 18)
PG_NEWEST=${PG_VERSIONS[-1]}

# The Debian suite whose source packages list postgresql-N.
pg_suite() {
    case $1 in
    15) echo bookworm ;;
    17) echo trixie ;;
    18) echo sid ;;
    *) return 1 ;;
    esac
}

# How each version is built: 15 has only configure; 17 is built with
# configure and make, 18 with meson, so that both build systems of the
# newer releases are exercised (docs/building.md).
pg_build_system() {
    case $1 in
    18) echo meson ;;
    *) echo make ;;
    esac
}

# select_pg N: point the PG_* variables at version N.
select_pg() {
    pg_suite "$1" >/dev/null || die "PostgreSQL $1 is not supported (supported: ${PG_VERSIONS[*]})"
    PG_MAJOR=$1
    PG_PREFIX=$BUILD_DIR/pg-$1
    PG_SRC=$BUILD_DIR/pg-$1-src
    PG_BUILD_SYSTEM=$(pg_build_system "$1")
    # meson builds outside the source tree; make builds in it.
    if [[ $PG_BUILD_SYSTEM == meson ]]; then
        PG_OBJ=$BUILD_DIR/pg-$1-meson
    else
        PG_OBJ=$PG_SRC
    fi
    PATCH_DIR=$ROOT/patches/pg$1
    SERIES_STATE=$PG_SRC/.fe-series
    CONFIGURE_STATE=$PG_OBJ/.fe-configure
}

# parse_pg_versions LIST: the versions of a comma or space separated LIST
# (as --pg takes it) into SELECTED_PG, checked and in PG_VERSIONS order.
parse_pg_versions() {
    local v w
    local -A want=()
    for v in ${1//,/ }; do
        pg_suite "$v" >/dev/null || die "--pg $v: not a supported PostgreSQL version (supported: ${PG_VERSIONS[*]})"
        want[$v]=1
    done
    SELECTED_PG=()
    for w in "${PG_VERSIONS[@]}"; do
        [[ -n ${want[$w]:-} ]] && SELECTED_PG+=("$w")
    done
    ((${#SELECTED_PG[@]})) || die "--pg: no version given"
}

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
# The patched PostgreSQL builds find the library and its adapters with
# pkg-config, at make time too.
case ":${PKG_CONFIG_PATH:-}:" in
*":$LIB_PREFIX/lib/pkgconfig:"*) ;;
*) export PKG_CONFIG_PATH=$LIB_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} ;;
esac

# Debian 12 packages the build and the tests need.
DEPS=(
    g++ cmake make pkg-config libssl-dev openssl
    libboost-dev libboost-program-options-dev libboost-filesystem-dev
    libgtest-dev libbenchmark-dev
    libipc-run-perl libio-pty-perl
    ccache bison flex libreadline-dev zlib1g-dev perl dpkg-dev
    # PostgreSQL 17 and 18 with meson; source packages not listed any more,
    # checked against the uploader's signature (fetch_debian_source)
    meson ninja-build curl debian-keyring
    acl procps python3 clang-format git
    # the patches stage: the patched C code without USE_DATAKEY (tests/stock)
    unifdef
    # the fuzz stage: libFuzzer harnesses built with clang (-fsanitize=fuzzer,address
    # links clang's runtime libraries, which libclang-rt-14-dev has)
    clang-14 libfuzzer-14-dev libclang-rt-14-dev
    # the key stores of tests/e2e/6xx_keystore_*.pl: PKCS#11, KMIP, Tang, TPM 2.0
    softhsm2 opensc p11-kit p11-kit-modules python3-pykmip tang-common clevis socat swtpm tpm2-tools clevis-tpm2 libtss2-tcti-swtpm0
    # HA and backup tests (tests/e2e/7xx): etcd 3.4, pgBackRest 2.45, and
    # Patroni 4.0 built from trixie's source (scripts/lib/patroni.sh; bookworm's
    # 3.0 predates PostgreSQL 17): its dependencies with the etcd client, then
    # what its build needs (the HTML docs of patroni-doc are always built)
    etcd-server etcd-client pgbackrest
    python3-psycopg2 python3-etcd python3-click python3-dateutil python3-prettytable
    python3-psutil python3-urllib3 python3-yaml python3-cdiff
    python3-sphinx python3-sphinx-rtd-theme python3-sphinxcontrib.apidoc sphinx-common
    python3-doc libjs-jquery libjs-mathjax libjs-underscore
    # the AWS KMS recipe (tests/e2e/650_keystore_aws_kms.pl): Debian's aws CLI, and
    # moto's server as the KMS, which needs flask-cors (not among python3-moto's
    # dependencies); python3-moto itself is built from trixie's source
    # (scripts/lib/moto.sh), with the build dependencies on the next line
    awscli python3-flask-cors
    debhelper dh-python openstack-pkg-tools pybuild-plugin-pyproject python3-all python3-setuptools
    # the fault matrix's injected I/O faults (tests/e2e/18x_fault_io_*.pl):
    # libfiu's POSIX preload and fiu-ctrl; strace's -e inject where libfiu
    # cannot reach (postgres; one file's calls); gdb for a short read there;
    # strace -f also traces every execve of a run in tests/e2e/120
    fiu-utils strace gdb
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

# prepare_system [VERSION...]: make sure the machine has every package in
# DEPS, python3-moto (scripts/lib/moto.sh), Patroni 4 (scripts/lib/patroni.sh)
# and, for each VERSION, a deb-src entry that lists postgresql-VERSION
# (the versions whose source must come from Debian's archive). Root does
# it, a user with password-less sudo does it through sudo; anyone else gets
# one error that names everything missing and the one command that
# installs it, before anything has been built or written.
prepare_system() {
    local list v
    local -a need_src=()
    list=$(missing_deps "${DEPS[@]}")
    for v in "$@"; do
        have_pg_source_package "$v" || need_src+=("$v")
    done
    [[ -z $list ]] && ((${#need_src[@]} == 0)) && ! moto_missing && ! patroni_missing && return 0
    if find_sudo; then
        install_deps
        ((${#need_src[@]} == 0)) || ensure_deb_src "${need_src[@]}"
        ensure_moto
        ensure_patroni
        return 0
    fi
    local -a names=()
    [[ -n $list ]] && mapfile -t names <<<"$list"
    local nl=$'\n'
    local msg="this machine lacks what the build needs, and this user cannot install it (not root, no password-less sudo):"
    [[ -n $list ]] && msg+="$nl  missing packages: ${names[*]}"
    for v in "${need_src[@]}"; do
        msg+="$nl  no deb-src entry for $(pg_suite "$v"): apt-get source postgresql-$v cannot fetch PostgreSQL $v's source"
    done
    moto_missing && msg+="$nl  $MOTO_PACKAGE, built from Debian's source package $MOTO_SOURCE (not in Debian 12)"
    patroni_missing && msg+="$nl  $PATRONI_PACKAGE $PATRONI_MIN_VERSION or newer, built from Debian's source package $PATRONI_SOURCE (Debian 12 has 3.0)"
    msg+="${nl}Run once as root: $ROOT/scripts/build --system-only"
    [[ -n $list ]] && msg+="$nl(or, for the packages alone: apt-get install --no-install-recommends ${names[*]})"
    ((${#need_src[@]} == 0)) || msg+="$nl(or give a PostgreSQL source tree or tarball with --pg N --pg-source PATH)"
    die "$msg"
}

# --- PostgreSQL source from Debian's archive ---------------------------------

DEB_SRC_FILE=/etc/apt/sources.list.d/fe-datakey-src.sources

# (Not `| grep -q`: under pipefail, grep quitting early fails the pipeline.)
have_pg_source_package() {
    local out
    out=$(apt-cache showsrc "postgresql-$1" 2>/dev/null || true)
    [[ $out == *$'\nVersion: '* ]]
}

# The deb-src stanzas of a suite: the suite with its updates and security
# archives where Debian has them (sid has neither). For a suite other than
# the system's own, apt is told not to refuse a Release file past its
# Valid-Until: a mirror that is a snapshot serves sid's (valid a week) long
# after it expired, and apt-get update then fails. The Release file is
# still checked against Debian's archive key, and the sources against its
# hashes. (Not for the system's own suite: its binary entries would then
# conflict with ours on that option.)
deb_src_stanzas() {
    local suite=$1 opts=""
    [[ $suite != "$(system_codename)" ]] && opts='Check-Valid-Until: no\n'
    if [[ $suite == sid ]]; then
        printf "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: sid\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n${opts}\n"
        return 0
    fi
    printf "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n${opts}\n" "$suite" "$suite"
    printf "Types: deb-src\nURIs: http://deb.debian.org/debian-security\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n${opts}\n" "$suite"
}

# The system's Debian codename (bookworm on Debian 12), or nothing.
system_codename() {
    (
        # shellcheck disable=SC1091
        [[ -r /etc/os-release ]] && . /etc/os-release && printf '%s' "${VERSION_CODENAME:-}"
    ) || true
}

# ensure_deb_src VERSION...: make sure `apt-cache showsrc postgresql-N`
# knows versions, for each N: write a deb-src entry in a file of our own for
# each suite that no other file has one for (never touching
# debian.sources), then update the lists. Needs SUDO.
ensure_deb_src() {
    local v suite f
    local -A suites=()
    for v in "$@"; do
        suites[$(pg_suite "$v")]=1
    done
    # Our file keeps the suites it had, so that versions not asked for
    # this time stay fetchable.
    if [[ -f $DEB_SRC_FILE ]]; then
        for suite in bookworm trixie sid; do
            grep -Eq "^Suites:.*(^|[[:space:]])$suite([[:space:]]|\$)" "$DEB_SRC_FILE" && suites[$suite]=1
        done
    fi
    local content="" added=""
    for suite in bookworm trixie sid; do
        [[ -n ${suites[$suite]:-} ]] || continue
        local elsewhere=0
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
            [[ -f $f && $f != "$DEB_SRC_FILE" ]] || continue
            if grep -Eq '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' "$f" &&
                grep -Eq "(^|[[:space:]])$suite([[:space:]]|\$)" "$f"; then
                elsewhere=1
            fi
        done
        ((elsewhere)) && continue
        # Signed-By must match the value debian.sources uses for the same
        # archive, or apt refuses with "Conflicting values set for option
        # Signed-By".
        content+=$(deb_src_stanzas "$suite")$'\n\n'
        added+=" $suite"
    done
    if [[ -n $content ]]; then
        step "deb-src entries for${added} in $DEB_SRC_FILE"
        printf '%s' "${content%$'\n'}" | "${SUDO[@]}" tee "$DEB_SRC_FILE" >/dev/null
    fi
    APT_UPDATED=0
    apt_update
    for v in "$@"; do
        have_pg_source_package "$v" ||
            die "apt-cache showsrc postgresql-$v lists no version, even after adding a deb-src entry for $(pg_suite "$v")"
    done
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
# PostgreSQL build and the tests can all write there; so do the compiler
# cache and the fuzz corpus when they live outside the clone.
own_build_dir() {
    local d
    for d in "$BUILD_DIR" "$CCACHE_DIR" ${FUZZ_CORPUS_DIR:+"$FUZZ_CORPUS_DIR"}; do
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
    for v in CI TERM LANG LC_ALL PG_SOURCE FE_DATAKEY_PG_VERSIONS PROVE_FLAGS E2E_PROVE_FLAGS FUZZ_SECONDS PG_CFLAGS PROVE_TESTS \
        FE_DATAKEY_NO_COLOR FE_DATAKEY_T0 CCACHE_DIR FUZZ_CORPUS_DIR; do
        [[ -n ${!v+x} ]] && envs+=("$v=${!v}")
    done
    cd "$ROOT" || exit 1
    exec runuser -u "$PG_USER" -- env "${envs[@]}" bash "$script" "$@"
}

# git on build/pg-N-src (PG_SRC), whoever owns it (root running the scripts by hand
# would otherwise trip over git's "dubious ownership" check).
# The identity is for the commits git am makes (the author comes from the
# patch) and for git am --abort, which needs one too.
pg_git() {
    git -c safe.directory="$PG_SRC" -c user.name="fe_datakey build" \
        -c user.email="fe_datakey@localhost" -C "$PG_SRC" "$@"
}

# shellcheck source=moto.sh
source "$ROOT/scripts/lib/moto.sh"
# shellcheck source=patroni.sh
source "$ROOT/scripts/lib/patroni.sh"
