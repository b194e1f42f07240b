#include "datadir.hpp"

#include "exit_status.hpp"
#include "trust.hpp"

#include "fe_datakey/store.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pg_datakey {

std::string resolve_data_directory(const std::optional<std::string>& option) {
    std::string datadir;
    if (option && !option->empty())
        datadir = *option;
    else if (const char* env = std::getenv("PGDATA"); env && *env)
        datadir = env;
    else
        throw ToolError(exit_usage, "no data directory specified");
    while (datadir.size() > 1 && datadir.back() == '/')
        datadir.pop_back();

    struct stat st;
    if (::stat(datadir.c_str(), &st) != 0)
        fe_datakey::throw_io_error("could not access directory \"" + datadir + "\"", errno);
    if (!S_ISDIR(st.st_mode))
        throw ToolError(exit_io, "\"" + datadir + "\" is not a directory");
    require_data_directory_owner(datadir);
    if (::stat((datadir + "/PG_VERSION").c_str(), &st) != 0)
        throw ToolError(exit_io, "\"" + datadir + "\" is not a database cluster directory",
                        "The file \"PG_VERSION\" is missing.");
    return datadir;
}

namespace {

bool present(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0)
        return true;
    if (errno != ENOENT)
        fe_datakey::throw_io_error("could not stat file \"" + path + "\"", errno);
    return false;
}

// Why the key file cannot be read, or empty when it can.
std::string unreadable(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
        return std::string("could not stat it: ") + std::strerror(errno);
    if (!S_ISREG(st.st_mode))
        return "it is not a regular file";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::string("could not open it: ") + std::strerror(errno);
    ::close(fd);
    return {};
}

} // namespace

EncryptionState encryption_state(const std::string& datadir) {
    EncryptionState s;
    s.control = fe_datakey::read_control_file(datadir);
    std::string key = datadir + "/" + fe_datakey::key_file;
    s.key_file = present(key);
    s.key_check = present(datadir + "/" + fe_datakey::key_check_file);
    const std::string where = "pg_control of \"" + datadir + "\"";
    if (s.control.encrypted()) {
        std::string why;
        if (!s.key_file)
            why = "key file \"" + std::string(fe_datakey::key_file) + "\" is missing";
        else if (std::string u = unreadable(key); !u.empty())
            why = "key file \"" + std::string(fe_datakey::key_file) + "\" is unreadable: " + u;
        else if (!s.key_check)
            why = "key check file \"" + std::string(fe_datakey::key_check_file) + "\" is missing";
        if (!why.empty()) {
            s.disagreement = "the cluster is encrypted but its " + why;
            s.disagreement_detail = "The " + where + " says data encryption version " +
                                    std::to_string(s.control.data_encryption_version) + " with a " +
                                    std::to_string(s.control.data_encryption_key_length) +
                                    "-bit key. Without the key file the cluster cannot be opened.";
        }
    } else if (s.key_file || s.key_check) {
        s.disagreement = "the cluster is not encrypted but has key files";
        s.disagreement_detail =
            "The " + where +
            (s.control.has_encryption_fields
                 ? std::string(" says data encryption version 0")
                 : " has version " + std::to_string(s.control.pg_control_version) +
                       ", which has no data encryption fields") +
            ", yet \"" + (s.key_file ? fe_datakey::key_file : fe_datakey::key_check_file) +
            "\" exists.";
    }
    return s;
}

void require_agreement(const EncryptionState& state) {
    if (!state.disagreement.empty())
        throw ToolError(exit_key_files_disagree, state.disagreement, state.disagreement_detail,
                        "Restore the key files from a backup of this cluster, or find out why "
                        "pg_control and the directory \"" +
                            std::string(fe_datakey::key_directory) + "\" disagree.");
}

EncryptionState require_encrypted(const std::string& datadir) {
    EncryptionState state = encryption_state(datadir);
    require_agreement(state);
    if (!state.control.encrypted())
        throw fe_datakey::Error(fe_datakey::ErrorCode::not_encrypted,
                                "data directory \"" + datadir + "\" is not encrypted",
                                state.control.has_encryption_fields
                                    ? "Its pg_control says data encryption version 0."
                                    : "Its pg_control (version " +
                                          std::to_string(state.control.pg_control_version) +
                                          ") has no data encryption fields.");
    return state;
}

void require_key_length(const EncryptionState& state, int bits) {
    if (static_cast<std::uint32_t>(bits) != state.control.data_encryption_key_length)
        throw ToolError(exit_key_files_disagree,
                        "the key is " + std::to_string(bits) + " bits long but pg_control says " +
                            std::to_string(state.control.data_encryption_key_length),
                        "The key files do not belong to this cluster.",
                        "Restore the key files from a backup of this cluster.");
}

} // namespace pg_datakey
