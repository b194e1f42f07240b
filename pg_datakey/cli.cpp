// The command line: one table of the options; the parser, the per-command
// option checks and --help are derived from it and from the command table
// (commands.cpp).
#include "cli.hpp"

#include "commands.hpp"
#include "exit_status.hpp"

#include "fe_datakey/fe_datakey.h"

#include <boost/program_options.hpp>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <stdexcept>

namespace po = boost::program_options;

namespace pg_datakey {

namespace {

enum class Scope {
    every_command, // -D and --config-file
    by_command,    // the commands whose row names it
    instead,       // -? and -V: stand for the command
};

struct OptionSpec {
    const char* name;  // Boost's "long,short"
    const char* value; // the value's placeholder in --help; nullptr: a switch
    Scope scope;
    const char* help; // --help's description; each '\n' starts a continuation line
};

// In --help's order.
constexpr OptionSpec option_table[] = {
    {"pgdata,D", "DATADIR", Scope::every_command, "data directory"},
    {"config-file", "FILE", Scope::every_command,
     "the server's postgresql.conf (default: as the server\n"
     "was started, else DATADIR/postgresql.conf)"},
    {"json", nullptr, Scope::by_command, "print the status as JSON"},
    {"show-commands", nullptr, Scope::by_command, "show the configured unwrap command"},
    {"key-unwrap-command", "COMMAND", Scope::by_command,
     "command that unwraps the current key\n"
     "(default: " FE_DATAKEY_UNWRAP_VARIABLE ", then the configuration)"},
    {"new-key-wrap-command", "COMMAND", Scope::by_command,
     "command that wraps the key from now on"},
    {"new-key-unwrap-command", "COMMAND", Scope::by_command,
     "command that unwraps the key from now on"},
    {"no-verify", nullptr, Scope::by_command,
     "do not check the new wrapping by unwrapping it\n"
     "(the old key file is kept as key.bin.prev)"},
    {"edit-auto-conf", nullptr, Scope::by_command,
     "update postgresql.auto.conf while the server runs"},
    {"timeout,t", "SECONDS", Scope::by_command, "give up on a command after SECONDS (0: never)"},
    {"version,V", nullptr, Scope::instead, "output version information, then exit"},
    {"help,?", nullptr, Scope::instead, "show this help, then exit"},
};

// --help's column for descriptions.
constexpr std::size_t help_column = 25;

std::string long_name(const OptionSpec& o) {
    std::string name = o.name;
    return name.substr(0, name.find(','));
}

const OptionSpec& option_named(const std::string& name) {
    for (const auto& o : option_table)
        if (long_name(o) == name)
            return o;
    throw std::logic_error("the command table names an unknown option --" + name);
}

bool takes(const CommandSpec& command, const std::string& option) {
    for (const auto& o : command.options)
        if (option == o.name)
            return true;
    return false;
}

// Every option a command row names is in the option table, and is one that
// depends on the command.
void check_tables() {
    for (const auto& c : command_table())
        for (const auto& o : c.options)
            if (option_named(o.name).scope != Scope::by_command)
                throw std::logic_error(std::string("command ") + c.name + " lists option --" +
                                       o.name + ", which is not a per-command option");
}

po::options_description describe() {
    po::options_description desc;
    for (const auto& o : option_table) {
        if (o.value)
            desc.add_options()(o.name, po::value<std::string>());
        else
            desc.add_options()(o.name, po::bool_switch());
    }
    desc.add_options()("command", po::value<std::vector<std::string>>());
    return desc;
}

[[noreturn]] void usage(const std::string& message) {
    throw ToolError(exit_usage, message);
}

const CommandSpec& command_named(const std::string& name) {
    const CommandSpec* command = find_command(name);
    if (!command)
        usage("unrecognized command \"" + name + "\"");
    return *command;
}

int parse_timeout(const std::string& text) {
    errno = 0;
    char* end = nullptr;
    long value = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || value < 0 || value > INT_MAX)
        usage("invalid value \"" + text + "\" for option --timeout");
    return static_cast<int>(value);
}

// One line of --help: the option or command from column 3, the description
// from help_column (on a line of its own when the first is too long).
void help_line(std::string& text, const std::string& left, const std::string& description) {
    std::string line = "  " + left;
    if (line.size() < help_column)
        line.append(help_column - line.size(), ' ');
    else
        line += "\n" + std::string(help_column, ' ');
    for (char c : description) {
        line += c;
        if (c == '\n')
            line.append(help_column, ' ');
    }
    text += line + "\n";
}

} // namespace

