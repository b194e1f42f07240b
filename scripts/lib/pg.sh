# shellcheck shell=bash
# The patched PostgreSQL tree in build/pg-src: its source, the patch series
# state, configure. Source after common.sh.

# build/pg-src is a git repository: the pristine upstream source committed
# and tagged `upstream`, then one commit per patch of patches/pg15/. What was
# last applied is recorded in .fe-series (series=HASH, head=COMMIT).
SERIES_STATE=$PG_SRC/.fe-series
CONFIGURE_STATE=$PG_SRC/.fe-configure

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

# Download Debian's source package of postgresql-15 into build/downloads,
# trying the versions apt knows newest first (the newest listed one is not
# always on the mirror). Sets PG_TARBALL to the upstream (orig) tarball.
fetch_debian_source() {
    local dl=$BUILD_DIR/downloads
    mkdir -p "$dl"
    local -a versions
    mapfile -t versions < <(apt-cache showsrc postgresql-15 2>/dev/null |
        awk '/^Version:/ { print $2 }' | sort -u -V -r)
    ((${#versions[@]} > 0)) ||
        die "apt knows no source package postgresql-15: add a deb-src entry for bookworm and run apt-get update (scripts/build does this when run as root), or pass --pg-source"
    local v up tarball
    for v in "${versions[@]}"; do
        up=${v#*:}
        up=${up%-*}
        tarball=$(compgen -G "$dl/postgresql-15_${up}.orig.tar.*" | head -n 1 || true)
        if [[ -n $tarball && -f $dl/postgresql-15_${v#*:}.dsc ]]; then
            note "using $tarball downloaded earlier"
            PG_TARBALL=$tarball
            return 0
        fi
        step "Fetching PostgreSQL source: apt-get source --download-only postgresql-15=$v"
        if (cd "$dl" && run_logged apt-source apt-get source -q --download-only "postgresql-15=$v") 2>/dev/null; then
            tarball=$(compgen -G "$dl/postgresql-15_${up}.orig.tar.*" | head -n 1 || true)
            if [[ -n $tarball ]]; then
                PG_TARBALL=$tarball
                return 0
            fi
        fi
        note "postgresql-15=$v could not be downloaded; trying the next version"
    done
    die "none of the postgresql-15 versions apt lists (${versions[*]}) could be downloaded (see build/logs/apt-source.log)"
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

# Create build/pg-src from PG_SOURCE (a tree or a tarball) or from Debian's
# archive, as a git repository whose first commit is the pristine upstream
# source, tagged `upstream`.
obtain_pg_source() {
    [[ -d $PG_SRC/.git ]] && return 0
    local stage=$BUILD_DIR/pg-src.new origin
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
    [[ $version == 15.* ]] || die "$origin is PostgreSQL ${version:-(unknown version)}, not 15"
    [[ -d $stage/debian ]] && warn "$origin contains debian/: taken as it is (whatever patches it has applied stay applied)"

    step "Recording PostgreSQL $version in git (build/pg-src, tag upstream)"
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

# Reset build/pg-src to `upstream` and apply patches/pg15/*.patch in order,
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
        warn "an interrupted git am in build/pg-src: aborting it"
        pg_git am --abort || true
        head=$(pg_git rev-parse HEAD)
    fi

    if [[ $want == "$have_series" ]]; then
        if [[ $head != "$have_head" ]]; then
            local n
            n=$(pg_git rev-list --count "$have_head..HEAD" 2>/dev/null || echo "some")
            warn "build/pg-src has $n commit(s) that are not in patches/pg15: building the tree as it is; run scripts/update-patches to export them"
        fi
        return 0
    fi

    local dirty=""
    if [[ $head != "$have_head" ]]; then
        dirty="commits not exported to patches/pg15:"$'\n'$(pg_git log --oneline "$have_head..HEAD" 2>/dev/null | sed 's/^/    /')
    fi
    if ! pg_git diff --quiet HEAD; then
        dirty+=$'\n'"uncommitted changes:"$'\n'$(pg_git diff --stat HEAD | sed 's/^/    /')
    fi
    if [[ -n $dirty ]]; then
        if [[ ${FORCE:-0} == 1 ]]; then
            warn "--force: discarding what build/pg-src has beyond the series ($dirty)"
        else
            die "patches/pg15 changed, but build/pg-src has $dirty
Run scripts/update-patches first to keep that work in the series, or scripts/build --force to discard it."
        fi
    fi

    local -a patches
    mapfile -t patches < <(series_files)
    step "Applying patches/pg15 (${#patches[@]} patches) to upstream"
    pg_git config gc.auto 0
    pg_git reset -q --hard upstream
    local p
    for p in "${patches[@]}"; do
        note "${p##*/}"
        if ! pg_git am -q --committer-date-is-author-date "$p" >"$LOG_DIR/pg-am.log" 2>&1; then
            grep -Ev '^hint:|resolved this problem|skip this patch|restore the original branch' \
                "$LOG_DIR/pg-am.log" | sed 's/^/    /' >&2 || true
            pg_git am --abort >/dev/null 2>&1 || warn "git am --abort failed in build/pg-src"
            state_write "" "$(pg_git rev-parse HEAD)"
            die "patch ${p#"$ROOT"/} does not apply to PostgreSQL $(sed -n "s/^PACKAGE_VERSION='\\(.*\\)'\$/\\1/p" "$PG_SRC/configure") (git am aborted; build/pg-src has the patches before it)"
        fi
    done
    state_write "$want" "$(pg_git rev-parse HEAD)"
}

# --- configure ---------------------------------------------------------------

PG_CONFIGURE_ARGS=(
    "--prefix=$PG_PREFIX"
    --enable-tap-tests
    --with-openssl
    --without-icu
    --enable-debug
    --enable-depend
    --with-datakey
    "CC=ccache gcc"
)

configure_pg() {
    local want
    want=$(printf '%q ' "${PG_CONFIGURE_ARGS[@]}")
    if [[ -f $PG_SRC/config.status && -f $CONFIGURE_STATE && $(<"$CONFIGURE_STATE") == "$want" ]]; then
        return 0
    fi
    step "PostgreSQL: configure (log: build/logs/pg-configure.log)"
    rm -f "$CONFIGURE_STATE"
    (cd "$PG_SRC" && run_logged pg-configure ./configure "${PG_CONFIGURE_ARGS[@]}")
    printf '%s' "$want" >"$CONFIGURE_STATE"
}
