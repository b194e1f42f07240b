# shellcheck shell=bash
# python3-moto, the local KMS server of tests/e2e/650_keystore_aws_kms.pl.
# Debian 12 does not have it; trixie does, and it is pure Python, so it is
# built here from trixie's source package as a backport would be: apt-get
# source fetches it through the deb-src entry for trixie (checked against
# the signed Sources index, as PostgreSQL 17's source is), dpkg-buildpackage
# builds the binary package without its test suite (nocheck: the test
# dependencies are not all in bookworm), and apt installs it with its
# dependencies from bookworm. Sourced by common.sh.

MOTO_SOURCE=python-moto/trixie
MOTO_PACKAGE=python3-moto

moto_missing() { [[ -n $(missing_deps "$MOTO_PACKAGE") ]]; }

# ensure_moto: build and install python3-moto unless it is installed.
# Needs SUDO (see prepare_system) and the build dependencies in DEPS.
ensure_moto() {
    moto_missing || return 0
    # The source package comes from trixie's deb-src entry, the one
    # PostgreSQL 17 needs too.
    # (apt-cache showsrc takes no /suite.)
    if ! apt-get source -q --print-uris "$MOTO_SOURCE" >/dev/null 2>&1; then
        ensure_deb_src 17
    fi
    local work rc=0
    work=$(mktemp -d)
    step "Building $MOTO_PACKAGE from Debian's source package $MOTO_SOURCE (not in Debian 12)"
    # Debian's own python3 and tools, whatever else is first in PATH (a
    # python3 of its own would lack the build modules). Rules-Requires-Root:
    # no, so any user can build it.
    (
        cd "$work" &&
            env PATH=/usr/sbin:/usr/bin:/sbin:/bin apt-get source -q "$MOTO_SOURCE" &&
            cd "$(find . -mindepth 1 -maxdepth 1 -type d -name 'python-moto-*' -print -quit)" &&
            env PATH=/usr/sbin:/usr/bin:/sbin:/bin DEB_BUILD_OPTIONS=nocheck DEB_BUILD_PROFILES=nocheck \
                dpkg-buildpackage -b -us -uc -d
    ) >"$work/build.log" 2>&1 || rc=$?
    if ((rc == 0)); then
        local deb
        deb=$(compgen -G "$work/${MOTO_PACKAGE}_*_all.deb" | head -n 1 || true)
        [[ -n $deb ]] || rc=1
    fi
    if ((rc != 0)); then
        tail -n 40 "$work/build.log" | sed 's/^/    /' >&2
        rm -rf "$work"
        die "could not build $MOTO_PACKAGE from $MOTO_SOURCE (the end of its build log is above)"
    fi
    # apt reads the file as its own user: the work directory is ours, 0700.
    chmod 755 "$work"
    export DEBIAN_FRONTEND=noninteractive
    run_logged apt-install-moto "${SUDO[@]}" apt-get install -y -q --no-install-recommends "$deb" || {
        rm -rf "$work"
        die "could not install $deb"
    }
    rm -rf "$work"
}
