// The rewrap protocol in order: unwrap, new key file, verify, journal (the commit), roll forward.
#include "rewrap.hpp"

#include "config_file.hpp"
#include "crash_point.hpp"
#include "datadir.hpp"
#include "exit_status.hpp"
#include "journal.hpp"
#include "paths.hpp"
#include "recovery.hpp"
#include "rewrap_lock.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/options.hpp"
#include "fe_datakey/store.hpp"

#include <cerrno>
#include <sys/stat.h>
#include <unistd.h>

namespace pg_datakey {

namespace {

// A failure before the commit: remove the half-made new wrapping and say
// that nothing changed.
[[noreturn]] void abandon(const std::string& datadir, const fe_datakey::Error& error) {
    roll_back(datadir);
    std::string detail = error.detail();
    detail += std::string(detail.empty() ? "" : " ") +
              "The key file and the configuration were left unchanged.";
    if (auto* tool = dynamic_cast<const ToolError*>(&error))
        throw ToolError(tool->status(), error.message(), detail, error.hint());
    throw fe_datakey::Error(error.code(), error.message(), detail, error.hint());
}

// Before anything changes: the files the commit will rewrite can be
// rewritten, and postgresql.auto.conf is not the server's to write right now.
void check_configuration(const RewrapRequest& request) {
    check_config_updatable(request.config_file);
    if (!auto_conf_sets_command(request.datadir))
        return;
    std::string auto_conf = request.datadir + "/postgresql.auto.conf";
    check_config_updatable(auto_conf);
    if (request.edit_auto_conf)
        return;
    if (std::optional<pid_t> pid = live_postmaster(request.datadir))
        throw ToolError(
            exit_busy, "postgresql.auto.conf sets the unwrap command and the server is running",
            "The server (PID " + std::to_string(*pid) + ") rewrites \"" + auto_conf +
                "\" on ALTER SYSTEM; one of two concurrent updates would be lost. Nothing was "
                "changed.",
            "Stop the server, or remove the setting there with ALTER SYSTEM RESET " +
                std::string(fe_datakey::unwrap_command_setting) +
                ", or give --edit-auto-conf and run no ALTER SYSTEM until the rewrap ends.");
}

} // namespace

RewrapResult rewrap(const RewrapRequest& request) {
    const std::string& datadir = request.datadir;
    fe_datakey::validate_command(fe_datakey::Role::wrap, request.new_wrap,
                                 "--new-key-wrap-command");
    fe_datakey::validate_command(fe_datakey::Role::unwrap, request.new_unwrap,
                                 "--new-key-unwrap-command");
    fe_datakey::validate_command_pair(request.new_wrap, request.new_unwrap);
    EncryptionState state = require_encrypted(datadir);
    RewrapLock lock(datadir);
    RewrapResult result;
    if (read_journal(datadir))
        throw ToolError(exit_needs_repair, "an interrupted rewrap must be completed first",
                        "The rewrap journal \"" + std::string(journal_file) +
                            "\" exists: the new key file may already be in place.",
                        "Run \"pg_datakey repair\", then start the rewrap again.");
    check_configuration(request);
    if (!rewrap_debris(datadir).empty()) {
        roll_back(datadir);
        result.rolled_back_debris = true;
    }

    fe_datakey::RunOptions run;
    run.timeout_seconds = request.timeout_seconds;

    // (1) The key, verified against key.check: no new file without a good key.
    fe_datakey::Key key = fe_datakey::load_key(datadir, request.old_unwrap, run);
    require_key_length(state, key.bits());
    crash_point("after-unwrap");

    try {
        // (2) The new wrapping, in its own file; key.bin is untouched.
        fe_datakey::wrap_key_to(datadir, new_key_file, request.new_wrap, key, run);
        crash_point("after-wrap");

        // (3) Proof that the new unwrap command opens the new file.
        if (request.verify) {
            fe_datakey::Key again =
                fe_datakey::load_key(datadir, request.new_unwrap, run, new_key_file);
            if (!again.bytes().equals(key.bytes()))
                throw fe_datakey::Error(fe_datakey::ErrorCode::key_mismatch,
                                        "new key unwrap command does not return the data key");
            crash_point("after-verify");
        }
    } catch (const fe_datakey::Error& e) {
        abandon(datadir, e);
    }

    // (4) Commit: the journal names what the configuration must say once
    // the new file is key.bin.
    Journal journal;
    journal.new_unwrap_command = request.new_unwrap;
    journal.config_file = journal_config_path(datadir, request.config_file);
    journal.new_key_verified = request.verify;
    try {
        journal.new_key_sha256 = file_sha256(datadir + "/" + new_key_file);
        write_journal(datadir, journal);
    } catch (const fe_datakey::Error& e) {
        // A journal that reached the disk but failed its fsync would point
        // at a file we are about to remove.
        try {
            remove_journal(datadir);
        } catch (const fe_datakey::Error&) {
        }
        abandon(datadir, e);
    }
    crash_point("after-journal");

    // (5)-(7) Rename, configuration, journal removal: the same code repair runs.
    roll_forward(datadir, journal, request.config_file);

    result.bits = key.bits();
    result.check_value = key.check_value();
    return result;
}

} // namespace pg_datakey
