// Exit statuses: one per kind of failure, so that monitoring can tell a wrong
// passphrase from a hung key service. docs/pg_datakey.md has the table.
#pragma once

#include "fe_datakey/error.hpp"

namespace pg_datakey {

enum ExitStatus : int {
    exit_ok = 0,
    exit_usage = 1,
    exit_not_encrypted = 2,
    exit_no_command = 3,
    exit_command_failed = 4,
    exit_timeout = 5,
    exit_wrong_key = 6,
    exit_bad_length = 7,
    exit_check_invalid = 8,
    exit_io = 9,
    exit_needs_repair = 10,
    exit_busy = 11,
    exit_internal = 12,
    // pg_control and the key files disagree: encrypted without a usable key
    // file, or a key file in a cluster that is not encrypted.
    exit_key_files_disagree = 13,
    // Run as root, or by a user other than the data directory's owner.
    exit_wrong_user = 14,
};

// A failure of the tool itself (not of the library), with its own status.
class ToolError : public fe_datakey::Error {
public:
    ToolError(ExitStatus status, std::string message, std::string detail = {},
              std::string hint = {})
        : Error(fe_datakey::ErrorCode::internal, std::move(message), std::move(detail),
                std::move(hint)),
          status_(status) {}
    ExitStatus status() const noexcept { return status_; }

private:
    ExitStatus status_;
};

ExitStatus exit_status_for(const fe_datakey::Error& error);

} // namespace pg_datakey
