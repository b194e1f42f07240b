// Files of the rewrap protocol, relative to the data directory, beside
// fe_datakey's key.bin and key.check.
#pragma once

namespace pg_datakey {

// The key wrapped with the new command, before it replaces key.bin.
constexpr const char* new_key_file = "pg_encryption/key.bin.new";
// The journal: its presence means the rewrap is committed (see docs).
constexpr const char* journal_file = "pg_encryption/rewrap.state";
// The key file a rewrap replaced, kept until the new key.bin is proven to
// unwrap (at once after a verified rewrap, else by pg_datakey verify).
constexpr const char* previous_key_file = "pg_encryption/key.bin.prev";
// Held with flock() by a running rewrap or repair.
constexpr const char* lock_file = "pg_encryption/rewrap.lock";

// Temporary names the library and we write before a rename: debris of an
// interrupted step, never needed for recovery.
constexpr const char* temporary_files[] = {
    "pg_encryption/key.bin.new.tmp",
    "pg_encryption/rewrap.state.tmp",
    "pg_encryption/key.bin.tmp",
};

} // namespace pg_datakey
