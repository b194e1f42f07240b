// pg_datakey's commands in one table: name, summary, options and handler.
// The command line (cli.cpp), --help and the dispatch (main.cpp) are derived
// from it, as ninja derives its -t tools from one table.
#pragma once

#include "cli.hpp"
#include "config_file.hpp"

#include <string>
#include <vector>

namespace pg_datakey {

// An option a command takes, by its long name in cli.cpp's option table.
struct CommandOption {
    const char* name;
    bool required = false; // the command refuses to run without it
};

struct CommandSpec {
    Command command;
    const char* name;    // pg_datakey NAME
    const char* summary; // its line under "Commands:" in --help
    // Beyond -D and --config-file, which every command takes. An option that
    // one command alone takes is shown as "NAME: ..." in --help.
    std::vector<CommandOption> options;
    int (*run)(const Invocation& inv, const std::string& datadir, const ConfigLocation& config);
};

// In --help's order; the first row is the default command.
const std::vector<CommandSpec>& command_table();

// The row of `command` (not help or version); throws std::logic_error when
// there is none.
const CommandSpec& command_spec(Command command);

// The row named `name`, or nullptr.
const CommandSpec* find_command(const std::string& name);

} // namespace pg_datakey
