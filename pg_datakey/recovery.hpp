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
    bool previous_key_kept = false;     // key.bin.prev exists: key.bin is not yet proven
};

// The phase in words ("interrupted after commit") and as status --json's
// key ("committed"); both from one table in recovery.cpp.
const char* phase_name(RewrapPhase phase);
const char* phase_key(RewrapPhase phase);

// Files an unfinished rewrap leaves, the journal aside.
std::vector<std::string> rewrap_debris(const std::string& datadir);

// Looks only; changes nothing and runs nothing.
RewrapInspection inspect_rewrap(const std::string& datadir);

// The configuration's unwrap command: the configuration file (config_file)
// always, and DATADIR/postgresql.auto.conf too when it sets the parameter
// (it would win).
void set_configured_unwrap_command(const std::string& datadir, const std::string& config_file,
                                   const std::string& command);
// True when DATADIR/postgresql.auto.conf sets the unwrap command.
bool auto_conf_sets_command(const std::string& datadir);

// How the journal names config_file: relative to datadir when it lies
// inside it, else as it is.
std::string journal_config_path(const std::string& datadir, const std::string& config_file);

// Both need the rewrap lock held by the caller. `config_file` is used when
// the journal names none.
void roll_back(const std::string& datadir);
void roll_forward(const std::string& datadir, const Journal& journal,
                  const std::string& config_file);

// Removes key.bin.prev once key.bin is proven (the caller unwrapped and
// checked it). Needs the rewrap lock.
void drop_previous_key(const std::string& datadir);

enum class RepairOutcome { nothing_to_do, rolled_back, completed };
RepairOutcome repair(const std::string& datadir, const std::string& config_file);

} // namespace pg_datakey
