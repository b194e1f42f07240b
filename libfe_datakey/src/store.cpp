// The key files inside a data directory: key.bin written through the wrap
// command (or as it is in "-" mode) and key.check, both durably
// (durable_file.hpp), so that a crash or a failed command never leaves a
// partial key; and the reading, unwrapping and verifying of a key.
#include "fe_datakey/store.hpp"

#include "fe_datakey/error.hpp"
#include "fe_datakey/regular_file.hpp"

#include <openssl/crypto.h>

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace fe_datakey {

namespace {

// Generous: anything up to this is read, so that a wrong length is reported
// with the exact byte count.
constexpr std::size_t key_read_limit = 4096;
constexpr std::size_t check_read_limit = 4096;

mode_t directory_mode(bool group) {
    return group ? 0750 : 0700;
}
mode_t file_mode(bool group) {
    return group ? 0640 : 0600;
}

void write_bytes_durably(const std::string& datadir, const std::string& relpath,
                         const unsigned char* data, std::size_t size) {
    replace_file_durably(data_directory_path(datadir, relpath), data, size,
                         file_mode(group_access(datadir)));
}

// Reads a plaintext key file ("-" mode) straight into locked memory.
SecureBuffer read_key_file(const std::string& path, Links links) {
    FileHandle fd = open_regular_file(path, "data encryption key file", path, links);
    if (fd.get() < 0)
        throw_io_error("could not open file " + in_quotes(path), ENOENT);
    SecureBuffer buf(key_read_limit);
    for (;;) {
        std::size_t room = buf.capacity() - buf.size();
        if (room == 0)
            break;
        ssize_t n = read(fd.get(), buf.data() + buf.size(), room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_io_error("could not read file " + in_quotes(path), errno);
        if (n == 0)
            return buf;
        buf.resize(buf.size() + static_cast<std::size_t>(n));
    }
    struct stat st;
    std::size_t size = fstat(fd.get(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
    throw Error(ErrorCode::output_long, "key file " + in_quotes(path) + " is too long",
                "Expected at most " + std::to_string(key_read_limit) + " bytes, got " +
                    (size > key_read_limit ? std::to_string(size) : "more") + ".");
}

SecureBuffer read_plaintext_key(const std::string& path, Links links) {
    SecureBuffer buf = read_key_file(path, links);
    if (buf.size() == 0)
        throw Error(ErrorCode::output_empty, "key file " + in_quotes(path) + " is empty");
    return buf;
}

// The key check at `path`, or nothing when the file does not exist; errors
// name the file as `shown`.
std::optional<KeyCheck> read_check_file(const std::string& path, const std::string& shown) {
    FileHandle fd = open_regular_file(path, "key check file", shown, Links::refuse);
    if (fd.get() < 0)
        return std::nullopt;
    std::string text;
    char buf[512];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_io_error("could not read file " + in_quotes(shown), errno);
        if (n == 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > check_read_limit)
            throw Error(ErrorCode::check_invalid, "invalid key check file " + in_quotes(shown),
                        "The file is larger than " + std::to_string(check_read_limit) + " bytes.");
    }
    try {
        return KeyCheck::parse(text);
    } catch (const Error& e) {
        throw Error(ErrorCode::check_invalid, "invalid key check file " + in_quotes(shown),
                    e.detail(), e.hint());
    }
}

// The key file a command is given: checked before the command runs, so that
// it never opens a FIFO (and blocks) or a directory.
void require_key_file(const std::string& path, Links links) {
    if (!check_regular_file(path, "data encryption key file", path, links))
        throw_io_error("could not access file " + in_quotes(path), ENOENT);
}

} // namespace

bool group_access(const std::string& datadir) {
    struct stat st;
    if (stat(datadir.c_str(), &st) != 0)
        throw_io_error("could not stat directory " + in_quotes(datadir), errno);
    return (st.st_mode & S_IRGRP) != 0;
}

void write_file_durably(const std::string& datadir, const std::string& relpath,
                        const std::string& data) {
    write_bytes_durably(datadir, relpath, reinterpret_cast<const unsigned char*>(data.data()),
                        data.size());
}

void wrap_key_to(const std::string& datadir, const std::string& relpath,
                 const std::string& wrap_command, const Key& key, const RunOptions& options) {
    if (is_plaintext_mode(wrap_command)) {
        // By design the only case where the plaintext key is written to disk.
        write_bytes_durably(datadir, relpath, key.bytes().data(), key.bytes().size());
        return;
    }
    std::string tmp_rel = relpath + ".tmp";
    std::string tmp = data_directory_path(datadir, tmp_rel);
    std::string path = data_directory_path(datadir, relpath);
    mode_t mode = file_mode(group_access(datadir));
    remove_if_exists(tmp);

    RunOptions run = options;
    run.working_directory = datadir.empty() ? "." : datadir;
    try {
        run_wrap(expand_command(wrap_command, tmp_rel), key.bytes(), run);

        std::string role = role_name(Role::wrap);
        // O_NONBLOCK: a FIFO left there must not block the open.
        FileHandle fd(open(tmp.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (fd.get() < 0 && errno == ENOENT)
            throw Error(ErrorCode::output_empty, role + " did not write the key file",
                        "The command succeeded but left no file at " + in_quotes(tmp_rel) + ".",
                        "A wrap command must write the wrapped key to the file named by %p.");
        if (fd.get() < 0)
            throw_io_error("could not open file " + in_quotes(tmp), errno);
        struct stat st;
        if (fstat(fd.get(), &st) != 0)
            throw_io_error("could not stat file " + in_quotes(tmp), errno);
        if (!S_ISREG(st.st_mode))
            throw Error(ErrorCode::output_empty, role + " did not write the key file",
                        "The command left something other than a regular file at " +
                            in_quotes(tmp_rel) + ".");
        if (st.st_size == 0)
            throw Error(ErrorCode::output_empty, role + " wrote an empty key file",
                        "The command succeeded but the file " + in_quotes(tmp_rel) + " is empty.",
                        "A wrap command must write the wrapped key to the file named by %p.");
        install_file(fd, mode, tmp, path);
    } catch (...) {
        unlink(tmp.c_str());
        throw;
    }
}

void create_key_store(const std::string& datadir, const std::string& wrap_command, const Key& key,
                      const RunOptions& options) {
    std::string dir = data_directory_path(datadir, key_directory);
    mode_t mode = directory_mode(group_access(datadir));
    if (mkdir(dir.c_str(), mode) == 0) {
        fsync_path(datadir.empty() ? "." : datadir, true);
    } else if (errno != EEXIST) {
        throw_io_error("could not create directory " + in_quotes(dir), errno);
    }
    struct stat st;
    if (stat(dir.c_str(), &st) != 0)
        throw_io_error("could not stat directory " + in_quotes(dir), errno);
    if (!S_ISDIR(st.st_mode))
        throw Error(ErrorCode::io, "could not create directory " + in_quotes(dir),
                    "A file of that name already exists.");
    if (chmod(dir.c_str(), mode) != 0)
        throw_io_error("could not change permissions of directory " + in_quotes(dir), errno);

    // The wrap first: a failed wrap (the common failure) leaves nothing
    // behind. A key file without its check could not be verified, so a
    // failure to write the check removes the key file again.
    wrap_key_to(datadir, key_file, wrap_command, key, options);
    try {
        write_file_durably(datadir, key_check_file, KeyCheck::of(key).serialize());
    } catch (...) {
        unlink(data_directory_path(datadir, key_file).c_str());
        throw;
    }
}

std::optional<KeyCheck> find_key_check(const std::string& datadir) {
    return read_check_file(data_directory_path(datadir, key_check_file), key_check_file);
}

KeyCheck read_key_check(const std::string& datadir) {
    std::string path = data_directory_path(datadir, key_check_file);
    std::optional<KeyCheck> check = read_check_file(path, path);
    if (!check)
        throw Error(ErrorCode::check_invalid, "key check file " + in_quotes(path) + " is missing",
                    "The data encryption key cannot be verified without it.",
                    "Restore the file from a backup of this cluster, or copy it from a "
                    "standby or backup that holds the same key.");
    return *check;
}

Key load_key(const std::string& datadir, const std::string& unwrap_command,
             const RunOptions& options, const std::string& relpath) {
    // Before running anything: no prompt for a key that cannot be verified.
    KeyCheck check = read_key_check(datadir);
    std::string path = data_directory_path(datadir, relpath);
    require_key_file(path, Links::refuse);
    if (is_plaintext_mode(unwrap_command))
        return verify_key(read_plaintext_key(path, Links::refuse), check,
                          "key file " + in_quotes(path), KeyOrigin::plaintext_file);

    RunOptions run = options;
    run.working_directory = datadir.empty() ? "." : datadir;
    std::size_t length = key_length_for_bits(check.bits);
    SecureBuffer out = run_unwrap(expand_command(unwrap_command, relpath), length, run,
                                  std::to_string(length) + " bytes");
    return verify_key(std::move(out), check, role_name(Role::unwrap));
}

namespace {

// Where the unwrap command of a user-given key file runs, and the %p it gets.
struct KeyFileCommandPath {
    std::string directory; // the working directory: never in the command text
    std::string relpath;   // substituted into %p
};

KeyFileCommandPath key_file_command_path(const std::string& key_file_path) {
    namespace fs = std::filesystem;
    fs::path file(key_file_path);
    fs::path parent = file.parent_path();
    if (parent.filename() == key_directory) {
        // Inside a data directory: run where the cluster's own commands run.
        fs::path top = parent.parent_path();
        return {top.empty() ? "." : top.string(),
                std::string(key_directory) + "/" + file.filename().string()};
    }
    return {parent.empty() ? "." : parent.string(), file.filename().string()};
}

} // namespace

void check_key_file_path(const std::string& key_file_path) {
    check_path_is_shell_safe(key_file_command_path(key_file_path).relpath);
}

Key load_key_file(const std::string& key_file_path, const std::string& unwrap_command,
                  const RunOptions& options, std::optional<KeyCheck>* check_found) {
    namespace fs = std::filesystem;
    fs::path parent = fs::path(key_file_path).parent_path();
    auto [directory, relpath] = key_file_command_path(key_file_path);
    check_path_is_shell_safe(relpath);
    // The administrator named this file: a link to a regular file is followed.
    require_key_file(key_file_path, Links::follow);

    std::string check_path =
        data_directory_path(parent.empty() ? "." : parent.string(), "key.check");
    std::optional<KeyCheck> check = read_check_file(check_path, check_path);

    SecureBuffer bytes;
    std::string source;
    KeyOrigin origin = KeyOrigin::unwrap_command;
    if (is_plaintext_mode(unwrap_command)) {
        bytes = read_plaintext_key(key_file_path, Links::follow);
        source = "key file " + in_quotes(key_file_path);
        origin = KeyOrigin::plaintext_file;
    } else {
        RunOptions run = options;
        run.working_directory = directory;
        // Without a key check either length is valid: the longer bounds it.
        std::size_t shorter = key_length_for_bits(128), longer = key_length_for_bits(256);
        std::size_t length = check ? key_length_for_bits(check->bits) : longer;
        std::string expected =
            check ? std::to_string(length) + " bytes"
                  : std::to_string(shorter) + " bytes or " + std::to_string(longer) + " bytes";
        bytes = run_unwrap(expand_command(unwrap_command, relpath), length, run, expected);
        source = role_name(Role::unwrap);
    }
    Key key = check ? verify_key(std::move(bytes), *check, source, origin)
                    : verify_key_length(std::move(bytes), source, origin);
    if (check_found != nullptr)
        *check_found = check;
    return key;
}

std::string data_directory_path(const std::string& datadir, const std::string& rel) {
    return datadir.empty() ? rel : datadir + "/" + rel;
}

} // namespace fe_datakey
