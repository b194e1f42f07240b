// Who may run pg_datakey on a data directory: never root, and only the
// data directory's owner, the rule PostgreSQL's own server and tools apply.
// Files in the data directory belong to that owner (a database superuser can
// write them with COPY ... TO or ALTER SYSTEM), so anyone else who acted on
// them would act on the owner's word.
#pragma once

#include <string>
#include <sys/types.h>

namespace pg_datakey {

// The user's name, or the uid in decimal when it has none.
std::string user_name(uid_t uid);

// Throws ToolError(exit_wrong_user) when the effective user is root, with
// the words of pg_ctl, initdb and pg_upgrade.
void refuse_root();

// Throws ToolError(exit_wrong_user) when the data directory is not owned by
// the effective user (what the server's checkDataDir() calls "wrong
// ownership"), or an I/O error when it cannot be examined.
void require_data_directory_owner(const std::string& datadir);

} // namespace pg_datakey
