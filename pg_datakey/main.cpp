// pg_datakey: status, verification and rotation of the wrapping of a
// cluster's data encryption key. main() parses the command line, checks who
// runs it and dispatches through the command table (commands.cpp).
#include "cli.hpp"
#include "commands.hpp"
#include "config_file.hpp"
#include "datadir.hpp"
#include "exit_status.hpp"
#include "logging.hpp"
#include "stop_signals.hpp"
#include "trust.hpp"

#include <exception>
#include <iostream>

using namespace pg_datakey;

namespace {

int run(int argc, char** argv) {
    Invocation inv = parse_command_line(argc, argv);
    switch (inv.command) {
    case Command::help:
        std::cout << help_text();
        return exit_ok;
    case Command::version:
        std::cout << version_text();
        return exit_ok;
    default:
        break;
    }
    // Before anything is read: the data directory's files are its owner's
    // word, and no one else may act on them (see trust.hpp). The owner is
    // checked by resolve_data_directory.
    refuse_root();
    stop_on_signals();
    std::string datadir = resolve_data_directory(inv.pgdata);
    ConfigLocation config = locate_config_file(datadir, inv.config_file);
    return command_spec(inv.command).run(inv, datadir, config);
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const fe_datakey::Error& e) {
        log_error(e);
        ExitStatus status = exit_status_for(e);
        if (status == exit_usage)
            log_hint("Try \"pg_datakey --help\" for more information.");
        return status;
    } catch (const std::exception& e) {
        log_error(e.what());
        return exit_internal;
    }
}
