// The one rule for the files the library and pg_datakey read: a regular
// file, checked before anything is read from it or any command is given it,
// and opened so that open() itself can never block (a FIFO, a device).
#pragma once

#include "fe_datakey/durable_file.hpp"
#include "fe_datakey/error.hpp"

#include <optional>
#include <string>
#include <sys/types.h>

namespace fe_datakey {

// Whether a symbolic link may stand for the file. Inside pg_encryption/ it
// may not: pg_basebackup skips a symbolic link there ("skipping special
// file"), so a backup or standby would lack the key. A path the
// administrator names (initdb --copy-key-from FILE, postgresql.conf)
// follows links, as PostgreSQL does for the files its settings name.
enum class Links { refuse, follow };

// "a FIFO", "a directory", "a symbolic link", "a socket", "a character
// device", "a block device", or "not a regular file".
std::string file_type_name(mode_t mode);

// Whether `e` is the refusal below of a file that is not a regular one (as
// opposed to a failed stat or open).
bool is_not_regular_file_error(const Error& e);

// Refuses what is at `path` unless it is a regular file (with Links::follow,
// one a symbolic link leads to), without opening it. Returns false when
// nothing is there. The error (io) names the file as `what` "shown":
//   data encryption key file "pg_encryption/key.bin" is not a regular file
//   DETAIL:  It is a FIFO.
bool check_regular_file(const std::string& path, const std::string& what, const std::string& shown,
                        Links links);

// Opens `path` for reading after check_regular_file, with O_NONBLOCK (then
// cleared) and, for Links::refuse, O_NOFOLLOW; refuses a file that changed
// between the check and the open. Returns an invalid handle (get() < 0) when
// nothing is there; throws io otherwise.
FileHandle open_regular_file(const std::string& path, const std::string& what,
                             const std::string& shown, Links links);

// The whole of a regular file opened as above, at most `limit` bytes
// (more: io, "is too large"), or nothing when it does not exist.
std::optional<std::string> read_regular_file_if_exists(const std::string& path,
                                                       const std::string& what,
                                                       const std::string& shown, Links links,
                                                       std::size_t limit);
// The same; throws io when it does not exist.
std::string read_regular_file(const std::string& path, const std::string& what,
                              const std::string& shown, Links links, std::size_t limit);

} // namespace fe_datakey
