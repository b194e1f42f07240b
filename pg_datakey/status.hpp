// What status reports: read from the files only, never runs a command and
// never needs the key.
#pragma once

#include "config_file.hpp"
#include "recovery.hpp"

#include "fe_datakey/error.hpp"

#include <cstdint>
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
    ConfigLocation config;
    std::uint32_t control_version = 0;
    bool control_has_encryption_fields = false;
    std::uint32_t data_encryption_version = 0;    // from pg_control
    std::uint32_t data_encryption_key_length = 0; // bits, from pg_control
    bool encrypted = false;                       // pg_control says so
    // pg_control and the key files disagree (status then exits with
    // exit_key_files_disagree after printing).
    std::string disagreement;
    std::string disagreement_detail;
    // key.check cannot be read (malformed, not a regular file): the server
    // would refuse to start too, so status exits with it after printing.
    std::optional<fe_datakey::Error> key_check_error;
    int key_bits = 0;                          // 0 when the key check is unreadable
    std::string check_value;                   // empty when unreadable
    std::optional<std::string> unwrap_command; // as the configuration names it
    bool plaintext_key = false;                // the configuration says "-"
    std::vector<FileState> files;
    RewrapInspection rewrap;
    std::vector<std::string> warnings;
};

// Throws when pg_control cannot be read.
Status collect_status(const std::string& datadir, const ConfigLocation& config);

std::string render_status_text(const Status& status, bool show_commands);
std::string render_status_json(const Status& status, bool show_commands);

} // namespace pg_datakey
