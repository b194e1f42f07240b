// Files written the way PostgreSQL's durable_rename() writes them: a
// temporary name, fsync, rename, fsync of the directory, so that a crash
// never leaves a partial file. Used by the key files (store.cpp) and the
// configuration (conf.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <sys/types.h>
#include <unistd.h>

namespace fe_datakey {

// An open descriptor, closed on every path out.
class FileHandle {
public:
    explicit FileHandle(int fd) : fd_(fd) {}
    ~FileHandle() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    FileHandle(const FileHandle&) = delete;
    FileHandle& operator=(const FileHandle&) = delete;
    FileHandle(FileHandle&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    int get() const { return fd_; }
    // close() can report a delayed write error: check it when writing.
    void close_checked(const std::string& path);

private:
    int fd_;
};

// Removes `path`; a missing file is no error.
void remove_if_exists(const std::string& path);

// The last steps of writing a file under a temporary name: its mode (the
// umask may have taken bits away; the mode is ours to decide), fsync, close,
// rename over `path` and fsync of the directory.
void install_file(FileHandle& fd, mode_t mode, const std::string& tmp, const std::string& path);

void fsync_path(const std::string& path, bool is_directory);

// Replaces the file at `path` by `data` durably, with mode `mode`: written to
// path + ".tmp" (a stale one is removed first), fsync, rename, fsync of the
// directory. On failure `path` is left as it was and the temporary removed.
void replace_file_durably(const std::string& path, const void* data, std::size_t size, mode_t mode);
// The same through a temporary name of the caller's choice (beside `path`),
// for files whose ".tmp" name another program uses.
void replace_file_durably(const std::string& path, const std::string& temporary, const void* data,
                          std::size_t size, mode_t mode);

// A file's owner and group.
struct FileOwner {
    uid_t uid;
    gid_t gid;
};
// The same, the new file given `owner` before anything is written or renamed.
// When this process may not give it that owner (EPERM: not root, and the
// owner is another user or the group one it is not in), throws io with
// `path` untouched and the temporary removed.
void replace_file_durably(const std::string& path, const std::string& temporary, const void* data,
                          std::size_t size, mode_t mode, const FileOwner& owner);

} // namespace fe_datakey
