// The rewrap lock: a non-blocking flock() on pg_encryption/rewrap.lock, taken or tested.
#include "rewrap_lock.hpp"

#include "exit_status.hpp"
#include "fe_datakey/regular_file.hpp"
#include "paths.hpp"

#include "fe_datakey/store.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace pg_datakey {

RewrapLock::RewrapLock(const std::string& datadir, int wait_ms) {
    std::string path = datadir + "/" + lock_file;
    mode_t mode = fe_datakey::group_access(datadir) ? 0640 : 0600;
    fe_datakey::check_regular_file(path, "lock file", path, fe_datakey::Links::refuse);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd_ < 0)
        fe_datakey::throw_io_error("could not open lock file \"" + path + "\"", errno);
    int rc;
    for (int waited = 0;
         (rc = ::flock(fd_, LOCK_EX | LOCK_NB)) != 0 && errno == EWOULDBLOCK && waited < wait_ms;
         waited += 10)
        ::usleep(10 * 1000);
    if (rc != 0) {
        int saved = errno;
        ::close(fd_);
        fd_ = -1;
        if (saved == EWOULDBLOCK)
            throw ToolError(exit_busy, "another rewrap or repair is running on this data directory",
                            "The lock file \"" + path + "\" is held by another process.",
                            "Wait for it to finish, then check with \"pg_datakey status\".");
        fe_datakey::throw_io_error("could not lock file \"" + path + "\"", saved);
    }
}

RewrapLock::~RewrapLock() {
    if (fd_ >= 0)
        ::close(fd_); // releases the lock
}

bool rewrap_lock_held(const std::string& datadir) {
    std::string path = datadir + "/" + lock_file;
    // O_NONBLOCK: whatever is there, the open must not wait.
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return held;
}

} // namespace pg_datakey
