# What a PostgreSQL TAP suite ran, from either build system, and the check
# that a pg-* stage makes of it: at least one test ran, and every TAP file
# the series adds to the suite ran (not skipped) and passed. A suite whose
# files all start with skip_all without the switch, or a meson --suite that
# matches nothing ("No suitable tests defined.", exit 0), would otherwise
# pass without having tested anything of ours.

# tap_results_from_prove LOG: "NAME RESULT" for each line prove printed for a
# file (t/NAME.pl ..... ok / skipped: ... / Failed ...), RESULT one of ok,
# skipped, failed.
tap_results_from_prove() {
    sed -nE 's#^t/([^ /]+)\.pl \.* ?(.*)$#\1 \2#p' "$1" |
        while read -r name rest; do
            case $rest in
            ok*) echo "$name ok" ;;
            skipped*) echo "$name skipped" ;;
            *) echo "$name failed" ;;
            esac
        done
}

# tap_results_from_meson TESTLOG: the same from meson's testlog.json (one
# JSON object a line, "name" like "initdb/002_data_encryption").
tap_results_from_meson() {
    perl -MJSON::PP -ne '
        my $t = eval { decode_json($_) } or next;
        next if $t->{name} =~ m{^setup/};    # the temporary installation
        my ($name) = $t->{name} =~ m{([^/]+)$} or next;
        my %as = (OK => "ok", SKIP => "skipped");
        print "$name ", $as{ $t->{result} } // "failed", "\n";' "$1"
}

# tap_results_check RESULTS NAME...: RESULTS holds "NAME RESULT" lines;
# fails, saying why, when it is empty or a NAME did not pass.
tap_results_check() {
    local results=$1 name result rc=0
    shift
    if [[ ! -s $results ]]; then
        note "no test ran in this suite"
        return 1
    fi
    for name in "$@"; do
        result=$(awk -v n="$name" '$1 == n { print $2 }' "$results" | tail -n 1)
        if [[ $result != ok ]]; then
            note "the series' test $name ${result:-did not run}${result:+ (not passed)}"
            rc=1
        fi
    done
    return "$rc"
}
