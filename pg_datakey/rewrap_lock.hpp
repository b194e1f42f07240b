// An exclusive, non-blocking flock() on pg_encryption/rewrap.lock: one rewrap
// or repair at a time per data directory. The kernel drops the lock when the
// process dies, so a killed rewrap never leaves a stale lock behind.
#pragma once

#include <string>

namespace pg_datakey {

class RewrapLock {
public:
    // Throws ToolError(exit_busy) when another process still holds the lock
    // after wait_ms milliseconds. The wait lets a status, which probes the
    // lock for a moment, never make a rewrap or repair fail.
    explicit RewrapLock(const std::string& datadir, int wait_ms = 2000);
    ~RewrapLock();
    RewrapLock(const RewrapLock&) = delete;
    RewrapLock& operator=(const RewrapLock&) = delete;

private:
    int fd_ = -1;
};

// For status: true when some process holds the lock right now. Creates nothing.
bool rewrap_lock_held(const std::string& datadir);

} // namespace pg_datakey
