# The "# Versions:" line of an end-to-end test file (tests/e2e/*.pl): which
# PostgreSQL versions the file runs for. Needs PG_VERSIONS (common.sh).

# e2e_versions FILE: what its "# Versions:" line says ("across", or version
# numbers, where "newest" is the newest version selected), or nothing when
# it has none (every version).
e2e_versions() {
    sed -n 's/^# Versions: *//p' "$1" | head -n 1
}

# e2e_versions_problem FILE: what is wrong with its "# Versions:" line, or
# nothing. A line the runner would not read (another spelling) or a version
# it does not know would otherwise make the file run where it was not meant
# to, or nowhere.
e2e_versions_problem() {
    local line v
    line=$(grep -iE '^#[[:space:]]*versions?[[:space:]]*:' "$1" | head -n 1) || true
    [[ -n $line ]] || return 0
    if [[ ! $line =~ ^'# Versions: '[^[:space:]] ]]; then
        echo "\"$line\" is not of the form \"# Versions: across|newest|N...\""
        return 0
    fi
    # shellcheck disable=SC2086 # the versions are words
    set -- ${line#'# Versions: '}
    [[ $* == across ]] && return 0
    for v in "$@"; do
        [[ $v == newest || " ${PG_VERSIONS[*]} " == *" $v "* ]] ||
            echo "\"$v\" in \"$line\" is neither newest nor one of ${PG_VERSIONS[*]}"
    done
    return 0
}
