// The data directory: -D, else PGDATA; it must look like a cluster.
#pragma once

#include <optional>
#include <string>

namespace pg_datakey {

// Throws ToolError(exit_usage) when neither is given, an I/O error when the
// directory is missing or is not a database cluster directory.
std::string resolve_data_directory(const std::optional<std::string>& option);

void require_encrypted(const std::string& datadir);

} // namespace pg_datakey
