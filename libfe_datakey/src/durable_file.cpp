// Durable replacement of files: temporary name, fsync, rename, fsync of the
// directory (see durable_file.hpp).
#include "fe_datakey/durable_file.hpp"

#include "fe_datakey/error.hpp"

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace fe_datakey {

namespace {

std::string parent_directory(const std::string& path) {
    std::string parent = std::filesystem::path(path).parent_path().string();
    return parent.empty() ? "." : parent;
}

void durable_rename(const std::string& from, const std::string& to) {
    if (rename(from.c_str(), to.c_str()) != 0)
        throw_io_error("could not rename file " + in_quotes(from) + " to " + in_quotes(to), errno);
    fsync_path(parent_directory(to), true);
}

// Writes all of data to fd, retrying short writes and EINTR; an error names
// `path`, the file fd is open on.
void write_all(int fd, const void* data, std::size_t size, const std::string& path) {
    const char* bytes = static_cast<const char*>(data);
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, bytes + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            throw_io_error("could not write file " + in_quotes(path), n < 0 ? errno : ENOSPC);
        done += static_cast<std::size_t>(n);
    }
}

} // namespace

void FileHandle::close_checked(const std::string& path) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
        throw_io_error("could not close file " + in_quotes(path), errno);
}

void remove_if_exists(const std::string& path) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
        throw_io_error("could not remove file " + in_quotes(path), errno);
}

// The last steps of writing a file under a temporary name: its mode (the
// umask may have taken bits away; the mode is ours to decide), fsync, close,
// rename over `path` and fsync of the directory.
void install_file(FileHandle& fd, mode_t mode, const std::string& tmp, const std::string& path) {
    if (fchmod(fd.get(), mode) != 0)
        throw_io_error("could not change permissions of file " + in_quotes(tmp), errno);
    if (fsync(fd.get()) != 0)
        throw_io_error("could not fsync file " + in_quotes(tmp), errno);
    fd.close_checked(tmp);
    durable_rename(tmp, path);
}

void fsync_path(const std::string& path, bool is_directory) {
    int flags = O_RDONLY | O_CLOEXEC | (is_directory ? O_DIRECTORY : 0);
    FileHandle fd(open(path.c_str(), flags));
    if (fd.get() < 0)
        throw_io_error(std::string("could not open ") + (is_directory ? "directory " : "file ") +
                           in_quotes(path),
                       errno);
    // Some file systems cannot fsync a directory; PostgreSQL ignores that too.
    if (fsync(fd.get()) != 0 && !(is_directory && (errno == EBADF || errno == EINVAL)))
        throw_io_error("could not fsync file " + in_quotes(path), errno);
}

void replace_file_durably(const std::string& path, const void* data, std::size_t size,
                          mode_t mode) {
    replace_file_durably(path, path + ".tmp", data, size, mode);
}

namespace {

// Gives the temporary file the owner of the file it replaces. fchown comes
// before install_file's fchmod: a chown by a non-root user clears the set-id
// bits, which the mode then puts back where allowed.
void give_owner(int fd, const std::string& path, const std::string& tmp, const FileOwner& owner) {
    if (fchown(fd, owner.uid, owner.gid) == 0)
        return;
    int e = errno;
    if (e != EPERM)
        throw_io_error("could not change owner of file " + in_quotes(tmp), e);
    throw Error(ErrorCode::io, "could not replace file " + in_quotes(path),
                "The file is owned by user " + std::to_string(owner.uid) + " and group " +
                    std::to_string(owner.gid) +
                    ", and this program may not create a file owned by them, so the new file "
                    "could not keep its owner. Nothing was changed.",
                "Run the program as the file's owner, or make the file owned by the user and a "
                "group of the user running the program.");
}

void write_and_install(const std::string& path, const std::string& tmp, const void* data,
                       std::size_t size, mode_t mode, const FileOwner* owner) {
    remove_if_exists(tmp);
    try {
        FileHandle fd(
            open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
        if (fd.get() < 0)
            throw_io_error("could not create file " + in_quotes(tmp), errno);
        if (owner != nullptr)
            give_owner(fd.get(), path, tmp, *owner);
        write_all(fd.get(), data, size, tmp);
        install_file(fd, mode, tmp, path);
    } catch (...) {
        unlink(tmp.c_str());
        throw;
    }
}

} // namespace

void replace_file_durably(const std::string& path, const std::string& tmp, const void* data,
                          std::size_t size, mode_t mode) {
    write_and_install(path, tmp, data, size, mode, nullptr);
}

void replace_file_durably(const std::string& path, const std::string& tmp, const void* data,
                          std::size_t size, mode_t mode, const FileOwner& owner) {
    write_and_install(path, tmp, data, size, mode, &owner);
}

} // namespace fe_datakey
