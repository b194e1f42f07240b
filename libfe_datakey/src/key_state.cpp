// The key-state check: pg_control's encryption fields set against the key
// files of a data directory, every disagreement reported as one finding.
#include "fe_datakey/key_state.hpp"

#include "fe_datakey/key.hpp"
#include "fe_datakey/regular_file.hpp"
#include "fe_datakey/store.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace fe_datakey {

namespace {

using Kind = KeyStateFinding::Kind;

// Whether something exists at `path` (of any type, a dangling link too); an
// error other than ENOENT counts as existing: it cannot be ruled out.
bool exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

void unencrypted(const std::string& datadir, std::vector<KeyStateFinding>& out) {
    // No key file may exist: data written as if unencrypted would mix with
    // data of a cluster that lost its pg_control state. A lone key.check is
    // refused too (fail closed): it says a key was there.
    const std::string hint = "If the cluster was never encrypted, remove the directory " +
                             in_quotes(key_directory) +
                             "; otherwise restore global/pg_control from a backup.";
    struct KeyStoreFile {
        const char* path;
        const char* what;
    };
    for (const KeyStoreFile& f : {KeyStoreFile{key_file, "a data encryption key"},
                                  KeyStoreFile{key_check_file, "a data encryption key check"}})
        if (exists(data_directory_path(datadir, f.path)))
            out.push_back({Kind::key_files_unencrypted,
                           Error(ErrorCode::not_encrypted,
                                 std::string("data directory holds ") + f.what +
                                     ", but pg_control says the cluster is not encrypted",
                                 "The file " + in_quotes(f.path) +
                                     " exists, and the data encryption version in pg_control is 0.",
                                 hint)});
}

void key_file_state(const std::string& datadir, unsigned bits, std::vector<KeyStateFinding>& out) {
    const std::string path = data_directory_path(datadir, key_file);
    const std::string hint = "Restore the file from a backup of this cluster: the cluster cannot "
                             "be used without its key.";
    std::optional<Error> refused;
    bool present = true;
    try {
        FileHandle fd =
            open_regular_file(path, "data encryption key file", key_file, Links::refuse);
        present = fd.get() >= 0;
    } catch (const Error& e) {
        refused = e;
    }
    if (!present) {
        out.push_back(
            {Kind::key_file_missing,
             Error(ErrorCode::io, "data encryption key file " + in_quotes(key_file) + " is missing",
                   "pg_control says the cluster is encrypted with a " + std::to_string(bits) +
                       "-bit key, but the file cannot be accessed: " + std::strerror(ENOENT) + ".",
                   hint)});
        return;
    }
    if (refused) {
        // A file of the wrong type was put there: the real one must come
        // back. An open that failed (permissions, an I/O error) may pass:
        // there is nothing to restore.
        std::string why = is_not_regular_file_error(*refused)
                              ? hint
                              : "Check the file's permissions and the storage it is on, "
                                "then try again.";
        out.push_back(
            {Kind::key_file_unreadable,
             Error(ErrorCode::io, refused->message(),
                   refused->detail().empty() ? "pg_control says the cluster is encrypted with a " +
                                                   std::to_string(bits) + "-bit key."
                                             : refused->detail(),
                   refused->hint().empty() ? why : refused->hint())});
    }
}

void key_check_state(const std::string& datadir, unsigned bits, std::vector<KeyStateFinding>& out) {
    std::optional<KeyCheck> check;
    try {
        check = find_key_check(datadir);
    } catch (const Error& e) {
        out.push_back({Kind::key_check_invalid, e});
        return;
    }
    if (!check) {
        out.push_back(
            {Kind::key_check_missing,
             Error(ErrorCode::check_invalid,
                   "key check file " + in_quotes(key_check_file) + " is missing",
                   "The data encryption key cannot be verified without it.",
                   "Restore the file from a backup of this cluster, or copy it from a standby or "
                   "backup that holds the same key.")});
        return;
    }
    if (static_cast<unsigned>(check->bits) != bits)
        out.push_back(
            {Kind::key_check_length,
             Error(ErrorCode::check_invalid, "key check file does not match pg_control",
                   "pg_control says the key has " + std::to_string(bits) + " bits, " +
                       in_quotes(key_check_file) + " says " + std::to_string(check->bits) + ".",
                   "Restore the key files or global/pg_control from a backup of this "
                   "cluster.")});
}

} // namespace

std::vector<KeyStateFinding> key_state_findings(const std::string& datadir, unsigned version,
                                                unsigned bits) {
    std::vector<KeyStateFinding> out;
    if (version == 0) {
        unencrypted(datadir, out);
        return out;
    }
    if (version != control_encryption_version) {
        out.push_back({Kind::unsupported_version,
                       Error(ErrorCode::check_invalid,
                             "unsupported data encryption version " + std::to_string(version) +
                                 " in pg_control",
                             "This version of fe_datakey supports data encryption version " +
                                 std::to_string(control_encryption_version) + ".")});
        return out;
    }
    if (bits != 128 && bits != 256) {
        out.push_back(
            {Kind::invalid_key_length, Error(ErrorCode::check_invalid,
                                             "invalid data encryption key length in pg_control: " +
                                                 std::to_string(bits) + " bits",
                                             "Valid key lengths are 128 and 256 bits.")});
        return out;
    }
    key_file_state(datadir, bits, out);
    key_check_state(datadir, bits, out);
    return out;
}

void check_key_state(const std::string& datadir, unsigned version, unsigned bits) {
    std::vector<KeyStateFinding> findings = key_state_findings(datadir, version, bits);
    if (!findings.empty())
        throw findings.front().error;
}

} // namespace fe_datakey
