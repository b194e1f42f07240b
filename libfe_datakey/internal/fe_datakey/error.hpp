// Errors the library reports: a PostgreSQL-style message, detail and hint,
// plus a code that callers can map to exit statuses.
#pragma once

#include <stdexcept>
#include <string>

namespace fe_datakey {

// Stable numbers: they cross the C ABI (FE_DATAKEY_E_*) and pg_datakey maps
// them to exit statuses.
enum class ErrorCode : int {
    ok = 0,
    usage = 1,           // malformed option, unknown value
    command_missing = 2, // a needed command is not set at all
    command_empty = 3,   // set to the empty string
    command_invalid = 4, // no %p, or "-" mixed with a command
    unsafe_path = 5,     // a user-given path that would break the shell quoting
    spawn_failed = 6,    // the shell could not be started
    command_failed = 7,  // non-zero exit
    command_signaled = 8,
    command_timeout = 9,
    output_empty = 10, // unwrap wrote nothing / wrap left no file
    output_short = 11,
    output_long = 12,
    key_mismatch = 13,  // unwrapped key does not match the key check
    check_invalid = 14, // key check file missing or malformed
    not_encrypted = 15,
    io = 16,
    internal = 17,
    interrupted = 18, // the caller's interrupt check asked to stop a command
};

class Error : public std::runtime_error {
public:
    Error(ErrorCode code, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(message), code_(code), message_(std::move(message)),
          detail_(std::move(detail)), hint_(std::move(hint)) {}

    ErrorCode code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    ErrorCode code_;
    std::string message_;
    std::string detail_;
    std::string hint_;
};

// An I/O failure, with strerror(errno) in the message as PostgreSQL words it:
// could not open file "x": No such file or directory
[[noreturn]] void throw_io_error(const std::string& what, int saved_errno);

// A file name or value in a message, in PostgreSQL's double quotes.
std::string in_quotes(const std::string& text);

} // namespace fe_datakey
