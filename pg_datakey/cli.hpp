// The command line: pg_datakey [COMMAND] [OPTION]..., parsed with
// Boost.ProgramOptions from cli.cpp's option table and the command table
// (commands.hpp); the key options are read by the library.
#pragma once

#include "fe_datakey/options.hpp"

#include <optional>
#include <string>

namespace pg_datakey {

// A row of the command table (commands.cpp), or -? / -V, which stand for
// the command.
enum class Command { status, verify, rewrap, repair, help, version };

struct Invocation {
    Command command = Command::status;
    std::optional<std::string> pgdata;
    std::optional<std::string> config_file;
    bool edit_auto_conf = false;
    bool json = false;
    bool show_commands = false;
    bool no_verify = false;
    int timeout_seconds = 0;
    std::optional<std::string> new_wrap;
    std::optional<std::string> new_unwrap;
    fe_datakey::KeyOptions key_options;
};

// Throws ToolError(exit_usage) or a library usage error.
Invocation parse_command_line(int argc, const char* const* argv);

std::string help_text();
std::string version_text();

} // namespace pg_datakey
