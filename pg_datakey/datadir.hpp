// The data directory: -D, else PGDATA; it must look like a cluster. Whether
// it is encrypted is what its pg_control says, never whether a file exists.
#pragma once

#include "control_file.hpp"

#include "fe_datakey/key_state.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pg_datakey {

// Throws ToolError(exit_usage) when neither is given, an I/O error when the
// directory is missing or is not a database cluster directory, and
// ToolError(exit_wrong_user) when another user owns it (trust.hpp).
std::string resolve_data_directory(const std::optional<std::string>& option);

// pg_control's encryption fields set against the key files.
struct EncryptionState {
    ControlFile control;
    bool key_file = false;  // pg_encryption/key.bin exists (any type)
    bool key_check = false; // pg_encryption/key.check exists
    // Every finding of the library's key-state check (key_state.hpp).
    std::vector<fe_datakey::KeyStateFinding> findings;
    // The first finding by which pg_control and the files disagree; empty
    // when they agree.
    std::string disagreement;
    std::string disagreement_detail;
    std::string disagreement_hint;
};

// Reads pg_control (throws its errors) and checks the key files against it.
EncryptionState encryption_state(const std::string& datadir);

// Fails on the first finding: ToolError(exit_key_files_disagree) for a
// disagreement, the library's error for a malformed key check.
void require_agreement(const EncryptionState& state);

// The cluster must be encrypted per pg_control and its key files must be
// there (exit_not_encrypted / exit_key_files_disagree otherwise).
EncryptionState require_encrypted(const std::string& datadir);

// A key that unwrapped and matched key.check must also have the length
// pg_control records: ToolError(exit_key_files_disagree) otherwise.
void require_key_length(const EncryptionState& state, int bits);

} // namespace pg_datakey
