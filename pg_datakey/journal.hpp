// pg_encryption/rewrap.state, the rewrap journal. It is written (durably)
// only after the new key file has been written and verified; from then on the
// rewrap is committed and recovery always completes it.
#pragma once

#include <optional>
#include <string>

namespace pg_datakey {

struct Journal {
    // The unwrap command the configuration must name once the new key file
    // is key.bin. Same secrecy as postgresql.conf, which will hold it too.
    std::string new_unwrap_command;
    // SHA-256 of the new key file's bytes (hex): tells recovery whether
    // key.bin is already the new file, and refuses a file swapped in since.
    // In "-" mode that is a hash of the key itself, kept beside the key and
    // removed with the journal.
    std::string new_key_sha256;
    // The configuration file the rewrap chose (--config-file or found), so
    // that repair updates the same one: relative to the data directory when
    // it lies inside it, so that a copy of the directory (a restored backup)
    // is repaired in place. Empty in journals of older releases.
    std::string config_file;
    // The new key file was unwrapped and checked before the commit: the
    // previous one (key.bin.prev) is removed at the end. Without it
    // (--no-verify) key.bin.prev stays until a verify succeeds.
    bool new_key_verified = false;

    std::string serialize() const;
    static Journal parse(const std::string& text); // throws check_invalid-like io error
};

// Hex SHA-256 of a file's contents, read through locked, wiped memory (in
// "-" mode the file is the plaintext key).
std::string file_sha256(const std::string& path);

void write_journal(const std::string& datadir, const Journal& journal);
std::optional<Journal> read_journal(const std::string& datadir);
// Removes the journal and fsyncs pg_encryption/: the end of a rewrap.
void remove_journal(const std::string& datadir);

} // namespace pg_datakey
