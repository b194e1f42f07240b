// pg_datakey: status, verification and rotation of the wrapping of a
// cluster's data encryption key.
#include "cli.hpp"
#include "config_file.hpp"
#include "datadir.hpp"
#include "exit_status.hpp"
#include "logging.hpp"
#include "paths.hpp"
#include "recovery.hpp"
#include "rewrap.hpp"
#include "rewrap_lock.hpp"
#include "status.hpp"
#include "trust.hpp"
#include "unwrap_command.hpp"
#include "verify.hpp"

#include <cstdio>
#include <exception>
#include <iostream>

using namespace pg_datakey;

namespace {

int run_status(const Invocation& inv, const std::string& datadir, const ConfigLocation& config) {
    Status s = collect_status(datadir, config);
    if (inv.json) {
        std::cout << render_status_json(s, inv.show_commands);
    } else {
        std::cout << render_status_text(s, inv.show_commands);
        std::cout.flush();
        for (const auto& w : s.warnings)
            log_warning(w);
    }
    std::cout.flush();
    // Monitoring must not take this for a healthy cluster.
    if (!s.disagreement.empty()) {
        EncryptionState state;
        state.disagreement = s.disagreement;
        state.disagreement_detail = s.disagreement_detail;
        require_agreement(state);
    }
    return exit_ok;
}

int run_verify(const Invocation& inv, const std::string& datadir, const ConfigLocation& config) {
    require_encrypted(datadir);
    RewrapInspection rewrap = inspect_rewrap(datadir);
    if (rewrap.phase == RewrapPhase::committed) {
        log_warning("an interrupted rewrap must be completed");
        log_hint("Run \"pg_datakey repair\".");
    }
    std::string command = resolve_unwrap_command(inv.key_options, datadir, config.path);
    VerifyResult r = verify(datadir, command, inv.timeout_seconds);
    std::cout << "Key verified: " << r.bits << "-bit key, key check value " << r.check_value
              << "\n";
    if (r.previous_key_removed)
        std::cout << "Previous key file removed: the key file is proven.\n";
    return exit_ok;
}

int run_rewrap(const Invocation& inv, const std::string& datadir, const ConfigLocation& config) {
    require_encrypted(datadir);
    RewrapRequest req;
    req.datadir = datadir;
    req.config_file = config.path;
    req.new_wrap = *inv.new_wrap;
    req.new_unwrap = *inv.new_unwrap;
    req.verify = !inv.no_verify;
    req.edit_auto_conf = inv.edit_auto_conf;
    req.timeout_seconds = inv.timeout_seconds;
    req.old_unwrap = resolve_unwrap_command(inv.key_options, datadir, config.path);
    if (!req.verify)
        log_warning("the new key file will not be verified; the old one is kept as \"" +
                    std::string(previous_key_file) + "\" until \"pg_datakey verify\" succeeds");
    RewrapResult r = rewrap(req);
    if (r.rolled_back_debris)
        log_info("removed files left behind by an interrupted rewrap");
    std::cout << "Key rewrapped: " << r.bits << "-bit key, key check value " << r.check_value
              << "\n";
    return exit_ok;
}

int run_repair(const std::string& datadir, const ConfigLocation& config) {
    RewrapLock lock(datadir);
    switch (repair(datadir, config.path)) {
    case RepairOutcome::nothing_to_do:
        std::cout << "No interrupted rewrap found.\n";
        break;
    case RepairOutcome::rolled_back:
        std::cout << "Interrupted rewrap rolled back: the key file and the configuration are "
                     "unchanged.\n";
        break;
    case RepairOutcome::completed:
        std::cout << "Interrupted rewrap completed: the key file and the configuration use "
                     "the new commands.\n";
        break;
    }
    return exit_ok;
}

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
    std::string datadir = resolve_data_directory(inv.pgdata);
    ConfigLocation config = locate_config_file(datadir, inv.config_file);
    switch (inv.command) {
    case Command::status:
        return run_status(inv, datadir, config);
    case Command::verify:
        return run_verify(inv, datadir, config);
    case Command::rewrap:
        return run_rewrap(inv, datadir, config);
    case Command::repair:
        return run_repair(datadir, config);
    default:
        return exit_internal;
    }
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
