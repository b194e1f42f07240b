// Rewrap debris and phases, and rolling an interrupted rewrap back or forward (repair).
#include "recovery.hpp"

#include "crash_point.hpp"
#include "exit_status.hpp"
#include "paths.hpp"
#include "rewrap_lock.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/store.hpp"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace pg_datakey {

namespace {

bool exists(const std::string& path, struct stat* st = nullptr) {
    struct stat local;
    if (::lstat(path.c_str(), st ? st : &local) == 0)
        return true;
    if (errno != ENOENT)
        fe_datakey::throw_io_error("could not stat file \"" + path + "\"", errno);
    return false;
}

bool same_file(const std::string& path, const Journal& journal) {
    return file_sha256(path) == journal.new_key_sha256;
}

void remove_file(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        fe_datakey::throw_io_error("could not remove file \"" + path + "\"", errno);
}

} // namespace

std::vector<std::string> rewrap_debris(const std::string& datadir) {
    std::vector<std::string> found;
    if (exists(datadir + "/" + new_key_file))
        found.push_back(new_key_file);
    for (const char* tmp : temporary_files)
        if (exists(datadir + "/" + tmp))
            found.push_back(tmp);
    return found;
}

namespace {

// Each phase's names, in RewrapPhase's order: the key for status --json's
// "state", and the words for status's "Rewrap:" line.
struct PhaseNames {
    RewrapPhase phase;
    const char* key;
    const char* text;
};
constexpr PhaseNames phase_names[] = {
    {RewrapPhase::none, "none", "none"},
    {RewrapPhase::in_progress, "in_progress", "in progress"},
    {RewrapPhase::uncommitted, "uncommitted", "interrupted before commit"},
    {RewrapPhase::committed, "committed", "interrupted after commit"},
};

const PhaseNames& names_of(RewrapPhase phase) {
    for (const auto& n : phase_names)
        if (n.phase == phase)
            return n;
    throw std::logic_error("rewrap phase without names");
}

} // namespace

const char* phase_name(RewrapPhase phase) {
    return names_of(phase).text;
}

const char* phase_key(RewrapPhase phase) {
    return names_of(phase).key;
}

RewrapInspection inspect_rewrap(const std::string& datadir) {
    RewrapInspection result;
    result.leftovers = rewrap_debris(datadir);
    bool journal = exists(datadir + "/" + journal_file);
    if (journal)
        result.leftovers.push_back(journal_file);
    if (rewrap_lock_held(datadir)) {
        result.phase = RewrapPhase::in_progress;
    } else if (journal) {
        result.phase = RewrapPhase::committed;
        std::optional<Journal> j = read_journal(datadir);
        std::string key = datadir + "/" + fe_datakey::key_file;
        result.new_key_renamed =
            j && !exists(datadir + "/" + new_key_file) && exists(key) && same_file(key, *j);
    } else if (!result.leftovers.empty()) {
        result.phase = RewrapPhase::uncommitted;
    }
    result.previous_key_kept = exists(datadir + "/" + previous_key_file);
    return result;
}

bool auto_conf_sets_command(const std::string& datadir) {
    std::string auto_conf = datadir + "/postgresql.auto.conf";
    return ::access(auto_conf.c_str(), F_OK) == 0 &&
           fe_datakey::get_conf_unwrap_command(auto_conf).has_value();
}

void set_configured_unwrap_command(const std::string& datadir, const std::string& config_file,
                                   const std::string& command) {
    fe_datakey::set_conf_unwrap_command(config_file, command);
    if (auto_conf_sets_command(datadir))
        fe_datakey::set_conf_unwrap_command(datadir + "/postgresql.auto.conf", command);
}

void drop_previous_key(const std::string& datadir) {
    if (!exists(datadir + "/" + previous_key_file))
        return;
    remove_file(datadir + "/" + previous_key_file);
    fe_datakey::fsync_path(datadir + "/" + fe_datakey::key_directory, true);
}

