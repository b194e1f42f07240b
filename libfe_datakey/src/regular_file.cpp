// The one regular-file rule (regular_file.hpp): lstat (or stat) first, so
// that nothing but a regular file is ever opened, then an open that cannot
// block, and fstat to see that the file opened is the one checked.
#include "fe_datakey/regular_file.hpp"

#include "fe_datakey/error.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fe_datakey {

std::string file_type_name(mode_t mode) {
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISLNK(mode))
        return "a symbolic link";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a regular file";
}

namespace {

const char not_regular_suffix[] = " is not a regular file";

Error not_regular(const std::string& what, const std::string& shown, mode_t mode) {
    std::string detail = "It is " + file_type_name(mode) + ".";
    std::string hint;
    if (S_ISLNK(mode))
        hint = "Keep the file itself in the data directory: base backups skip symbolic links "
               "there.";
    return Error(ErrorCode::io, what + " " + in_quotes(shown) + not_regular_suffix, detail, hint);
}

// stat or lstat of `path`: false when nothing is there.
bool stat_path(const std::string& path, const std::string& what, const std::string& shown,
               Links links, struct stat& st) {
    int rc = links == Links::follow ? stat(path.c_str(), &st) : lstat(path.c_str(), &st);
    if (rc == 0)
        return true;
    if (errno == ENOENT)
        return false;
    throw_io_error("could not stat " + what + " " + in_quotes(shown), errno);
}

} // namespace

bool is_not_regular_file_error(const Error& e) {
    const std::string& m = e.message();
    std::size_t n = sizeof not_regular_suffix - 1;
    return e.code() == ErrorCode::io && m.size() >= n &&
           m.compare(m.size() - n, n, not_regular_suffix) == 0;
}

bool check_regular_file(const std::string& path, const std::string& what, const std::string& shown,
                        Links links) {
    struct stat st;
    if (!stat_path(path, what, shown, links, st))
        return false;
    if (!S_ISREG(st.st_mode))
        throw not_regular(what, shown, st.st_mode);
    return true;
}

FileHandle open_regular_file(const std::string& path, const std::string& what,
                             const std::string& shown, Links links) {
    struct stat before;
    if (!stat_path(path, what, shown, links, before))
        return FileHandle(-1);
    if (!S_ISREG(before.st_mode))
        throw not_regular(what, shown, before.st_mode);

    int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (links == Links::refuse ? O_NOFOLLOW : 0);
    FileHandle fd(open(path.c_str(), flags));
    if (fd.get() < 0) {
        if (errno == ENOENT)
            return FileHandle(-1);
        throw_io_error("could not open " + what + " " + in_quotes(shown), errno);
    }
    struct stat after;
    if (fstat(fd.get(), &after) != 0)
        throw_io_error("could not stat " + what + " " + in_quotes(shown), errno);
    if (!S_ISREG(after.st_mode))
        throw not_regular(what, shown, after.st_mode);
    if (after.st_dev != before.st_dev || after.st_ino != before.st_ino)
        throw Error(ErrorCode::io, "could not open " + what + " " + in_quotes(shown),
                    "The file was replaced while it was being opened.");
    int fl = fcntl(fd.get(), F_GETFL);
    if (fl < 0 || fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0)
        throw_io_error("could not open " + what + " " + in_quotes(shown), errno);
    return fd;
}

std::optional<std::string> read_regular_file_if_exists(const std::string& path,
                                                       const std::string& what,
                                                       const std::string& shown, Links links,
                                                       std::size_t limit) {
    FileHandle fd = open_regular_file(path, what, shown, links);
    if (fd.get() < 0)
        return std::nullopt;
    std::string text;
    char buf[4096];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_io_error("could not read " + what + " " + in_quotes(shown), errno);
        if (n == 0)
            return text;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > limit)
            throw Error(ErrorCode::io, what + " " + in_quotes(shown) + " is too large",
                        "It is larger than " + std::to_string(limit) + " bytes.");
    }
}

std::string read_regular_file(const std::string& path, const std::string& what,
                              const std::string& shown, Links links, std::size_t limit) {
    std::optional<std::string> text = read_regular_file_if_exists(path, what, shown, links, limit);
    if (!text)
        throw_io_error("could not open " + what + " " + in_quotes(shown), ENOENT);
    return *text;
}

} // namespace fe_datakey
