// What status reports: read from the files only, never runs a command and
// never needs the key.
#pragma once

#include "recovery.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pg_datakey {

struct FileState {
    std::string path; // relative to the data directory
    bool directory = false;
    unsigned mode = 0;
    std::string owner;
};

struct Status {
    std::string datadir;
    bool encrypted = false;
    int key_bits = 0;                          // 0 when the key check is unreadable
    std::string check_value;                   // empty when unreadable
    std::optional<std::string> unwrap_command; // as the configuration names it
    bool plaintext_key = false;                // the configuration says "-"
    std::vector<FileState> files;
    RewrapInspection rewrap;
    std::vector<std::string> warnings;
};

Status collect_status(const std::string& datadir);

std::string render_status_text(const Status& status, bool show_commands);
std::string render_status_json(const Status& status, bool show_commands);

} // namespace pg_datakey
