// The data directory: -D, else PGDATA; it must look like a cluster. Whether
// it is encrypted is what its pg_control says, never whether a file exists.
#pragma once

#include "fe_datakey/control_file.hpp"

#include <optional>
#include <string>

namespace pg_datakey {

// Throws ToolError(exit_usage) when neither is given, an I/O error when the
// directory is missing or is not a database cluster directory, and
// ToolError(exit_wrong_user) when another user owns it (trust.hpp).
std::string resolve_data_directory(const std::optional<std::string>& option);

// pg_control's encryption fields set against the key files.
struct EncryptionState {
    fe_datakey::ControlFile control;
    bool key_file = false;  // pg_encryption/key.bin exists (any type)
    bool key_check = false; // pg_encryption/key.check exists
    // Why pg_control and the files disagree; empty when they agree.
    std::string disagreement;
    std::string disagreement_detail;
};

// Reads pg_control (throws its errors) and looks at the key files.
EncryptionState encryption_state(const std::string& datadir);

// Throws ToolError(exit_key_files_disagree) when the state has a
// disagreement.
void require_agreement(const EncryptionState& state);

// The cluster must be encrypted per pg_control and its key files must be
// there (exit_not_encrypted / exit_key_files_disagree otherwise).
EncryptionState require_encrypted(const std::string& datadir);

// A key that unwrapped and matched key.check must also have the length
// pg_control records: ToolError(exit_key_files_disagree) otherwise.
void require_key_length(const EncryptionState& state, int bits);

} // namespace pg_datakey
