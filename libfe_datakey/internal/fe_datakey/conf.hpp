// data_encryption_key_unwrap_command in postgresql.conf.
#pragma once

#include "fe_datakey/fe_datakey.h"

#include <optional>
#include <string>

namespace fe_datakey {

constexpr const char* unwrap_command_setting = FE_DATAKEY_UNWRAP_SETTING;

// 'value' quoted so that PostgreSQL's configuration parser reads back exactly
// value: ' doubled, \ doubled, newline and tab as \n and \t.
std::string quote_conf_value(const std::string& value);
// The inverse, for a quoted string token as the parser reads it (GUC_scanstr
// rules: '' and \' for a quote, \b \f \n \r \t, octal \ooo, \x for any other x).
std::string unquote_conf_value(const std::string& quoted);

// Sets the parameter in the file at `path`: replaces the last active line that
// sets it (commented-out lines stay as they are), else appends one. Every
// other line is kept byte for byte. Written atomically (temporary file, fsync,
// rename, directory fsync), keeping the file's mode, owner and group (when
// the owner cannot be kept, an io error and nothing changed). A symbolic link is
// followed: its target is replaced and the link stays. The temporary name is
// the file's name plus conf_temporary_suffix, never the server's ".tmp"
// (ALTER SYSTEM writes postgresql.auto.conf.tmp).
void set_conf_unwrap_command(const std::string& path, const std::string& command);
constexpr const char* conf_temporary_suffix = ".fe_datakey.tmp";

// The value the file's last active line sets, if any.
std::optional<std::string> get_conf_unwrap_command(const std::string& path);

// For a data directory: postgresql.auto.conf overrides postgresql.conf, as
// in the server. Include directives are not followed.
std::optional<std::string> configured_unwrap_command(const std::string& datadir);

// A single-quoted shell word (for a command line handed to a shell, such as
// pg_ctl -o).
std::string shell_quote(const std::string& word);

// The same with the server's configuration file given by its path
// (config_file, on the Debian layout outside the data directory):
// DATADIR/postgresql.auto.conf still overrides it.
std::optional<std::string> configured_unwrap_command_from(const std::string& datadir,
                                                          const std::string& config_file);

} // namespace fe_datakey
