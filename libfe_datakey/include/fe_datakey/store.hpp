// The key files inside a data directory: pg_encryption/key.bin (wrapped key)
// and pg_encryption/key.check (non-secret key check).
#pragma once

#include "fe_datakey/command.hpp"
#include "fe_datakey/key.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <sys/types.h>

namespace fe_datakey {

constexpr const char* key_directory = "pg_encryption";
constexpr const char* key_file = "pg_encryption/key.bin";
constexpr const char* key_check_file = "pg_encryption/key.check";

// 0700, or 0750 when the data directory grants group access (initdb -g).
bool group_access(const std::string& datadir);

// Writes `data` to DATADIR/relpath durably: a temporary name beside it,
// fsync, rename, fsync of the directory. Mode 0600 (0640 with group access).
void write_file_durably(const std::string& datadir, const std::string& relpath,
                        const std::string& data);
void fsync_path(const std::string& path, bool is_directory);
// Replaces the file at `path` by `data` durably, with mode `mode`: written to
// path + ".tmp" (a stale one is removed first), fsync, rename, fsync of the
// directory. On failure `path` is left as it was and the temporary removed.
void replace_file_durably(const std::string& path, const void* data, std::size_t size, mode_t mode);
// The same through a temporary name of the caller's choice (beside `path`),
// for files whose ".tmp" name another program uses.
void replace_file_durably(const std::string& path, const std::string& temporary, const void* data,
                          std::size_t size, mode_t mode);

// A file's owner and group.
struct FileOwner {
    uid_t uid;
    gid_t gid;
};
// The same, the new file given `owner` before anything is written or renamed.
// When this process may not give it that owner (EPERM: not root, and the
// owner is another user or the group one it is not in), throws io with
// `path` untouched and the temporary removed.
void replace_file_durably(const std::string& path, const std::string& temporary, const void* data,
                          std::size_t size, mode_t mode, const FileOwner& owner);

// Wraps `key` with `wrap_command` (or stores it as it is in "-" mode) into
// DATADIR/relpath. The command writes to relpath + ".tmp" (its %p); only after
// it succeeds and left a non-empty file is that renamed onto relpath, so a
// failed or interrupted wrap never leaves a partial key file.
void wrap_key_to(const std::string& datadir, const std::string& relpath,
                 const std::string& wrap_command, const Key& key, const RunOptions& options);

// Creates pg_encryption/ (mode per group_access) if needed, writes key.check
// and wraps the key into key.bin.
void create_key_store(const std::string& datadir, const std::string& wrap_command, const Key& key,
                      const RunOptions& options);

// DATADIR/pg_encryption/key.check: missing is an error (check_invalid).
KeyCheck read_key_check(const std::string& datadir);
// The same, or nothing when the file does not exist; errors name the file
// relative to the data directory.
std::optional<KeyCheck> find_key_check(const std::string& datadir);

// Unwraps DATADIR/relpath (default key.bin) with `unwrap_command` (or reads
// it in "-" mode) and verifies it against key.check.
Key load_key(const std::string& datadir, const std::string& unwrap_command,
             const RunOptions& options, const std::string& relpath = key_file);

// Unwraps a key file given by the user (initdb --copy-key-from): the command
// runs in the data directory that holds the file's pg_encryption/ directory
// (else the file's own directory) with %p relative to it; verified against
// the key.check beside the file when there is one. Returns the key and, when
// found, its check.
Key load_key_file(const std::string& key_file_path, const std::string& unwrap_command,
                  const RunOptions& options, std::optional<KeyCheck>* check_found = nullptr);

// Refuses a key file path whose part that load_key_file substitutes into %p
// (the file name, or pg_encryption/NAME) is not shell-safe (see
// check_path_is_shell_safe); the directory part is only the working
// directory and may hold anything. Throws unsafe_path.
void check_key_file_path(const std::string& key_file_path);

} // namespace fe_datakey
