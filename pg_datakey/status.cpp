// What status reports, collected from the files alone, and its text and JSON renderings.
#include "status.hpp"

#include "datadir.hpp"
#include "json_writer.hpp"
#include "paths.hpp"
#include "trust.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/error.hpp"
#include "fe_datakey/key_state.hpp"
#include "fe_datakey/store.hpp"

#include <algorithm>
#include <cstdio>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pg_datakey {

namespace {

std::string octal(unsigned mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
    return buf;
}

void collect_files(Status& s) {
    std::string dir = s.datadir + "/" + fe_datakey::key_directory;
    struct stat st;
    if (::lstat(dir.c_str(), &st) != 0)
        return;
    s.files.push_back({fe_datakey::key_directory, S_ISDIR(st.st_mode),
                       static_cast<unsigned>(st.st_mode), user_name(st.st_uid)});
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (const struct dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name != "." && name != "..")
                names.push_back(name);
        }
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        std::string rel = std::string(fe_datakey::key_directory) + "/" + name;
        if (::lstat((s.datadir + "/" + rel).c_str(), &st) == 0)
            s.files.push_back({rel, S_ISDIR(st.st_mode), static_cast<unsigned>(st.st_mode),
                               user_name(st.st_uid)});
    }
}

void check_permissions(Status& s) {
    bool group = false;
    struct stat top;
    uid_t owner = 0;
    if (::stat(s.datadir.c_str(), &top) == 0) {
        group = (top.st_mode & S_IRGRP) != 0;
        owner = top.st_uid;
    }
    for (const auto& f : s.files) {
        unsigned too_open = group ? 0027 : 0077;
        if (f.mode & too_open)
            s.warnings.push_back("\"" + f.path + "\" is accessible by " +
                                 ((f.mode & 0007) ? "other users" : "the group") + " (mode " +
                                 octal(f.mode) + ")");
        if (f.owner != user_name(owner))
            s.warnings.push_back("\"" + f.path + "\" is owned by " + f.owner +
                                 ", not by the owner of the data directory");
    }
}

} // namespace

Status collect_status(const std::string& datadir, const ConfigLocation& config) {
    Status s;
    s.datadir = datadir;
    s.config = config;
    EncryptionState state = encryption_state(datadir);
    s.control_version = state.control.pg_control_version;
    s.control_has_encryption_fields = state.control.has_encryption_fields;
    s.data_encryption_version = state.control.data_encryption_version;
    s.data_encryption_key_length = state.control.data_encryption_key_length;
    s.encrypted = state.control.encrypted();
    s.disagreement = state.disagreement;
    s.disagreement_detail = state.disagreement_detail;
    // Every finding of the key-state check: the first disagreement is the
    // error status ends with, the others are warnings.
    for (const auto& f : state.findings) {
        if (f.error.message() != s.disagreement)
            s.warnings.push_back(f.error.message());
        if (f.kind == fe_datakey::KeyStateFinding::Kind::key_check_invalid && !s.key_check_error)
            s.key_check_error = f.error;
    }
    collect_files(s);
    if (::access(config.path.c_str(), F_OK) != 0)
        s.warnings.push_back("configuration file \"" + config.path +
                             "\" does not exist; give the server's with --config-file");
    try {
        s.unwrap_command = fe_datakey::configured_unwrap_command_from(datadir, config.path);
    } catch (const fe_datakey::Error& e) {
        s.warnings.push_back("could not read the configuration: " + e.message());
    }
    s.plaintext_key = s.unwrap_command && fe_datakey::is_plaintext_mode(*s.unwrap_command);

    if (s.encrypted) {
        try {
            if (auto check = fe_datakey::find_key_check(datadir)) {
                s.key_bits = check->bits;
                s.check_value = check->kcv;
            }
        } catch (const fe_datakey::Error&) {
            // A finding of the key-state check, reported above.
        }
        if (!s.unwrap_command)
            s.warnings.push_back("the configuration names no key unwrap command; the server "
                                 "cannot start");
        if (s.plaintext_key)
            s.warnings.push_back("the data encryption key is stored without wrapping (\"-\")");
    } else if (!s.files.empty() && s.disagreement.empty()) {
        s.warnings.push_back("directory \"" + std::string(fe_datakey::key_directory) +
                             "\" exists but the cluster is not encrypted");
    }
    check_permissions(s);

    try {
        s.rewrap = inspect_rewrap(datadir);
    } catch (const fe_datakey::Error& e) {
        s.warnings.push_back("could not inspect the rewrap state: " + e.message());
    }
    if (s.rewrap.previous_key_kept && s.rewrap.phase != RewrapPhase::in_progress)
        s.warnings.push_back(
            "the previous key file \"" + std::string(previous_key_file) + "\" is kept: \"" +
            fe_datakey::key_file +
            "\" was not verified after the last rewrap; run \"pg_datakey verify\", which removes "
            "it once the key file opens");
    switch (s.rewrap.phase) {
    case RewrapPhase::none:
        break;
    case RewrapPhase::in_progress:
        s.warnings.push_back("a rewrap or repair is running");
        break;
    case RewrapPhase::uncommitted:
        s.warnings.push_back("an interrupted rewrap left files behind; key.bin and the "
                             "configuration are unchanged; run \"pg_datakey repair\" to remove "
                             "them");
        break;
    case RewrapPhase::committed:
        s.warnings.push_back(
            std::string("an interrupted rewrap must be completed; ") +
            (s.rewrap.new_key_renamed
                 ? "the key file is the new one but the configuration may still name the old "
                   "unwrap command"
                 : "the key file is still the old one") +
            "; run \"pg_datakey repair\" before starting the server");
        break;
    }
    return s;
}

