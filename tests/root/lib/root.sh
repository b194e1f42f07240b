# shellcheck shell=bash
# What each tests/root script starts with: $repo, TAP output (tap.sh), and
# the refusal to run as anyone but root.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)
# shellcheck source=../../scripts/lib/tap.sh
source "$repo/tests/scripts/lib/tap.sh"
if [[ $(id -u) -ne 0 ]]; then
    echo "Bail out! tests/root runs as root (scripts/test does so when started as root)"
    exit 1
fi
