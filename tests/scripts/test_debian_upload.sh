#!/usr/bin/env bash
# The check that lets scripts/build take a PostgreSQL source upload that the
# archive's signed indices no longer list (scripts/lib/pg.sh,
# verify_debian_upload): a real .dsc that scripts/build downloaded, with
# its tarball, passes; the same .dsc with one checksum digit changed, the
# .dsc without its signature, and the tarball with one byte more are each
# refused, with the reason. TAP output.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)

# shellcheck source=lib/tap.sh
source "$here/lib/tap.sh"
contains() { [[ $1 == *"$2"* ]]; }

# shellcheck source=../../scripts/lib/common.sh
source "$repo/scripts/lib/common.sh"
# shellcheck source=../../scripts/lib/pg.sh
source "$repo/scripts/lib/pg.sh"

dsc=""
for f in "$repo"/build/downloads/postgresql-*.dsc; do
    [[ -f $f ]] || continue
    dsc=$f
    break
done
if [[ -z $dsc ]]; then
    echo "Bail out! no PostgreSQL .dsc in build/downloads: run scripts/build first"
    exit 1
fi
pkg=${dsc##*/}
pkg=${pkg%%_*}
version=${dsc##*_}
version=${version%.dsc}
upstream=${version%-*}
name=${pkg}_$upstream.orig.tar.bz2
tarball=$repo/build/downloads/$name
if [[ ! -f $tarball ]]; then
    echo "Bail out! $dsc has no tarball $name beside it"
    exit 1
fi
echo "# using ${dsc#"$repo"/}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

check_verify() { # check_verify WANT(pass|fail) DSC TARBALL NAME [REASON]
    local want=$1 reason=${5:-} rc=0
    VERIFY_ERROR=""
    verify_debian_upload "$2" "$3" "$4" 2>/dev/null || rc=$?
    if [[ $want == pass ]]; then
        ok "$rc" "$6"
    else
        ok "$((rc == 0))" "$6"
        if contains "$VERIFY_ERROR" "$reason"; then ok 0 "$6: says why"; else
            ok 1 "$6: says why"
            printf '#   got: %s\n' "$VERIFY_ERROR"
        fi
    fi
}

check_verify pass "$dsc" "$tarball" "$name" "" "the downloaded upload passes"

# One hexadecimal digit of the tarball's SHA-256 changed in the signed text.
NAME=$name perl -pe 'if ((/^Checksums-Sha256:/ ... /^\S/) and /^ ([0-9a-f])(\S+ \d+ \Q$ENV{NAME}\E)$/) { $_ = " " . ($1 eq "0" ? "1" : "0") . "$2\n" }' \
    "$dsc" >"$scratch/changed.dsc"
if cmp -s "$dsc" "$scratch/changed.dsc"; then
    ok 1 "the changed copy differs from the .dsc"
else
    ok 0 "the changed copy differs from the .dsc"
fi
check_verify fail "$scratch/changed.dsc" "$tarball" "$name" "no valid signature" \
    "a .dsc changed after signing is refused"

# The signed text without its signature.
sed -n '/^-----BEGIN PGP SIGNED MESSAGE-----$/,/^-----BEGIN PGP SIGNATURE-----$/p' "$dsc" |
    sed '$d' >"$scratch/unsigned.dsc"
check_verify fail "$scratch/unsigned.dsc" "$tarball" "$name" "no valid signature" \
    "a .dsc without its signature is refused"

# The tarball with one byte more.
cp "$tarball" "$scratch/$name"
printf 'x' >>"$scratch/$name"
check_verify fail "$dsc" "$scratch/$name" "$name" "does not match the SHA-256" \
    "a tarball that is not the signed one is refused"

# A name the .dsc does not list.
check_verify fail "$dsc" "$tarball" "${pkg}_0.0.orig.tar.bz2" "lists no SHA-256" \
    "a tarball the .dsc does not name is refused"

done_testing
