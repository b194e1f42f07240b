// Rotation of the key wrapping: the data key stays, its wrapping changes.
#pragma once

#include <string>

namespace pg_datakey {

struct RewrapRequest {
    std::string datadir;
    std::string old_unwrap;
    std::string new_wrap;
    std::string new_unwrap;
    // The configuration file that names the unwrap command (config_file).
    std::string config_file;
    bool verify = true;
    // Rewrite postgresql.auto.conf even while a postmaster runs (ALTER
    // SYSTEM meanwhile would lose one of the two updates).
    bool edit_auto_conf = false;
    int timeout_seconds = 0;
};

struct RewrapResult {
    int bits = 0;
    std::string check_value;
    bool rolled_back_debris = false;
};

// The whole protocol (docs/pg_datakey.md), holding the rewrap lock. Throws
// ToolError(exit_needs_repair) when a committed rewrap awaits repair.
RewrapResult rewrap(const RewrapRequest& request);

} // namespace pg_datakey
