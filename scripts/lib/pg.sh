# shellcheck shell=bash
# The patched PostgreSQL trees build/pg-N-src: their source, the patch
# series state, configure or meson setup, build and install. Source after
# common.sh; every function works on the version select_pg chose.

# build/pg-N-src is a git repository: the pristine upstream source committed
# and tagged `upstream`, then one commit per patch of patches/pgN/. What was
# last applied is recorded in .fe-series (series=HASH, head=COMMIT).

GIT_IDENTITY=(-c user.name="fe_datakey build" -c user.email="fe_datakey@localhost")

series_files() {
    local f
    for f in "$PATCH_DIR"/*.patch; do
        [[ -f $f ]] && printf '%s\n' "$f"
    done | LC_ALL=C sort
}

# A hash of the series: file names and contents, in order.
series_hash() {
    local f
    while IFS= read -r f; do
        printf '%s\n' "${f##*/}"
        cat "$f"
    done < <(series_files) | sha256sum | cut -c1-64
}

state_get() {
    [[ -f $SERIES_STATE ]] || return 0
    sed -n "s/^$1=//p" "$SERIES_STATE"
}

state_write() { # SERIES_HASH HEAD
    printf 'series=%s\nhead=%s\n' "$1" "$2" >"$SERIES_STATE"
}

# --- obtaining the source ----------------------------------------------------

