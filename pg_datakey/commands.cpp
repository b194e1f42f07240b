// pg_datakey's commands: the table of name, summary, options and handler
// (see commands.hpp), and the handlers, which print each command's result.
#include "commands.hpp"

#include "datadir.hpp"
#include "exit_status.hpp"
#include "logging.hpp"
#include "paths.hpp"
#include "recovery.hpp"
#include "rewrap.hpp"
#include "rewrap_lock.hpp"
#include "status.hpp"
#include "unwrap_command.hpp"
#include "verify.hpp"

#include <iostream>
#include <stdexcept>

namespace pg_datakey {

namespace {

int run_status(const Invocation& inv, const std::string& datadir, const ConfigLocation& config) {
    Status s = collect_status(datadir, config);
    if (inv.json) {
        std::cout << render_status_json(s, inv.show_commands);
    } else {
        std::cout << render_status_text(s, inv.show_commands);
        std::cout.flush();
        for (const auto& w : s.warnings)
            if (!s.key_check_error || w != s.key_check_error->message())
                log_warning(w); // else the error it ends with says it
    }
    std::cout.flush();
    // Monitoring must not take this for a healthy cluster.
    if (!s.disagreement.empty()) {
        EncryptionState state;
        state.disagreement = s.disagreement;
        state.disagreement_detail = s.disagreement_detail;
        require_agreement(state);
    }
    if (s.key_check_error)
        throw *s.key_check_error;
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

int run_repair(const Invocation&, const std::string& datadir, const ConfigLocation& config) {
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

} // namespace

const std::vector<CommandSpec>& command_table() {
    static const std::vector<CommandSpec> table = {
        {Command::status,
         "status",
         "show the key store and its state",
         {{"json"}, {"show-commands"}},
         run_status},
        {Command::verify,
         "verify",
         "unwrap the key and verify it against its key check",
         {{"key-unwrap-command"}, {"timeout"}},
         run_verify},
        {Command::rewrap,
         "rewrap",
         "wrap the key with new commands, safely",
         {{"key-unwrap-command"},
          {"new-key-wrap-command", true},
          {"new-key-unwrap-command", true},
          {"no-verify"},
          {"edit-auto-conf"},
          {"timeout"}},
         run_rewrap},
        {Command::repair, "repair", "finish or undo an interrupted rewrap", {}, run_repair},
    };
    return table;
}

const CommandSpec& command_spec(Command command) {
    for (const auto& c : command_table())
        if (c.command == command)
            return c;
    throw std::logic_error("no command table row for this command");
}

const CommandSpec* find_command(const std::string& name) {
    for (const auto& c : command_table())
        if (name == c.name)
            return &c;
    return nullptr;
}

} // namespace pg_datakey
