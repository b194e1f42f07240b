// Running the administrator's wrap and unwrap commands.
#pragma once

#include "fe_datakey/secure_buffer.hpp"

#include <string>
#include <vector>

namespace fe_datakey {

enum class Role { wrap, unwrap };
const char* role_name(Role role); // "key wrap command" / "key unwrap command"

// The value "-": no wrapping, the key file holds the plaintext key.
bool is_plaintext_mode(const std::string& command);

// The one reading of a command's % escapes: %p the key file, %% a literal
// %, any other %x (and a trailing %) left as it is. Returns the literal text
// between the %p's (the %% already made %): one piece when there is no %p.
std::vector<std::string> split_at_placeholders(const std::string& command);

// Whether the command has a %p.
bool has_placeholder(const std::string& command);

// Each %p replaced by path, %% by %.
std::string expand_command(const std::string& command, const std::string& path);

// Refuses a user-given path that is not safe in a shell command however %p
// is quoted ("%p", '%p' or bare): only ASCII letters, digits and
// / . _ - + , : @ = are allowed, and no leading -. Throws unsafe_path, the
// detail naming the class of the first offending character.
void check_path_is_shell_safe(const std::string& path);

struct RunOptions {
    std::string working_directory; // the data directory
    int timeout_seconds = 0;       // 0: none
};

// Every command runs in a process group of its own, which gets the
// controlling terminal for the run when ours had it (so a command can prompt
// for a passphrase). When the command exits, what is left in its group is
// killed and its output is read for a short grace period at most; a run that
// ends early (timeout, interrupt, error) kills the whole group.

// A check the caller gives to stop a running command (a postmaster that got
// SIGTERM, say): called about every kInterruptCheckMs while a command runs;
// when it returns non-zero the command's process group is killed and the run
// throws Error(interrupted). Process-wide; nullptr (the default) for none.
// Without one, a run catches SIGINT, SIGTERM, SIGQUIT and SIGHUP (those not
// ignored) while its command runs: the group is killed, the caller's
// handlers are restored, the signal is raised again, and, if the caller
// survives it, the run throws Error(interrupted).
using InterruptCheck = int (*)();
void set_interrupt_check(InterruptCheck check) noexcept;
constexpr int kInterruptCheckMs = 100;

// The shell used to run commands: bash with pipefail when /bin/bash exists,
// else /bin/sh (no pipefail).
std::string command_shell();

// Checks the syntax of a command with `shell -n` (which executes nothing),
// its standard streams on /dev/null so that the shell's message, which quotes
// the command, goes nowhere. Throws command_invalid on a syntax error, without
// the text; spawn_failed when the check cannot run or takes too long. run_wrap
// and run_unwrap call it first.
void check_command_syntax(Role role, const std::string& command);

// Runs a wrap command: `key` on stdin then EOF; the command's stdout and stderr
// go to ours. Throws Error (spawn_failed, command_failed, command_signaled,
// command_timeout, interrupted; command_failed also when it did not read the whole key).
void run_wrap(const std::string& expanded_command, const SecureBuffer& key,
              const RunOptions& options);

// Runs an unwrap command and returns its stdout (binary). As soon as more
// than max_output bytes have come, the outcome is decided: the command gets
// a short grace period to end, then its group is killed, and output_long
// says "Expected <expected>, got N." when it ended (N its output's length),
// else "got more than <max_output>."; `expected` defaults to "at most
// <max_output> bytes". stdin and stderr are inherited. Throws like
// run_wrap, plus output_long.
SecureBuffer run_unwrap(const std::string& expanded_command, std::size_t max_output,
                        const RunOptions& options, const std::string& expected = {});

} // namespace fe_datakey