std::string render_status_text(const Status& s, bool show_commands) {
    std::string out;
    auto line = [&out](const std::string& label, const std::string& value) {
        std::string l = label + ":";
        l.resize(std::max<std::size_t>(l.size() + 1, 28), ' ');
        out += l + value + "\n";
    };
    line("Data directory", s.datadir);
    line("Configuration file", s.config.path + " (" + s.config.source + ")");
    line("pg_control version", std::to_string(s.control_version));
    line("Data encryption version", s.control_has_encryption_fields
                                        ? std::to_string(s.data_encryption_version)
                                        : "0 (no such field in this pg_control version)");
    line("Data encryption key length", std::to_string(s.data_encryption_key_length));
    line("Encrypted", s.encrypted ? "yes" : "no");
    if (s.encrypted) {
        line("Key length", s.key_bits ? std::to_string(s.key_bits) + " bits" : "unknown");
        line("Key check value", s.check_value.empty() ? "unknown" : s.check_value);
    }
    line("Key wrapping", !s.unwrap_command ? "not configured"
                         : s.plaintext_key ? "none (plaintext key, \"-\")"
                                           : "unwrap command configured");
    if (show_commands)
        line("Key unwrap command", s.unwrap_command ? *s.unwrap_command : "(not set)");
    line("Rewrap", phase_name(s.rewrap.phase));
    line("Previous key file", s.rewrap.previous_key_kept
                                  ? "kept (key.bin.prev): the key file is not yet verified"
                                  : "none");
    for (const auto& f : s.files)
        line(f.directory ? f.path + "/" : f.path, octal(f.mode) + " " + f.owner);
    return out;
}

std::string render_status_json(const Status& s, bool show_commands) {
    JsonWriter w;
    w.begin_object();
    w.key("data_directory");
    w.string(s.datadir);
    w.key("config_file");
    w.string(s.config.path);
    w.key("config_file_source");
    w.string(s.config.source);
    w.key("pg_control_version");
    w.number(static_cast<long long>(s.control_version));
    w.key("data_encryption_version");
    w.number(static_cast<long long>(s.data_encryption_version));
    w.key("data_encryption_key_length");
    w.number(static_cast<long long>(s.data_encryption_key_length));
    w.key("encrypted");
    w.boolean(s.encrypted);
    w.key("key_files_disagree");
    if (s.disagreement.empty())
        w.null();
    else
        w.string(s.disagreement);
    w.key("key_bits");
    if (s.key_bits)
        w.number(s.key_bits);
    else
        w.null();
    w.key("key_check_value");
    if (s.check_value.empty())
        w.null();
    else
        w.string(s.check_value);
    w.key("unwrap_command_configured");
    w.boolean(s.unwrap_command.has_value());
    if (show_commands) {
        w.key("unwrap_command");
        if (s.unwrap_command)
            w.string(*s.unwrap_command);
        else
            w.null();
    }
    w.key("plaintext_key");
    w.boolean(s.plaintext_key);
    w.key("rewrap");
    w.begin_object();
    w.key("state");
    w.string(phase_key(s.rewrap.phase));
    w.key("key_file_is_new");
    w.boolean(s.rewrap.new_key_renamed);
    w.key("previous_key_kept");
    w.boolean(s.rewrap.previous_key_kept);
    w.key("leftovers");
    w.begin_array();
    for (const auto& l : s.rewrap.leftovers)
        w.string(l);
    w.end_array();
    w.end_object();
    w.key("files");
    w.begin_array();
    for (const auto& f : s.files) {
        w.begin_object();
        w.key("path");
        w.string(f.path);
        w.key("type");
        w.string(f.directory ? "directory" : "file");
        w.key("mode");
        w.string(octal(f.mode));
        w.key("owner");
        w.string(f.owner);
        w.end_object();
    }
    w.end_array();
    w.key("warnings");
    w.begin_array();
    for (const auto& warning : s.warnings)
        w.string(warning);
    w.end_array();
    w.end_object();
    return w.text() + "\n";
}

} // namespace pg_datakey
