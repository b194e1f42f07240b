// The key files inside a data directory: pg_encryption/key.bin (wrapped key)
// and pg_encryption/key.check (non-secret key check).
#pragma once

#include "fe_datakey/command.hpp"
#include "fe_datakey/durable_file.hpp"
#include "fe_datakey/key.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <sys/types.h>

namespace fe_datakey {

constexpr const char* key_directory = "pg_encryption";
constexpr const char* key_file = "pg_encryption/key.bin";
constexpr const char* key_check_file = "pg_encryption/key.check";

// Whether the data directory grants its group access (initdb -g): the key
// directory is then made 0750 and the key files 0640, else 0700 and 0600.
bool group_access(const std::string& datadir);

// DATADIR/rel, or rel alone for an empty datadir (the working directory).
std::string data_directory_path(const std::string& datadir, const std::string& rel);

// Writes `data` to DATADIR/relpath durably: a temporary name beside it,
// fsync, rename, fsync of the directory. Mode 0600 (0640 with group access).
void write_file_durably(const std::string& datadir, const std::string& relpath,
                        const std::string& data);

// Wraps `key` with `wrap_command` (or stores it as it is in "-" mode) into
// DATADIR/relpath. The command writes to relpath + ".tmp" (its %p); only after
// it succeeds and left a non-empty file is that renamed onto relpath, so a
// failed or interrupted wrap never leaves a partial key file.
void wrap_key_to(const std::string& datadir, const std::string& relpath,
                 const std::string& wrap_command, const Key& key, const RunOptions& options);

// Creates pg_encryption/ (mode per group_access) if needed, wraps the key
// into key.bin, then writes key.check: a failed wrap leaves neither file, and
// when writing the check fails key.bin is removed again.
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

// check_key_file_path, and the file (through symbolic links: the user named
// it) must be a regular file (regular_file.hpp); missing is io too.
void check_key_file(const std::string& key_file_path);

// Refuses DATADIR/pg_encryption/ if anything in it is not a regular file
// (a FIFO, a directory, a socket, a symbolic link, a device), naming the
// first such entry in name order and its type (io). Nothing is opened. A
// missing pg_encryption/ passes. For what reads or replaces any of the
// files there (pg_datakey's verbs).
void check_key_directory(const std::string& datadir);

} // namespace fe_datakey
