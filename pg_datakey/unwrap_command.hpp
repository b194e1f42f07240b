// Which unwrap command opens the current key.bin: --key-unwrap-command, else
// PGDATAKEYUNWRAPCMD (both as the library reads them), else the configuration.
#pragma once

#include "fe_datakey/options.hpp"

#include <string>

namespace pg_datakey {

std::string resolve_unwrap_command(const fe_datakey::KeyOptions& options,
                                   const std::string& datadir, const std::string& config_file);

} // namespace pg_datakey
