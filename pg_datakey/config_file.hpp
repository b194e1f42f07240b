// Which postgresql.conf the server reads. On the Debian/Ubuntu layout it is
// outside the data directory (config_file), so pg_datakey takes
// --config-file and otherwise finds it the way the server was started.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace pg_datakey {

struct ConfigLocation {
    std::string path;
    // "--config-file", "postmaster.opts" (of a running server),
    // "postgres -C" (the options of the last start), or "data directory".
    std::string source;
};

// In this order: the option; config_file in the options of the last start
// (postmaster.opts, parsed, never run); when those name another -D (a
// configuration directory) and no config_file, what a trusted postgres
// (beside pg_datakey, else /usr/lib/postgresql/N/bin) answers to `postgres
// -D DIR -C config_file`, else DIR/postgresql.conf; DATADIR/postgresql.conf.
ConfigLocation locate_config_file(const std::string& datadir,
                                  const std::optional<std::string>& option);

// The postmaster that holds the data directory, if postmaster.pid names a
// process that exists.
std::optional<pid_t> live_postmaster(const std::string& datadir);

// The words of postmaster.opts (the program first), empty when it is absent.
std::vector<std::string> postmaster_opts(const std::string& datadir);

// The options of a postgres command line that say where its configuration
// is; every other word is ignored.
struct ServerOptions {
    std::optional<std::string> config_file; // -c config_file=, --config-file=, ...
    std::optional<std::string> data_dir;    // -D DIR, -DDIR
};

// Parses the arguments (without the program) of a postgres command line:
// config_file in -c config_file=X, -c config-file=X, -cconfig_file=X,
// --config_file=X, --config-file=X, and -D DIR / -DDIR; the last one wins,
// relative paths are taken relative to the data directory.
ServerOptions parse_server_options(const std::vector<std::string>& args,
                                   const std::string& datadir);

// The cluster's major version from DATADIR/PG_VERSION, when that is 1 to 4
// digits and nothing else.
std::optional<std::string> cluster_major_version(const std::string& datadir);

// Before anything changes: every configuration file a rewrap will write must
// be a regular file (a symbolic link's target: the link stays) that can be
// rewritten in place. Throws ToolError(exit_io) naming the file otherwise.
void check_config_updatable(const std::string& path);

} // namespace pg_datakey