Invocation parse_command_line(int argc, const char* const* argv) {
    check_tables();
    po::options_description desc = describe();
    po::positional_options_description positional;
    positional.add("command", -1);
    po::variables_map vm;
    std::vector<std::string> args;
    if (argc > 1)
        args.assign(argv + 1, argv + argc);
    try {
        auto style =
            po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
        // An empty value reaches the library, which rejects it with its own message.
        po::store(po::command_line_parser(fe_datakey::split_empty_values(args))
                      .options(desc)
                      .positional(positional)
                      .style(style)
                      .run(),
                  vm);
        po::notify(vm);
    } catch (const po::error& e) {
        usage(fe_datakey::usage_message(e));
    }

    Invocation inv;
    if (vm["help"].as<bool>()) {
        inv.command = Command::help;
        return inv;
    }
    if (vm["version"].as<bool>()) {
        inv.command = Command::version;
        return inv;
    }
    const CommandSpec* command = &command_table().front();
    if (vm.count("command")) {
        const auto& words = vm["command"].as<std::vector<std::string>>();
        command = &command_named(words.front());
        if (words.size() > 1)
            usage("too many command-line arguments (first is \"" + words[1] + "\")");
    }
    inv.command = command->command;

    for (const auto& [name, value] : vm) {
        if (name == "command" || value.defaulted() ||
            option_named(name).scope == Scope::every_command)
            continue;
        if (!takes(*command, name))
            usage("option --" + name + " cannot be used with command \"" + command->name + "\"");
    }

    if (vm.count("pgdata"))
        inv.pgdata = vm["pgdata"].as<std::string>();
    if (vm.count("config-file")) {
        inv.config_file = vm["config-file"].as<std::string>();
        if (inv.config_file->empty())
            usage("option --config-file requires a non-empty value");
    }
    inv.edit_auto_conf = vm["edit-auto-conf"].as<bool>();
    inv.json = vm["json"].as<bool>();
    inv.show_commands = vm["show-commands"].as<bool>();
    inv.no_verify = vm["no-verify"].as<bool>();
    if (vm.count("timeout"))
        inv.timeout_seconds = parse_timeout(vm["timeout"].as<std::string>());
    if (vm.count("new-key-wrap-command"))
        inv.new_wrap = vm["new-key-wrap-command"].as<std::string>();
    if (vm.count("new-key-unwrap-command"))
        inv.new_unwrap = vm["new-key-unwrap-command"].as<std::string>();

    if (takes(*command, "key-unwrap-command")) {
        // The library decides what the option and PGDATAKEYUNWRAPCMD mean.
        std::vector<std::string> ours;
        if (vm.count("key-unwrap-command"))
            ours = {"--key-unwrap-command", vm["key-unwrap-command"].as<std::string>()};
        inv.key_options = fe_datakey::KeyOptions::from_arguments(ours, fe_datakey::option_unwrap);
    }
    for (const auto& o : command->options)
        if (o.required && !vm.count(o.name))
            usage(std::string("option --") + o.name + " is required for command \"" +
                  command->name + "\"");
    return inv;
}

std::string help_text() {
    check_tables();
    std::string text =
        "pg_datakey checks the data encryption key of a PostgreSQL cluster and rotates its\n"
        "wrapping.\n"
        "\n"
        "Usage:\n"
        "  pg_datakey [COMMAND] [OPTION]...\n"
        "\n"
        "Commands:\n";
    const auto& commands = command_table();
    for (const auto& c : commands)
        help_line(text, c.name,
                  std::string(c.summary) + (&c == &commands.front() ? " (the default)" : ""));
    text += "\nOptions:\n";
    for (const auto& o : option_table) {
        std::string name = o.name;
        std::size_t comma = name.find(',');
        std::string left =
            comma == std::string::npos ? "    " : "-" + name.substr(comma + 1) + ", ";
        left += "--" + long_name(o);
        if (o.value)
            left += std::string("=") + o.value;
        // An option of one command alone says which.
        std::string prefix;
        const CommandSpec* only = nullptr;
        int users = 0;
        for (const auto& c : commands)
            if (takes(c, long_name(o))) {
                only = &c;
                ++users;
            }
        if (users == 1)
            prefix = std::string(only->name) + ": ";
        help_line(text, left, prefix + o.help);
    }
    text += "\n"
            "If no data directory (DATADIR) is specified, the environment variable PGDATA\n"
            "is used.\n";
    return text;
}

std::string version_text() {
    return "pg_datakey (fe_datakey) " FE_DATAKEY_VERSION "\n";
}

} // namespace pg_datakey
