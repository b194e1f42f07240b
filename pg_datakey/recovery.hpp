// The state an interrupted rewrap left behind, and how to get out of it:
// without a journal nothing was committed and the debris is removed (roll
// back); with a journal the rewrap is finished (roll forward).
#pragma once

#include "journal.hpp"

#include <string>
#include <vector>

namespace pg_datakey {

enum class RewrapPhase {
    none,        // no rewrap debris
    in_progress, // another process holds the lock right now
    uncommitted, // debris without a journal: key.bin and the configuration are the old ones
    committed,   // a journal: the new key file must become key.bin and the configuration follow
};

struct RewrapInspection {
    RewrapPhase phase = RewrapPhase::none;
    std::vector<std::string> leftovers; // relative paths of debris files
    bool new_key_renamed = false;       // committed: key.bin already is the new file
};

const char* phase_name(RewrapPhase phase);

// Files an unfinished rewrap leaves, the journal aside.
std::vector<std::string> rewrap_debris(const std::string& datadir);

// Looks only; changes nothing and runs nothing.
RewrapInspection inspect_rewrap(const std::string& datadir);

// The configuration's unwrap command: postgresql.conf always, and
// postgresql.auto.conf too when it sets the parameter (it would win).
void set_configured_unwrap_command(const std::string& datadir, const std::string& command);

// Both need the rewrap lock held by the caller.
void roll_back(const std::string& datadir);
void roll_forward(const std::string& datadir, const Journal& journal);

enum class RepairOutcome { nothing_to_do, rolled_back, completed };
RepairOutcome repair(const std::string& datadir);

} // namespace pg_datakey
