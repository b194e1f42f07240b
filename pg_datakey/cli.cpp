#include "cli.hpp"

#include "exit_status.hpp"

#include <boost/program_options.hpp>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>
#include <set>

namespace po = boost::program_options;

namespace pg_datakey {

namespace {

po::options_description describe() {
    po::options_description desc;
    desc.add_options()                                       //
        ("pgdata,D", po::value<std::string>())               //
        ("config-file", po::value<std::string>())            //
        ("edit-auto-conf", po::bool_switch())                //
        ("json", po::bool_switch())                          //
        ("show-commands", po::bool_switch())                 //
        ("key-unwrap-command", po::value<std::string>())     //
        ("new-key-wrap-command", po::value<std::string>())   //
        ("new-key-unwrap-command", po::value<std::string>()) //
        ("no-verify", po::bool_switch())                     //
        ("timeout,t", po::value<std::string>())              //
        ("version,V", po::bool_switch())                     //
        ("help,?", po::bool_switch())                        //
        ("command", po::value<std::vector<std::string>>());
    return desc;
}

// Which options each command takes, beyond -D and --config-file.
const std::map<Command, std::set<std::string>>& allowed_options() {
    static const std::map<Command, std::set<std::string>> allowed = {
        {Command::status, {"json", "show-commands"}},
        {Command::verify, {"key-unwrap-command", "timeout"}},
        {Command::rewrap,
         {"key-unwrap-command", "new-key-wrap-command", "new-key-unwrap-command", "no-verify",
          "edit-auto-conf", "timeout"}},
        {Command::repair, {}},
    };
    return allowed;
}

[[noreturn]] void usage(const std::string& message) {
    throw ToolError(exit_usage, message);
}

Command command_named(const std::string& name) {
    static const std::map<std::string, Command> names = {{"status", Command::status},
                                                         {"verify", Command::verify},
                                                         {"rewrap", Command::rewrap},
                                                         {"repair", Command::repair}};
    auto it = names.find(name);
    if (it == names.end())
        usage("unrecognized command \"" + name + "\"");
    return it->second;
}

int parse_timeout(const std::string& text) {
    errno = 0;
    char* end = nullptr;
    long value = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || value < 0 || value > INT_MAX)
        usage("invalid value \"" + text + "\" for option --timeout");
    return static_cast<int>(value);
}

} // namespace

Invocation parse_command_line(int argc, const char* const* argv) {
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
    if (vm.count("command")) {
        const auto& words = vm["command"].as<std::vector<std::string>>();
        inv.command = command_named(words.front());
        if (words.size() > 1)
            usage("too many command-line arguments (first is \"" + words[1] + "\")");
    }

    const auto& allowed = allowed_options().at(inv.command);
    for (const auto& [name, value] : vm) {
        if (name == "command" || name == "pgdata" || name == "config-file" || value.defaulted())
            continue;
        if (!allowed.count(name)) {
            static const char* names[] = {"status", "verify", "rewrap", "repair"};
            usage("option --" + name + " cannot be used with command \"" +
                  names[static_cast<int>(inv.command)] + "\"");
        }
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

    if (inv.command == Command::verify || inv.command == Command::rewrap) {
        // The library decides what the option and PGDATAKEYUNWRAPCMD mean.
        std::vector<std::string> ours;
        if (vm.count("key-unwrap-command"))
            ours = {"--key-unwrap-command", vm["key-unwrap-command"].as<std::string>()};
        inv.key_options = fe_datakey::KeyOptions::from_arguments(ours, fe_datakey::option_unwrap);
    }
    if (inv.command == Command::rewrap) {
        if (!inv.new_wrap)
            usage("option --new-key-wrap-command is required for command \"rewrap\"");
        if (!inv.new_unwrap)
            usage("option --new-key-unwrap-command is required for command \"rewrap\"");
    }
    return inv;
}

std::string help_text() {
    return "pg_datakey checks the data encryption key of a PostgreSQL cluster and rotates its\n"
           "wrapping.\n"
           "\n"
           "Usage:\n"
           "  pg_datakey [COMMAND] [OPTION]...\n"
           "\n"
           "Commands:\n"
           "  status                 show the key store and its state (the default)\n"
           "  verify                 unwrap the key and verify it against its key check\n"
           "  rewrap                 wrap the key with new commands, safely\n"
           "  repair                 finish or undo an interrupted rewrap\n"
           "\n"
           "Options:\n"
           "  -D, --pgdata=DATADIR   data directory\n"
           "      --config-file=FILE the server's postgresql.conf (default: as the server\n"
           "                         was started, else DATADIR/postgresql.conf)\n"
           "      --json             status: print the status as JSON\n"
           "      --show-commands    status: show the configured unwrap command\n"
           "      --key-unwrap-command=COMMAND\n"
           "                         command that unwraps the current key\n"
           "                         (default: PGDATAKEYUNWRAPCMD, then the configuration)\n"
           "      --new-key-wrap-command=COMMAND\n"
           "                         rewrap: command that wraps the key from now on\n"
           "      --new-key-unwrap-command=COMMAND\n"
           "                         rewrap: command that unwraps the key from now on\n"
           "      --no-verify        rewrap: do not check the new wrapping by unwrapping it\n"
           "                         (the old key file is kept as key.bin.prev)\n"
           "      --edit-auto-conf   rewrap: update postgresql.auto.conf while the server runs\n"
           "  -t, --timeout=SECONDS  give up on a command after SECONDS (0: never)\n"
           "  -V, --version          output version information, then exit\n"
           "  -?, --help             show this help, then exit\n"
           "\n"
           "If no data directory (DATADIR) is specified, the environment variable PGDATA\n"
           "is used.\n";
}

std::string version_text() {
    return "pg_datakey (fe_datakey) " FE_DATAKEY_VERSION "\n";
}

} // namespace pg_datakey