void roll_back(const std::string& datadir) {
    // Without a journal key.bin and the configuration were never touched:
    // everything here is the unfinished new wrapping, which nothing needs.
    for (const std::string& rel : rewrap_debris(datadir))
        remove_file(datadir + "/" + rel);
    fe_datakey::fsync_path(datadir + "/" + fe_datakey::key_directory, true);
}

std::string journal_config_path(const std::string& datadir, const std::string& config_file) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dir = fs::weakly_canonical(datadir, ec);
    if (ec)
        return config_file;
    fs::path file = fs::weakly_canonical(config_file, ec);
    if (ec)
        return config_file;
    fs::path rel = file.lexically_relative(dir);
    if (rel.empty() || *rel.begin() == "..")
        return config_file;
    return rel.string();
}

void roll_forward(const std::string& datadir, const Journal& journal,
                  const std::string& config_file) {
    std::string key = datadir + "/" + fe_datakey::key_file;
    std::string fresh = datadir + "/" + new_key_file;
    std::string previous = datadir + "/" + previous_key_file;
    if (exists(fresh)) {
        if (!same_file(fresh, journal))
            throw ToolError(exit_needs_repair,
                            "new key file \"" + fresh + "\" does not match the rewrap journal",
                            "The file was replaced after the journal was written.",
                            "Find out which unwrap command opens which file, then remove the "
                            "journal \"" +
                                std::string(journal_file) + "\" by hand.");
        // key.bin is the file the rewrap unwrapped and checked before its
        // commit: it is kept, under a second name, until the new one is
        // proven. A hard link, so that key.bin never goes missing.
        if (exists(key)) {
            remove_file(previous);
            if (::link(key.c_str(), previous.c_str()) != 0)
                fe_datakey::throw_io_error(
                    "could not link file \"" + key + "\" to \"" + previous + "\"", errno);
            fe_datakey::fsync_path(datadir + "/" + fe_datakey::key_directory, true);
        }
        crash_point("after-keep-previous");
        if (::rename(fresh.c_str(), key.c_str()) != 0)
            fe_datakey::throw_io_error("could not rename file \"" + fresh + "\" to \"" + key + "\"",
                                       errno);
        fe_datakey::fsync_path(datadir + "/" + fe_datakey::key_directory, true);
        crash_point("after-rename");
    } else if (!exists(key) || !same_file(key, journal)) {
        throw ToolError(exit_needs_repair,
                        "key file \"" + key + "\" does not match the rewrap journal",
                        "Neither the new key file nor a renamed copy of it was found.",
                        "Find out which unwrap command opens the key file, set "
                        "data_encryption_key_unwrap_command accordingly, then remove the journal "
                        "\"" +
                            std::string(journal_file) + "\" by hand.");
    }
    std::string conf = config_file;
    if (!journal.config_file.empty())
        conf = journal.config_file[0] == '/' ? journal.config_file
                                             : datadir + "/" + journal.config_file;
    set_configured_unwrap_command(datadir, conf, journal.new_unwrap_command);
    crash_point("after-conf");
    for (const char* tmp : temporary_files)
        remove_file(datadir + "/" + tmp);
    if (journal.new_key_verified) {
        // The new key.bin was unwrapped and checked before the commit: the
        // old wrapping (perhaps under a leaked passphrase) goes.
        drop_previous_key(datadir);
        crash_point("after-drop-previous");
    }
    remove_journal(datadir);
}

RepairOutcome repair(const std::string& datadir, const std::string& config_file) {
    std::optional<Journal> journal = read_journal(datadir);
    if (journal) {
        roll_forward(datadir, *journal, config_file);
        return RepairOutcome::completed;
    }
    if (!rewrap_debris(datadir).empty()) {
        roll_back(datadir);
        return RepairOutcome::rolled_back;
    }
    return RepairOutcome::nothing_to_do;
}

} // namespace pg_datakey
