#include "datadir.hpp"

#include "exit_status.hpp"
#include "trust.hpp"

#include "fe_datakey/key_state.hpp"
#include "fe_datakey/store.hpp"

#include <cerrno>
#include <cstdlib>
#include <sys/stat.h>

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

using Kind = fe_datakey::KeyStateFinding::Kind;

// A finding that means pg_control and the key files disagree (exit 13); a
// malformed or unreadable key.check is its own failure (exit_check_invalid).
bool is_disagreement(const fe_datakey::KeyStateFinding& f) {
    return f.kind != Kind::key_check_invalid;
}

} // namespace

EncryptionState encryption_state(const std::string& datadir) {
    EncryptionState s;
    s.control = read_control_file(datadir);
    s.key_file = present(datadir + "/" + fe_datakey::key_file);
    s.key_check = present(datadir + "/" + fe_datakey::key_check_file);
    // The library's check, the one the server and the other programs make.
    s.findings = fe_datakey::key_state_findings(datadir, s.control.data_encryption_version,
                                                s.control.data_encryption_key_length);
    for (const auto& f : s.findings) {
        if (is_disagreement(f)) {
            s.disagreement = f.error.message();
            s.disagreement_detail = f.error.detail();
            s.disagreement_hint = f.error.hint();
            break;
        }
    }
    return s;
}

void require_agreement(const EncryptionState& state) {
    if (!state.findings.empty() && !is_disagreement(state.findings.front()))
        throw state.findings.front().error;
    if (!state.disagreement.empty())
        throw ToolError(exit_key_files_disagree, state.disagreement, state.disagreement_detail,
                        !state.disagreement_hint.empty()
                            ? state.disagreement_hint
                            : "Restore the key files from a backup of this cluster, or find out "
                              "why pg_control and the directory \"" +
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
