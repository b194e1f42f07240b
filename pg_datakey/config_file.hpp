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

// In this order: the option; config_file in the options of the running
// server (postmaster.opts while postmaster.pid names a live process);
// `postgres -C config_file` with the options of the last start
// (postmaster.opts; what pg_ctl restart uses; the postgres named there, else
// the one beside pg_datakey); DATADIR/postgresql.conf.
ConfigLocation locate_config_file(const std::string& datadir,
                                  const std::optional<std::string>& option);

// The postmaster that holds the data directory, if postmaster.pid names a
// process that exists.
std::optional<pid_t> live_postmaster(const std::string& datadir);

// The words of postmaster.opts (the program first), empty when it is absent.
std::vector<std::string> postmaster_opts(const std::string& datadir);

// config_file as set in a postgres command line (-c config_file=, -c
// config-file=, --config_file=, --config-file=), if any. Relative paths are
// taken relative to the data directory.
std::optional<std::string> config_file_in_options(const std::vector<std::string>& args,
                                                  const std::string& datadir);

// Before anything changes: every configuration file a rewrap will write must
// be a regular file (a symbolic link's target: the link stays) that can be
// rewritten in place. Throws ToolError(exit_io) naming the file otherwise.
void check_config_updatable(const std::string& path);

} // namespace pg_datakey
