// Whether a data directory's key files agree with the encryption state its
// pg_control records: the one check that the server, pg_rewind, pg_upgrade
// and pg_datakey make. It reads the files only and never runs a command.
#pragma once

#include "fe_datakey/error.hpp"

#include <string>
#include <vector>

namespace fe_datakey {

// The data encryption version pg_control records for this key layout.
constexpr unsigned control_encryption_version = 1;

// One way in which the key files and pg_control disagree. Files are named
// relative to the data directory, as the server names its own files.
struct KeyStateFinding {
    enum class Kind {
        key_files_unencrypted, // key.bin or key.check, pg_control version 0 (not_encrypted)
        unsupported_version,   // a data encryption version we do not know (check_invalid)
        invalid_key_length,    // a key length no cluster can have (check_invalid)
        key_file_missing,      // encrypted, no key.bin (io)
        key_file_unreadable,   // encrypted, key.bin not a readable regular file (io)
        key_check_missing,     // encrypted, no key.check (check_invalid)
        key_check_invalid,     // key.check unreadable or malformed (check_invalid, io)
        key_check_length,      // key.check's key length is not pg_control's (check_invalid)
    };
    Kind kind;
    Error error; // code, message, detail and hint
};

// Every finding about DATADIR's key files against pg_control's
// data_encryption_version and data_encryption_key_length; empty when they
// agree: version 0 and neither key file (a lone key.check too is refused), or
// version 1 with a readable key.bin and a valid key.check of that key length.
std::vector<KeyStateFinding> key_state_findings(const std::string& datadir, unsigned version,
                                                unsigned bits);

// Throws the error of the first finding, if any.
void check_key_state(const std::string& datadir, unsigned version, unsigned bits);

} // namespace fe_datakey
