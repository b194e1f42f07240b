// The refusal of root and of users other than the data directory's owner.
#include "trust.hpp"

#include "exit_status.hpp"

#include <cerrno>
#include <cstring>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pg_datakey {

namespace {

std::string user_name(uid_t uid) {
    struct passwd pw;
    struct passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
        return "\"" + std::string(found->pw_name) + "\" (uid " + std::to_string(uid) + ")";
    return "uid " + std::to_string(uid);
}

std::string bare_user_name(uid_t uid) {
    struct passwd pw;
    struct passwd* found = nullptr;
    char buf[4096];
    if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
        return found->pw_name;
    return "#" + std::to_string(uid);
}

} // namespace

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
                    "It is owned by " + user_name(st.st_uid) + "; pg_datakey runs as " +
                        user_name(me) + ".",
                    "Run pg_datakey as the owner of the data directory, e.g. \"runuser -u " +
                        bare_user_name(st.st_uid) + " -- pg_datakey ...\".");
}

} // namespace pg_datakey