# Download Debian's source package of postgresql-N into build/downloads,
# trying the versions apt lists newest first (the newest listed one is not
# always on the mirror). Sets PG_TARBALL to the upstream (orig) tarball.
fetch_debian_source() {
    local pkg=postgresql-$PG_MAJOR dl=$BUILD_DIR/downloads
    mkdir -p "$dl"
    local -a versions
    mapfile -t versions < <(apt-cache showsrc "$pkg" 2>/dev/null |
        awk '/^Version:/ { print $2 }' | sort -u -V -r)
    ((${#versions[@]} > 0)) ||
        die "apt knows no source package $pkg: add a deb-src entry for $(pg_suite "$PG_MAJOR") and run apt-get update (scripts/build does this when run as root), or pass --pg $PG_MAJOR --pg-source"
    local v up tarball
    for v in "${versions[@]}"; do
        up=${v#*:}
        up=${up%-*}
        tarball=$(compgen -G "$dl/${pkg}_${up}.orig.tar.*" | head -n 1 || true)
        if [[ -n $tarball && -f $dl/${pkg}_${v#*:}.dsc ]]; then
            note "using ${tarball#"$ROOT"/} downloaded earlier"
            PG_TARBALL=$tarball
            return 0
        fi
        step "Fetching PostgreSQL source: apt-get source --download-only $pkg=$v"
        if (cd "$dl" && run_logged "apt-source-$PG_MAJOR" apt-get source -q --download-only "$pkg=$v") 2>/dev/null; then
            tarball=$(compgen -G "$dl/${pkg}_${up}.orig.tar.*" | head -n 1 || true)
            if [[ -n $tarball ]]; then
                PG_TARBALL=$tarball
                return 0
            fi
        fi
        note "$pkg=$v could not be downloaded; trying the next version"
    done
    fetch_earlier_upload "${versions[0]}" && return 0
    die "none of the $pkg versions apt lists (${versions[*]}) could be downloaded, nor an earlier upload of the same series (see build/logs/apt-source-$PG_MAJOR.log)"
}

# fetch_earlier_upload LISTED: when every version apt lists is gone from the
# mirror (the archive keeps only what its indices list, but a mirror may
# still have the upload before), try the minor releases before LISTED with
# the same Debian revision, e.g. 17.11-0+deb13u1 before 17.12-0+deb13u1.
# Such a .dsc is not covered by the archive's signed indices, so it must
# carry a valid signature from the Debian keyring, and the tarball must
# match the checksum the .dsc gives.
fetch_earlier_upload() {
    local pkg=postgresql-$PG_MAJOR dl=$BUILD_DIR/downloads listed=${1#*:}
    local up=${listed%-*} rev=${listed##*-}
    local minor=${up#*.} base
    [[ $minor =~ ^[0-9]+$ ]] || return 1
    # Where the mirror keeps the package: the directory of the listed .dsc.
    base=$(apt-get source -q --print-uris "$pkg=$1" 2>/dev/null |
        sed -n "s/^'\\(.*\\)\\/${pkg}_[^/']*\\.dsc' .*/\\1/p" | head -n 1 || true)
    [[ -n $base ]] || return 1
    local m tries=0 dsc tarball
    for ((m = minor - 1; m >= 0 && tries < 4; m--, tries++)); do
        local v=$PG_MAJOR.$m
        dsc=${pkg}_$v-$rev.dsc
        tarball=${pkg}_$v.orig.tar.bz2
        step "Fetching PostgreSQL source: $base/$dsc (an upload no longer listed)"
        if ! curl -fsS --retry 2 -o "$dl/$dsc.part" "$base/$dsc" 2>>"$LOG_DIR/apt-source-$PG_MAJOR.log"; then
            rm -f "$dl/$dsc.part"
            note "$dsc is not on the mirror"
            continue
        fi
        curl -fsS --retry 2 -o "$dl/$tarball.part" "$base/$tarball" 2>>"$LOG_DIR/apt-source-$PG_MAJOR.log" ||
            die "$base/$tarball could not be downloaded"
        if ! verify_debian_upload "$dl/$dsc.part" "$dl/$tarball.part" "$tarball" \
            2>>"$LOG_DIR/apt-source-$PG_MAJOR.log"; then
            rm -f "$dl/$dsc.part" "$dl/$tarball.part"
            die "$dsc from $base: $VERIFY_ERROR; refusing it"
        fi
        mv "$dl/$dsc.part" "$dl/$dsc"
        mv "$dl/$tarball.part" "$dl/$tarball"
        note "$dsc: signature and tarball checksum verified"
        PG_TARBALL=$dl/$tarball
        return 0
    done
    return 1
}

# verify_debian_upload DSC TARBALL NAME: DSC carries a valid signature from
# the Debian keyring, and TARBALL's SHA-256 is the one DSC gives for the
# file NAME. On failure VERIFY_ERROR says what is wrong.
verify_debian_upload() {
    local dsc=$1 tarball=$2 name=$3 sum
    if ! gpgv --keyring /usr/share/keyrings/debian-keyring.gpg "$dsc" >&2; then
        VERIFY_ERROR="no valid signature of a Debian developer (gpgv, debian-keyring)"
        return 1
    fi
    # Only the signed part counts: gpgv checked it, and nothing else of the
    # file is read.
    sum=$(sed -n '/^-----BEGIN PGP SIGNED MESSAGE-----$/,/^-----BEGIN PGP SIGNATURE-----$/p' "$dsc" |
        awk -v f="$name" '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == f { print $1 }')
    if [[ -z $sum ]]; then
        VERIFY_ERROR="it lists no SHA-256 for $name"
        return 1
    fi
    if [[ $(sha256sum "$tarball" | cut -d' ' -f1) != "$sum" ]]; then
        VERIFY_ERROR="$name does not match the SHA-256 that the signed .dsc gives"
        return 1
    fi
}

# extract_tarball TARBALL DEST: DEST becomes the tree (top directory stripped).
extract_tarball() {
    local x=$2.x
    rm -rf "$x"
    mkdir -p "$x"
    tar -xf "$1" -C "$x" || die "cannot extract $1"
    local top=$x
    if [[ ! -f $x/configure ]]; then
        local -a dirs
        mapfile -t dirs < <(find "$x" -mindepth 1 -maxdepth 1)
        ((${#dirs[@]} == 1)) && [[ -f ${dirs[0]}/configure ]] ||
            die "$1 does not look like a PostgreSQL source tarball (no configure at its top)"
        top=${dirs[0]}
    fi
    rm -rf "$2"
    mv "$top" "$2"
    rm -rf "$x"
}

# Create build/pg-N-src from PG_SOURCE (a tree or a tarball) or from
# Debian's archive, as a git repository whose first commit is the pristine
# upstream source, tagged `upstream`.
obtain_pg_source() {
    [[ -d $PG_SRC/.git ]] && return 0
    local stage=$PG_SRC.new origin
    rm -rf "$stage"
    if [[ -n ${PG_SOURCE:-} ]]; then
        if [[ -d $PG_SOURCE ]]; then
            [[ -e $PG_SOURCE/config.status ]] &&
                die "$PG_SOURCE has been configured; give a clean tree (make distclean) or a tarball"
            step "PostgreSQL source: copying the tree $PG_SOURCE"
            mkdir -p "$stage"
            tar -C "$PG_SOURCE" --exclude=./.git -cf - . | tar -C "$stage" -xf -
            origin="source tree $PG_SOURCE"
        elif [[ -f $PG_SOURCE ]]; then
            step "PostgreSQL source: extracting $PG_SOURCE"
            extract_tarball "$PG_SOURCE" "$stage"
            origin=${PG_SOURCE##*/}
        else
            die "--pg-source/PG_SOURCE: $PG_SOURCE is neither a directory nor a file"
        fi
    else
        fetch_debian_source
        step "PostgreSQL source: extracting ${PG_TARBALL##*/} (upstream source, without Debian's patches)"
        extract_tarball "$PG_TARBALL" "$stage"
        origin="${PG_TARBALL##*/} from Debian's source package"
    fi
    [[ -f $stage/configure && -f $stage/src/include/pg_config.h.in ]] ||
        die "$origin is not a PostgreSQL source tree"
    local version
    version=$(sed -n "s/^PACKAGE_VERSION='\\(.*\\)'\$/\\1/p" "$stage/configure")
    [[ $version == "$PG_MAJOR".* ]] || die "$origin is PostgreSQL ${version:-(unknown version)}, not $PG_MAJOR"
    [[ -d $stage/debian ]] && warn "$origin contains debian/: taken as it is (whatever patches it has applied stay applied)"

    step "Recording PostgreSQL $version in git (${PG_SRC#"$ROOT"/}, tag upstream)"
    git -C "$stage" init -q
    # No automatic gc in the background while the scripts run git am.
    git -C "$stage" config gc.auto 0
    printf '%s\n' /.fe-series /.fe-configure /.fe-installed >>"$stage/.git/info/exclude"
    # -f: the tarball ships generated files (gram.c, ...) that upstream's
    # .gitignore lists; they are part of the source as released.
    git -C "$stage" add -A -f
    git -C "$stage" "${GIT_IDENTITY[@]}" commit -q -m "PostgreSQL $version" -m "Pristine upstream source: $origin."
    git -C "$stage" tag upstream
    mv "$stage" "$PG_SRC"
}

# --- the patch series --------------------------------------------------------

# Reset build/pg-N-src to `upstream` and apply patches/pgN/*.patch in order,
# only when the series changed since the last time. FORCE=1 discards
# commits or edits in the tree that are not in the series.
apply_series() {
    local want have_series have_head head
    want=$(series_hash)
    have_series=$(state_get series)
    have_head=$(state_get head)
    [[ -n $have_head ]] || have_head=$(pg_git rev-parse upstream)
    head=$(pg_git rev-parse HEAD)

    if [[ -d $PG_SRC/.git/rebase-apply ]]; then
        warn "an interrupted git am in ${PG_SRC#"$ROOT"/}: aborting it"
        pg_git am --abort || true
        head=$(pg_git rev-parse HEAD)
    fi

    if [[ $want == "$have_series" ]]; then
        if [[ $head != "$have_head" ]]; then
            local n
            n=$(pg_git rev-list --count "$have_head..HEAD" 2>/dev/null || echo "some")
            warn "${PG_SRC#"$ROOT"/} has $n commit(s) that are not in patches/pg$PG_MAJOR: building the tree as it is; run scripts/update-patches --pg $PG_MAJOR to export them"
        fi
        return 0
    fi

    local dirty=""
    if [[ $head != "$have_head" ]]; then
        dirty="commits not exported to patches/pg$PG_MAJOR:"$'\n'$(pg_git log --oneline "$have_head..HEAD" 2>/dev/null | sed 's/^/    /')
    fi
    if ! pg_git diff --quiet HEAD; then
        dirty+=$'\n'"uncommitted changes:"$'\n'$(pg_git diff --stat HEAD | sed 's/^/    /')
    fi
    if [[ -n $dirty ]]; then
        if [[ ${FORCE:-0} == 1 ]]; then
            warn "--force: discarding what ${PG_SRC#"$ROOT"/} has beyond the series ($dirty)"
        else
            die "patches/pg$PG_MAJOR changed, but ${PG_SRC#"$ROOT"/} has $dirty
Run scripts/update-patches --pg $PG_MAJOR first to keep that work in the series, or scripts/build --pg $PG_MAJOR --force to discard it."
        fi
    fi

    local -a patches
    mapfile -t patches < <(series_files)
    ((${#patches[@]})) || die "patches/pg$PG_MAJOR has no patches"
    step "Applying patches/pg$PG_MAJOR (${#patches[@]} patches) to upstream"
    pg_git config gc.auto 0
    pg_git reset -q --hard upstream
    local p
    for p in "${patches[@]}"; do
        note "${p##*/}"
        if ! pg_git am -q --committer-date-is-author-date "$p" >"$LOG_DIR/pg-$PG_MAJOR-am.log" 2>&1; then
            grep -Ev '^hint:|resolved this problem|skip this patch|restore the original branch' \
                "$LOG_DIR/pg-$PG_MAJOR-am.log" | sed 's/^/    /' >&2 || true
            pg_git am --abort >/dev/null 2>&1 || warn "git am --abort failed in ${PG_SRC#"$ROOT"/}"
            state_write "" "$(pg_git rev-parse HEAD)"
            die "patch ${p#"$ROOT"/} does not apply to PostgreSQL $(sed -n "s/^PACKAGE_VERSION='\\(.*\\)'\$/\\1/p" "$PG_SRC/configure") (git am aborted; ${PG_SRC#"$ROOT"/} has the patches before it)"
        fi
    done
    state_write "$want" "$(pg_git rev-parse HEAD)"
}

# --- configure or meson setup, build, install ------------------------------

# The same features for every version and both build systems: TAP tests,
# OpenSSL, no ICU, debug symbols (-O2 -g), and the data encryption switch.
# PG_CFLAGS, when set, replaces the optimization and debug flags (.ci/run
# sets -O1, which compiles in about half the time of -O2 -g).
pg_setup_args() {
    if [[ $PG_BUILD_SYSTEM == meson ]]; then
        local -a opt=(-Dbuildtype=debugoptimized)
        [[ -n ${PG_CFLAGS:-} ]] && opt=(-Dbuildtype=plain "-Dc_args=$PG_CFLAGS")
        printf '%s\n' "--prefix=$PG_PREFIX" -Dtap_tests=enabled -Dssl=openssl \
            -Dicu=disabled "${opt[@]}" -Ddatakey=enabled
    else
        local -a opt=(--enable-debug)
        [[ -n ${PG_CFLAGS:-} ]] && opt=("CFLAGS=$PG_CFLAGS")
        printf '%s\n' "--prefix=$PG_PREFIX" --enable-tap-tests --with-openssl \
            --without-icu "${opt[@]}" --enable-depend --with-datakey "CC=ccache gcc"
    fi
}

configure_pg() {
    local -a args
    mapfile -t args < <(pg_setup_args)
    local want
    want=$(printf '%q ' "$PG_BUILD_SYSTEM" "${args[@]}")
    local done_mark=$PG_SRC/config.status
    [[ $PG_BUILD_SYSTEM == meson ]] && done_mark=$PG_OBJ/build.ninja
    if [[ -f $done_mark && -f $CONFIGURE_STATE && $(<"$CONFIGURE_STATE") == "$want" ]]; then
        return 0
    fi
    rm -f "$CONFIGURE_STATE"
    if [[ $PG_BUILD_SYSTEM == meson ]]; then
        step "PostgreSQL $PG_MAJOR: meson setup ${PG_OBJ#"$ROOT"/} (log: build/logs/pg-$PG_MAJOR-setup.log)"
        rm -rf "$PG_OBJ"
        # meson uses ccache by itself when it is installed.
        run_logged "pg-$PG_MAJOR-setup" meson setup "$PG_OBJ" "$PG_SRC" "${args[@]}"
    else
        step "PostgreSQL $PG_MAJOR: configure (log: build/logs/pg-$PG_MAJOR-setup.log)"
        (cd "$PG_SRC" && run_logged "pg-$PG_MAJOR-setup" ./configure "${args[@]}")
    fi
    printf '%s' "$want" >"$CONFIGURE_STATE"
}

# Build and install; the install is skipped when the build changed nothing
# since the last one (make install copies every file each time).
make_and_install_pg() {
    local stamp=$PG_OBJ/.fe-installed
    if [[ $PG_BUILD_SYSTEM == meson ]]; then
        step "PostgreSQL $PG_MAJOR: ninja -j$JOBS (log: build/logs/pg-$PG_MAJOR-make.log)"
        run_logged "pg-$PG_MAJOR-make" ninja -C "$PG_OBJ" -j"$JOBS"
    else
        step "PostgreSQL $PG_MAJOR: make -j$JOBS (log: build/logs/pg-$PG_MAJOR-make.log)"
        run_logged "pg-$PG_MAJOR-make" make -C "$PG_SRC" -j"$JOBS"
    fi
    if [[ -f $stamp && -x $PG_PREFIX/bin/postgres ]] &&
        [[ -z $(find "$PG_OBJ" \( -path "$PG_OBJ/.git" -o -path "$PG_OBJ/tmp_install" -o -name tmp_check -o -name testrun \) -prune -o -newer "$stamp" -type f ! -name '.fe-*' ! -name '.ninja_*' ! -path '*/meson-logs/*' -print -quit) ]]; then
        note "PostgreSQL $PG_MAJOR up to date in ${PG_PREFIX#"$ROOT"/}"
        return 0
    fi
    step "PostgreSQL $PG_MAJOR: install into ${PG_PREFIX#"$ROOT"/} (log: build/logs/pg-$PG_MAJOR-install.log)"
    rm -f "$stamp"
    if [[ $PG_BUILD_SYSTEM == meson ]]; then
        run_logged "pg-$PG_MAJOR-install" meson install -C "$PG_OBJ" --quiet --only-changed
    else
        run_logged "pg-$PG_MAJOR-install" make -C "$PG_SRC" -j"$JOBS" install
    fi
    touch "$stamp"
}
