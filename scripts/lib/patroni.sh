# shellcheck shell=bash
# Patroni 4, the HA manager of tests/e2e/710 and 720 on PostgreSQL 17 and
# 18. Debian 12's Patroni 3.0 predates both; trixie's Patroni 4.0 is pure
# Python and its dependencies are all in bookworm, so it is built here from
# trixie's source package as a backport would be (as python3-moto is, see
# moto.sh), and apt installs it with its dependencies from bookworm.
#
# Two differences from moto.sh, both forced:
# - The archive mirror this runs against does not serve every .dsc (it
#   answers 404 for patroni's), so apt-get source cannot be used. The
#   orig and debian tarballs are fetched by apt-helper with the SHA-256 that
#   apt-get source --print-uris takes from trixie's signed Sources index
#   (the deb-src entry of ensure_deb_src), which is what the .dsc would
#   have checked, and are unpacked by hand; dpkg-buildpackage applies the
#   quilt patches.
# - Its debian/rules runs pytest in an override that ignores nocheck (the
#   test dependencies are not all in bookworm): the override is made to
#   honour nocheck before the build.
# Sourced by common.sh.

PATRONI_SOURCE=patroni/trixie
PATRONI_PACKAGE=patroni
# The oldest Patroni that knows PostgreSQL 17 and 18.
PATRONI_MIN_VERSION=4.0.7

patroni_missing() {
    local v
    v=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$PATRONI_PACKAGE" 2>/dev/null || true)
    [[ $v == 'ii '* ]] || return 0
    ! dpkg --compare-versions "${v#ii }" ge "$PATRONI_MIN_VERSION"
}

# ensure_patroni: build and install Patroni 4 unless it is installed.
# Needs SUDO (see prepare_system) and the build dependencies in DEPS.
ensure_patroni() {
    patroni_missing || return 0
    local uris
    if ! uris=$(apt-get source -q --print-uris "$PATRONI_SOURCE" 2>/dev/null) ||
        [[ $uris != *".orig.tar."* ]]; then
        ensure_deb_src 17
        uris=$(apt-get source -q --print-uris "$PATRONI_SOURCE") ||
            die "apt-get source lists no $PATRONI_SOURCE, even with a deb-src entry for trixie"
    fi
    local work rc=0
    work=$(mktemp -d)
    # apt-helper downloads as _apt where it can write.
    chmod 755 "$work"
    step "Building $PATRONI_PACKAGE from Debian's source package $PATRONI_SOURCE (Debian 12 has Patroni 3.0)"
    (
        set -e
        cd "$work"
        # Lines: 'URI' NAME SIZE SHA256:HASH
        local uri name hash n=0
        while read -r uri name _ hash; do
            uri=${uri#\'} uri=${uri%\'}
            case $name in
            *.orig.tar.* | *.debian.tar.*) ;;
            *) continue ;;
            esac
            /usr/lib/apt/apt-helper -q download-file "$uri" "$work/$name" "$hash"
            n=$((n + 1))
        done < <(grep "^'" <<<"$uris")
        ((n == 2)) || {
            echo "expected an orig and a debian tarball, got $n files"
            exit 1
        }
        mkdir src
        tar -xf "$(compgen -G '*.orig.tar.*' | head -n 1)" -C src --strip-components=1
        tar -xf "$(compgen -G '*.debian.tar.*' | head -n 1)" -C src
        cd src
        grep -q '^	python3 -m pytest tests$' debian/rules || {
            echo "debian/rules has no pytest line to make honour nocheck"
            exit 1
        }
        # shellcheck disable=SC2016 # make's $(...), not the shell's
        sed -i 's/^\tpython3 -m pytest tests$/\t$(if $(filter nocheck,$(DEB_BUILD_OPTIONS)),:,python3 -m pytest tests)/' debian/rules
        # Debian's own python3 and tools, whatever else is first in PATH.
        # Rules-Requires-Root: no, so any user can build it.
        env PATH=/usr/sbin:/usr/bin:/sbin:/bin DEB_BUILD_OPTIONS=nocheck DEB_BUILD_PROFILES=nocheck \
            nice -n 10 dpkg-buildpackage -b -us -uc -d
    ) >"$work/build.log" 2>&1 || rc=$?
    local deb=""
    if ((rc == 0)); then
        deb=$(compgen -G "$work/${PATRONI_PACKAGE}_*_all.deb" | head -n 1 || true)
        [[ -n $deb ]] || rc=1
    fi
    if ((rc != 0)); then
        tail -n 40 "$work/build.log" | sed 's/^/    /' >&2
        rm -rf "$work"
        die "could not build $PATRONI_PACKAGE from $PATRONI_SOURCE (the end of its build log is above)"
    fi
    export DEBIAN_FRONTEND=noninteractive
    run_logged apt-install-patroni "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$deb" || {
        rm -rf "$work"
        die "could not install $deb"
    }
    rm -rf "$work"
}
