// The refusal of root and of users other than the data directory's owner.
#include "trust.hpp"

#include "exit_status.hpp"

#include <cerrno>
#include <cstring>
#include <optional>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pg_datakey {

namespace {

std::optional<std::string> passwd_name(uid_t uid) {
    struct passwd pw;
    struct passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
        return std::string(found->pw_name);
    return std::nullopt;
}

// "name" (uid N), or uid N, for a message about who is who.
std::string described_user(uid_t uid) {
    std::optional<std::string> name = passwd_name(uid);
    return name ? "\"" + *name + "\" (uid " + std::to_string(uid) + ")"
                : "uid " + std::to_string(uid);
}

} // namespace

std::string user_name(uid_t uid) {
    return passwd_name(uid).value_or(std::to_string(uid));
}

void refuse_root() {
    if (::geteuid() != 0)
        return;
    throw ToolError(exit_wrong_user, "cannot be run as root", {},
                    "Please log in (using, e.g., \"su\") as the (unprivileged) user that will "
                    "own the server process.");
}

void require_data_directory_owner(const std::string& datadir) {
    struct stat st;
    if (::stat(datadir.c_str(), &st) != 0)
        throw ToolError(exit_io, "could not stat data directory \"" + datadir +
                                     "\": " + std::strerror(errno));
    uid_t me = ::geteuid();
    if (st.st_uid == me)
        return;
    throw ToolError(exit_wrong_user, "data directory \"" + datadir + "\" is owned by another user",
                    "It is owned by " + described_user(st.st_uid) + "; pg_datakey runs as " +
                        described_user(me) + ".",
                    "Run pg_datakey as the owner of the data directory, e.g. \"runuser -u " +
                        passwd_name(st.st_uid).value_or("#" + std::to_string(st.st_uid)) +
                        " -- pg_datakey ...\".");
}

} // namespace pg_datakey
