// Running the wrap and unwrap commands. Boost.Process starts the shell; the
// pipes, the deadline and the reaping are plain POSIX calls here, so that key
// bytes only ever pass between a SecureBuffer and a pipe, and a timeout is
// exact (Boost 1.74's wait_for cannot be trusted).
#include "fe_datakey/command.hpp"

#include "fe_datakey/error.hpp"

#include <boost/process/args.hpp>
#include <boost/process/child.hpp>
#include <boost/process/exe.hpp>
#include <boost/process/extend.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <linux/close_range.h>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <system_error>
#include <termios.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace bp = boost::process;

namespace fe_datakey {

const char* role_name(Role role) {
    return role == Role::wrap ? "key wrap command" : "key unwrap command";
}

bool is_plaintext_mode(const std::string& command) {
    return command == "-";
}

std::vector<std::string> split_at_placeholders(const std::string& command) {
    std::vector<std::string> pieces(1);
    for (std::size_t i = 0; i < command.size(); i++) {
        if (command[i] == '%' && i + 1 < command.size()) {
            if (command[i + 1] == 'p') {
                pieces.emplace_back();
                i++;
                continue;
            }
            if (command[i + 1] == '%') {
                pieces.back() += '%';
                i++;
                continue;
            }
        }
        pieces.back() += command[i];
    }
    return pieces;
}

bool has_placeholder(const std::string& command) {
    return split_at_placeholders(command).size() > 1;
}

std::string expand_command(const std::string& command, const std::string& path) {
    std::vector<std::string> pieces = split_at_placeholders(command);
    std::string out = pieces.front();
    for (std::size_t i = 1; i < pieces.size(); i++)
        out += path + pieces[i];
    return out;
}

// A path substituted into %p may stand in double quotes, in single quotes or
// bare, so only characters that no shell treats specially anywhere in a word
// pass: ASCII letters and digits and / . _ - + , : @ =. Everything else
// (quotes, ; & | < > ( ), blanks, globs, $ ` \ ~ ! # { } %, control
// characters, non-ASCII bytes) is refused, as is a leading - (an option).
void check_path_is_shell_safe(const std::string& path) {
    auto refuse = [](const std::string& what) {
        throw Error(ErrorCode::unsafe_path,
                    "path contains a character that is not allowed in a key command",
                    "The path contains " + what + ".",
                    "Copy or link the file to a path made only of letters, digits and the "
                    "characters / . _ - + , : @ =.");
    };
    if (!path.empty() && path[0] == '-')
        refuse("a leading dash, which a program would read as an option");
    // The first class that holds a refused character names it.
    static const std::pair<const char*, const char*> named[] = {
        {"'", "a single quote (')"},
        {"\"", "a double quote (\")"},
        {"$", "a dollar sign ($)"},
        {"`", "a backquote (`)"},
        {"\\", "a backslash (\\)"},
        {"\n", "a newline"},
        {" \t", "a space or tab"},
        {"*?[]", "a wildcard character (* ? [ ])"},
        {";&|<>()", "a shell operator (; & | < > ( ))"},
    };
    for (unsigned char c : path) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c != '\0' && std::strchr("/._-+,:@=", c) != nullptr))
            continue;
        for (const auto& [chars, name] : named)
            if (c != '\0' && std::strchr(chars, c) != nullptr)
                refuse(name);
        if (c >= 0x80)
            refuse("a non-ASCII character");
        if (c < 0x20 || c == 0x7f)
            refuse("a control character");
        refuse("a character that the shell treats specially (" + std::string(1, char(c)) + ")");
    }
}

std::string command_shell() {
    return access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
}

namespace {

// An owned file descriptor.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

Error spawn_error(Role role, const std::string& detail) {
    return Error(ErrorCode::spawn_failed, std::string("could not start ") + role_name(role),
                 detail);
}

// A close-on-exec pipe whose ends are both >= 3, so that they can never be
// confused with the child's standard descriptors when our own 0-2 are closed.
void make_pipe(Role role, Fd& read_end, Fd& write_end) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        throw spawn_error(role,
                          std::string("Could not create a pipe: ") + std::strerror(errno) + ".");
    Fd ends[2] = {Fd(p[0]), Fd(p[1])};
    for (Fd& end : ends) {
        if (end.get() < 3) {
            int moved = fcntl(end.get(), F_DUPFD_CLOEXEC, 3);
            if (moved < 0)
                throw spawn_error(role, std::string("Could not create a pipe: ") +
                                            std::strerror(errno) + ".");
            end = Fd(moved);
        }
    }
    read_end = std::move(ends[0]);
    write_end = std::move(ends[1]);
}

// The pipe between us and a command: its standard input for a wrap (the key
// goes in), its standard output for an unwrap (the key comes out). Our end
// is non-blocking, so that every wait is the watch's.
void command_pipe(Role role, Fd& child_end, Fd& our_end) {
    Fd read_end, write_end;
    make_pipe(role, read_end, write_end);
    child_end = std::move(role == Role::wrap ? read_end : write_end);
    our_end = std::move(role == Role::wrap ? write_end : read_end);
    if (fcntl(our_end.get(), F_SETFL, O_NONBLOCK) != 0)
        throw spawn_error(role,
                          std::string("Could not set up a pipe: ") + std::strerror(errno) + ".");
}

// Marks every descriptor >= 3 close-on-exec. Runs in the forked child, so it
// uses raw system calls only.
void mark_cloexec_from_3() {
#ifdef CLOSE_RANGE_CLOEXEC
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
#endif
    int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        alignas(8) char buf[4096];
        long n;
        while ((n = syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                // struct linux_dirent64: ino, off, reclen, type, name
                unsigned short reclen;
                std::memcpy(&reclen, buf + off + 16, sizeof reclen);
                const char* name = buf + off + 19;
                int fd = 0;
                bool numeric = *name != '\0';
                for (const char* c = name; *c; c++) {
                    if (*c < '0' || *c > '9') {
                        numeric = false;
                        break;
                    }
                    fd = fd * 10 + (*c - '0');
                }
                if (numeric && fd >= 3 && fd != dir)
                    fcntl(fd, F_SETFD, FD_CLOEXEC);
                off += reclen;
            }
        }
        ::close(dir);
        return;
    }
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < (max > 0 ? max : 1024); fd++)
        fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
}

// Every signal back to its default action, then an empty mask (in that
// order, so that no handler of ours can run in the child). A caller such as
// the postmaster ignores SIGPIPE, SIGALRM, SIGTTIN, ... and blocks signals
// while it loads the key; exec keeps both, and `timeout`, alarm()-based
// tools or a prompt would misbehave. Runs in the forked child: raw calls only.
void reset_signals() {
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, nullptr); // EINVAL for the C library's own: never ignored
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

// What the child does between fork and exec: our pipes onto 0/1, a normal
// signal state (see reset_signals), private file modes, a process group of
// its own (so that all it starts can be killed together) with the terminal
// when we had it, the working directory, and no inherited descriptor beyond
// 0-2.
struct ChildSetup : bp::extend::handler {
    int stdin_fd = -1; // -1: inherit ours
    int stdout_fd = -1;
    const char* directory = nullptr;
    int terminal_fd = -1;        // the terminal to hand to the command's group, or -1
    pid_t* failed_pid = nullptr; // where a child that failed after fork is left to reap

    template <typename Executor>
    void on_exec_setup(Executor& exec) const {
        // Nothing of ours may run here, and tcsetpgrp from what is now a
        // background group must not raise SIGTTOU.
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, nullptr);
        if ((stdin_fd >= 0 && dup2(stdin_fd, STDIN_FILENO) < 0) ||
            (stdout_fd >= 0 && dup2(stdout_fd, STDOUT_FILENO) < 0))
            fail(exec, "dup2");
        if (setpgid(0, 0) != 0)
            fail(exec, "setpgid");
        if (terminal_fd >= 0)
            tcsetpgrp(terminal_fd, getpid());
        reset_signals();
        // A wrap command creates the key file: keep it private from the
        // start; the library sets its final mode afterwards.
        umask(077);
        if (directory != nullptr && chdir(directory) != 0)
            fail(exec, "chdir");
        mark_cloexec_from_3();
    }

    template <typename Executor>
    void on_error(Executor& exec, const std::error_code&) const {
        if (failed_pid != nullptr)
            *failed_pid = exec.pid;
    }

    template <typename Executor>
    [[noreturn]] void fail(Executor& exec, const char* what) const {
        exec.set_error(std::error_code(errno, std::system_category()), what);
        _exit(127);
    }
};

using Clock = std::chrono::steady_clock;

// How long the output of an unwrap command that has exited, or has written
// too much, is still read.
constexpr int kPipeGraceMs = 250;
// How much more than its limit an unwrap command's output is counted.
constexpr std::size_t kTooLongCountLimit = 4096;

std::atomic<InterruptCheck> interrupt_check{nullptr};

// The signals that ask a program to stop. A run that no interrupt check
// governs (initdb, pg_rewind, pg_upgrade) catches them while its command
// runs, so that the command's process group is killed rather than left
// behind; afterwards the caller's handling is restored and the signal raised
// again, so that the program ends, or handles it, as it would have.
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
volatile sig_atomic_t stop_signal_caught = 0;

extern "C" void on_stop_signal(int sig) {
    stop_signal_caught = sig;
}

class StopSignals {
public:
    StopSignals() {
        if (interrupt_check.load() != nullptr)
            return;
        stop_signal_caught = 0;
        struct sigaction act;
        std::memset(&act, 0, sizeof act);
        act.sa_handler = on_stop_signal;
        sigemptyset(&act.sa_mask);
        act.sa_flags = 0; // no SA_RESTART: a wait ends with EINTR at once
        for (std::size_t i = 0; i < std::size(kStopSignals); i++) {
            struct sigaction& old = old_[i];
            if (sigaction(kStopSignals[i], nullptr, &old) != 0 || old.sa_handler == SIG_IGN)
                continue; // ignored (nohup, say): it stays ignored
            if (sigaction(kStopSignals[i], &act, nullptr) == 0)
                installed_[i] = true;
        }
        // Delivered while we wait, not held back by a mask we inherited.
        sigset_t set;
        sigemptyset(&set);
        for (std::size_t i = 0; i < std::size(kStopSignals); i++)
            if (installed_[i])
                sigaddset(&set, kStopSignals[i]);
        pthread_sigmask(SIG_UNBLOCK, &set, &old_mask_);
        active_ = true;
    }
    ~StopSignals() {
        if (!active_)
            return;
        pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
        for (std::size_t i = 0; i < std::size(kStopSignals); i++)
            if (installed_[i])
                sigaction(kStopSignals[i], &old_[i], nullptr);
        if (int sig = stop_signal_caught; sig != 0) {
            stop_signal_caught = 0;
            raise(sig);
        }
    }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

private:
    bool active_ = false;
    bool installed_[std::size(kStopSignals)] = {};
    struct sigaction old_[std::size(kStopSignals)];
    sigset_t old_mask_;
};

// Whether the caller's interrupt check, or a stop signal, asks to stop.
bool stop_requested(InterruptCheck check) {
    if (check != nullptr)
        return check() != 0;
    return stop_signal_caught != 0;
}

// Why a run stopped before the command ended.
enum class Stop { none, timeout, interrupt };

// Milliseconds from now until `t`, rounded up; 0 once it has passed.
long long ms_until(Clock::time_point t) {
    return std::max<long long>(
        0, std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count());
}

// One poll for at most `ms` (-1: no limit), until `fd` (when >= 0) is
// readable or `pidfd` (when >= 0) says the command exited. Returns 1 when fd
// is readable, 0 otherwise (also on EINTR), -1 with errno on an error.
int poll_once(int fd, int pidfd, int ms) {
    pollfd p[2];
    nfds_t n = 0;
    if (fd >= 0)
        p[n++] = {fd, POLLIN, 0};
    if (pidfd >= 0)
        p[n++] = {pidfd, POLLIN, 0};
    int r = poll(p, n, ms);
    if (r < 0)
        return errno == EINTR ? 0 : -1;
    return fd >= 0 && p[0].revents != 0 ? 1 : 0;
}

// The limits on a run: the timeout (none when 0) and the caller's interrupt
// check, asked at most every kInterruptCheckMs.
class Watch {
public:
    explicit Watch(int seconds) : check_(interrupt_check.load()) {
        if (seconds > 0)
            deadline_ = Clock::now() + std::chrono::seconds(seconds);
    }
    // For poll(): -1 when nothing limits the wait, else the milliseconds
    // until the deadline or the next interrupt check (0 once due).
    int slice_ms() const {
        long long left = deadline_ ? ms_until(*deadline_) : -1;
        long long to_check = ms_until(next_check_);
        left = left < 0 ? to_check : std::min(left, to_check);
        return static_cast<int>(std::min<long long>(left, INT_MAX));
    }
    Stop check() {
        Clock::time_point now = Clock::now();
        if (deadline_ && now >= *deadline_)
            return Stop::timeout;
        bool due = now >= next_check_;
        if (due)
            next_check_ = now + std::chrono::milliseconds(kInterruptCheckMs);
        // A stop signal is seen at once, the caller's check when it is due.
        if ((check_ == nullptr || due) && stop_requested(check_))
            return Stop::interrupt;
        return Stop::none;
    }

private:
    std::optional<Clock::time_point> deadline_;
    InterruptCheck check_;
    Clock::time_point next_check_ = Clock::now() + std::chrono::milliseconds(kInterruptCheckMs);
};

// The controlling terminal, when our process group is in its foreground.
// The command runs in a group of its own, so we hand the terminal to that
// group for the run (the command can prompt on it, and a ^C reaches it) and
// take it back when the command is gone.
class Terminal {
public:
    Terminal() {
        fd_ = Fd(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
        if (fd_.get() >= 0 && tcgetpgrp(fd_.get()) != getpgrp())
            fd_.reset();
    }
    Terminal(const Terminal&) = delete;
    Terminal& operator=(const Terminal&) = delete;

    // The terminal for the child to take, or -1.
    int fd() const { return fd_.get(); }

    // Takes the terminal back if group `pgid` still has it.
    void take_back(pid_t pgid) {
        if (fd_.get() >= 0 && tcgetpgrp(fd_.get()) == pgid) {
            // We are in the background now: tcsetpgrp would raise SIGTTOU.
            sigset_t ttou, old;
            sigemptyset(&ttou);
            sigaddset(&ttou, SIGTTOU);
            pthread_sigmask(SIG_BLOCK, &ttou, &old);
            tcsetpgrp(fd_.get(), getpgrp());
            pthread_sigmask(SIG_SETMASK, &old, nullptr);
        }
        fd_.reset();
    }

private:
    Fd fd_;
};

// A started command, the leader of its own process group. When it exits,
// whatever is left in its group (a background grandchild, say) is killed; if
// we leave early (a timeout, an interrupt, an exception), the whole group is
// killed. The group is killed while the leader is still a zombie, so that its
// id cannot have been reused. The command is reaped exactly once.
class Running {
public:
    Running(pid_t pid, Terminal& terminal)
        : pid_(pid), terminal_(terminal),
          pidfd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) {}
    ~Running() {
        if (!reaped_) {
            try {
                kill_and_reap();
            } catch (const Error&) {
                // Already reaped by someone else: nothing left to kill.
            }
        }
    }
    Running(const Running&) = delete;
    Running& operator=(const Running&) = delete;

    int status() const { return status_; }
    // Readable once the command has exited; -1 when the kernel has no pidfd.
    int pidfd() const { return pidfd_.get(); }

    void kill_and_reap() {
        killpg(pid_, SIGKILL);
        reap();
    }

    // True once the command has exited: then the rest of its group has been
    // killed and it is reaped.
    bool finished() {
        if (reaped_)
            return true;
        if (!exited())
            return false;
        killpg(pid_, SIGKILL);
        reap();
        return true;
    }

    // The one wait on a running command: at most the watch's slice, until
    // the command exits or `fd` (when >= 0) is readable. Without a pidfd the
    // exit cannot be seen, so the slice is a short backoff (1 ms growing to
    // 50 ms) and the caller looks again. Returns 1 when fd is readable, 0
    // otherwise (also on EINTR), -1 with errno on an error.
    int wait_slice(const Watch& watch, int fd) {
        int slice = watch.slice_ms();
        if (pidfd_.get() < 0) {
            slice = slice < 0 ? backoff_ms_ : std::min(slice, backoff_ms_);
            backoff_ms_ = std::min(backoff_ms_ * 2, 50);
        }
        return poll_once(fd, pidfd_.get(), slice);
    }

    // Whether the command finishes by `until`: waits at most that long.
    bool finished_by(Clock::time_point until) {
        while (!finished()) {
            long long ms = ms_until(until);
            if (ms <= 0)
                return false;
            if (pidfd_.get() >= 0)
                poll_once(-1, pidfd_.get(), static_cast<int>(ms));
            else
                usleep(1000);
        }
        return true;
    }

    // Stop::none once the command has finished.
    Stop wait(Watch& watch) {
        for (;;) {
            if (finished())
                return Stop::none;
            if (Stop stop = watch.check(); stop != Stop::none)
                return stop;
            if (wait_slice(watch, -1) < 0)
                throw_io_error("could not wait for child process", errno);
        }
    }

private:
    // Whether the command has exited, leaving it unreaped; never waits.
    bool exited() {
        siginfo_t info;
        std::memset(&info, 0, sizeof info);
        while (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT | WNOHANG) != 0) {
            if (errno != EINTR)
                lost();
        }
        return info.si_pid == pid_;
    }

    void reap() {
        int st;
        while (waitpid(pid_, &st, 0) < 0) {
            if (errno != EINTR)
                lost();
        }
        status_ = st;
        reaped_ = true;
        terminal_.take_back(pid_);
    }

    // Someone else reaped our child (SIGCHLD ignored, or a reaper calling
    // waitpid(-1)): its status is gone.
    void lost() {
        int e = errno;
        reaped_ = true;
        terminal_.take_back(pid_);
        throw Error(ErrorCode::internal, "could not get the exit status of a key command",
                    std::string("waitpid failed: ") + std::strerror(e) + ".");
    }

    pid_t pid_;
    Terminal& terminal_;
    Fd pidfd_;
    bool reaped_ = false;
    int status_ = 0;
    int backoff_ms_ = 1;
};

std::string seconds_text(int n) {
    return std::to_string(n) + (n == 1 ? " second" : " seconds");
}

// The command was stopped early: kill what is left of it and say why.
[[noreturn]] void throw_stopped(Role role, Stop stop, Running& child, int seconds) {
    child.kill_and_reap();
    if (stop == Stop::interrupt)
        throw Error(ErrorCode::interrupted, std::string(role_name(role)) + " was interrupted",
                    "The command was killed because the program running it was asked to stop.");
    throw Error(ErrorCode::command_timeout, std::string(role_name(role)) + " timed out",
                "The command did not finish within " + seconds_text(seconds) + " and was killed.",
                "If the command waits for a person, such as a passphrase prompt, allow more time.");
}

void check_status(Role role, int status) {
    std::string message = std::string(role_name(role)) + " failed";
    if (WIFEXITED(status)) {
        int code = WEXITSTATUS(status);
        if (code == 0)
            return;
        std::string detail = "The command exited with status " + std::to_string(code) + ".";
        std::string hint;
        if (code == 126)
            hint = "The shell found a program named in the command but could not execute it.";
        else if (code == 127)
            hint = "The shell could not find a program named in the command.";
        else if (code > 128 && code < 128 + NSIG)
            hint = "A program in the command was probably terminated by signal " +
                   std::to_string(code - 128) + ": " + strsignal(code - 128) + ".";
        throw Error(ErrorCode::command_failed, message, detail, hint);
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        throw Error(ErrorCode::command_signaled, message,
                    "The command was terminated by signal " + std::to_string(sig) + ": " +
                        strsignal(sig) + ".");
    }
    throw Error(ErrorCode::internal, message,
                "The command ended with unrecognized status " + std::to_string(status) + ".");
}

// Starts `shell -c command` with the given descriptors as its stdin/stdout.
pid_t spawn(Role role, const std::string& command, const RunOptions& options, int stdin_fd,
            int stdout_fd, const Terminal& terminal) {
    const std::string& dir = options.working_directory;
    struct stat st;
    if (!dir.empty() && stat(dir.c_str(), &st) != 0)
        throw spawn_error(role, "Could not use \"" + dir +
                                    "\" as its working directory: " + std::strerror(errno) + ".");

    // A syntax error would make the shell print the command, and any secret
    // in it, on our standard error: look for one with that output discarded.
    check_command_syntax(role, command);

    std::string shell = command_shell();
    std::vector<std::string> args;
    if (shell == "/bin/bash") // a failing stage fails the pipeline
        args = {"-o", "pipefail"};
    args.push_back("-c");
    args.push_back(command);

    pid_t failed_pid = -1;
    ChildSetup setup;
    setup.stdin_fd = stdin_fd;
    setup.stdout_fd = stdout_fd;
    setup.directory = dir.empty() ? nullptr : dir.c_str();
    setup.terminal_fd = terminal.fd();
    setup.failed_pid = &failed_pid;

    std::error_code ec;
    bp::child child(bp::exe = shell, bp::args = args, setup, ec);
    if (ec) {
        // The child may have exited after fork (exec or setup failed).
        if (failed_pid > 0)
            while (waitpid(failed_pid, nullptr, 0) < 0 && errno == EINTR) {
            }
        throw spawn_error(role, "Could not run the shell " + shell + ": " + ec.message() + ".");
    }
    pid_t pid = child.id();
    child.detach(); // reaped by Running
    return pid;
}

// SIGPIPE blocked in this thread only while we write to the child: a reader
// that went away then gives EPIPE instead of killing the process. A SIGPIPE
// our write raised is consumed; one that was pending before is left alone.
class SigpipeBlock {
public:
    SigpipeBlock() {
        sigemptyset(&pipe_set_);
        sigaddset(&pipe_set_, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    ~SigpipeBlock() {
        if (!was_pending_) {
            sigset_t pending;
            sigpending(&pending);
            if (sigismember(&pending, SIGPIPE) == 1) {
                timespec zero{0, 0};
                while (sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
                }
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

private:
    sigset_t pipe_set_;
    sigset_t old_;
    bool was_pending_ = false;
};

enum class WriteResult { done, reader_gone, stopped };

WriteResult write_all(Role role, int fd, const unsigned char* data, std::size_t size, Watch& watch,
                      Stop& stop) {
    SigpipeBlock block;
    std::size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n > 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE)
            return WriteResult::reader_gone;
        if (n < 0 && errno == EAGAIN) {
            if ((stop = watch.check()) != Stop::none)
                return WriteResult::stopped;
            pollfd p{fd, POLLOUT, 0};
            int r = poll(&p, 1, watch.slice_ms());
            if (r < 0 && errno != EINTR)
                throw_io_error(std::string("could not write to ") + role_name(role), errno);
            continue;
        }
        throw_io_error(std::string("could not write to ") + role_name(role), errno);
    }
    return WriteResult::done;
}

} // namespace

namespace {

// How long the shell may take to parse a command.
constexpr int kSyntaxCheckMs = 10000;

// The environment for `shell -n`, without the variables that make a
// non-interactive shell read a file of its own.
std::vector<char*> syntax_check_environment() {
    std::vector<char*> env;
    for (char** e = environ; e != nullptr && *e != nullptr; e++)
        if (std::strncmp(*e, "BASH_ENV=", 9) != 0 && std::strncmp(*e, "ENV=", 4) != 0)
            env.push_back(*e);
    env.push_back(nullptr);
    return env;
}

// Waits for `pid` for at most kSyntaxCheckMs; kills it when that runs out
// (returns -1) or when the caller asks to stop (throws interrupted).
// Returns its wait status.
int wait_bounded(Role role, pid_t pid) {
    InterruptCheck check = interrupt_check.load();
    Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(kSyntaxCheckMs);
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            throw Error(ErrorCode::internal, "could not get the exit status of a key command",
                        std::string("waitpid failed: ") + std::strerror(errno) + ".");
        long long left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        bool stop = stop_requested(check);
        if (left <= 0 || stop) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            if (stop)
                throw Error(ErrorCode::interrupted,
                            std::string(role_name(role)) + " was interrupted",
                            "The program running it was asked to stop while the shell checked "
                            "the command's syntax.");
            return -1;
        }
        if (pidfd.get() >= 0) {
            pollfd p{pidfd.get(), POLLIN, 0};
            poll(&p, 1, static_cast<int>(std::min<long long>(left, kInterruptCheckMs)));
        } else {
            usleep(1000);
        }
    }
}

} // namespace

void check_command_syntax(Role role, const std::string& command) {
    std::string shell = command_shell();
    std::vector<std::string> args = {shell, "-n", "-c", command};
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> env = syntax_check_environment();

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY,
                                         0);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
    // The caller's ignored signals and mask are not the shell's business.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, shell.c_str(), &actions, &attr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        throw spawn_error(role, "Could not run the shell " + shell +
                                    " to check the command: " + std::strerror(rc) + ".");

    int status = wait_bounded(role, pid);
    if (status == -1)
        throw spawn_error(role, "The shell did not finish checking the command's syntax within " +
                                    std::to_string(kSyntaxCheckMs / 1000) + " seconds.");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        throw spawn_error(role, "Could not run the shell " + shell + " to check the command.");
    throw Error(ErrorCode::command_invalid, std::string(role_name(role)) + " has a syntax error",
                "The shell " + shell +
                    " rejected the command. Its text is not shown because it can carry secrets, "
                    "such as a passphrase.",
                "Check the command's quoting and parentheses, for example with \"" + shell +
                    " -n -c\" in a shell of your own.");
}

void set_interrupt_check(InterruptCheck check) noexcept {
    interrupt_check.store(check);
}

void run_wrap(const std::string& expanded_command, const SecureBuffer& key,
              const RunOptions& options) {
    const Role role = Role::wrap;
    StopSignals stop_signals; // before the child: it outlives the kill
    Watch watch(options.timeout_seconds);
    Fd child_stdin, to_child;
    command_pipe(role, child_stdin, to_child);
    Terminal terminal;
    Running child(spawn(role, expanded_command, options, child_stdin.get(), -1, terminal),
                  terminal);
    // Our copy of the read end stays open so that, after the command exits,
    // what it left unread is still there to be counted. A key always fits in
    // the pipe at once, so the write cannot block on a reader that is gone.
    Fd probe;
    if (key.size() <= PIPE_BUF)
        probe = std::move(child_stdin);
    child_stdin.reset();

    Stop stop = Stop::none;
    WriteResult written = write_all(role, to_child.get(), key.data(), key.size(), watch, stop);
    to_child.reset(); // EOF
    if (written != WriteResult::stopped)
        stop = child.wait(watch);
    if (stop != Stop::none)
        throw_stopped(role, stop, child, options.timeout_seconds);
    check_status(role, child.status());

    int unread = 0;
    if (probe.get() >= 0 && ioctl(probe.get(), FIONREAD, &unread) != 0)
        unread = 0;
    if (written == WriteResult::reader_gone || unread > 0)
        throw Error(ErrorCode::command_failed,
                    std::string(role_name(role)) + " did not read the whole key",
                    "The command exited successfully without reading all " +
                        std::to_string(key.size()) + " bytes of the key from its standard input.",
                    "A wrap command must read the plaintext key from standard input until "
                    "end of file.");
}

SecureBuffer run_unwrap(const std::string& expanded_command, std::size_t max_output,
                        const RunOptions& options, const std::string& expected) {
    const Role role = Role::unwrap;
    StopSignals stop_signals; // before the child: it outlives the kill
    Watch watch(options.timeout_seconds);
    Fd child_stdout, from_child;
    command_pipe(role, child_stdout, from_child);
    Terminal terminal;
    Running child(spawn(role, expanded_command, options, -1, child_stdout.get(), terminal),
                  terminal);
    child_stdout.reset(); // so that we see EOF when the command is done

    SecureBuffer output(max_output);
    std::size_t total = 0;
    // Output beyond max_output already decides the outcome: what follows is
    // only counted, for the message, and may be key material too (hence the
    // wipe). Reading stops at EOF, or a short grace period after the command
    // has exited (a background process it left behind may hold the pipe
    // open: it was killed with the rest of the group, but one that left the
    // group is not), or after the same grace once the output is too long,
    // or when kTooLongCountLimit more bytes have come.
    unsigned char discard[4096];
    Stop stop = Stop::none;
    bool eof = false;
    bool too_long = false;
    std::optional<Clock::time_point> drain_until;
    for (;;) {
        if (!drain_until) {
            if (child.finished())
                drain_until = Clock::now() + std::chrono::milliseconds(kPipeGraceMs);
            else if ((stop = watch.check()) != Stop::none)
                break;
        } else if (Clock::now() >= *drain_until) {
            break;
        }
        // Once the command is gone only the pipe is left to wait for.
        int r = drain_until
                    ? poll_once(from_child.get(), -1, static_cast<int>(ms_until(*drain_until)))
                    : child.wait_slice(watch, from_child.get());
        if (r < 0)
            throw_io_error(std::string("could not read from ") + role_name(role), errno);
        if (r == 0)
            continue;
        std::size_t room = output.capacity() - output.size();
        ssize_t n = room > 0 ? read(from_child.get(), output.data() + output.size(), room)
                             : read(from_child.get(), discard, sizeof discard);
        if (n == 0) {
            eof = true;
            break;
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            throw_io_error(std::string("could not read from ") + role_name(role), errno);
        }
        if (room > 0)
            output.resize(output.size() + static_cast<std::size_t>(n));
        else
            OPENSSL_cleanse(discard, static_cast<std::size_t>(n));
        total += static_cast<std::size_t>(n);
        if (!too_long && total > max_output) {
            too_long = true;
            Clock::time_point grace = Clock::now() + std::chrono::milliseconds(kPipeGraceMs);
            if (!drain_until || grace < *drain_until)
                drain_until = grace;
        }
        if (too_long && total > max_output + kTooLongCountLimit)
            break;
    }
    from_child.reset();

    if (too_long) {
        // The command ended on its own and closed its output: the count is
        // exact, and a failure of its own comes first. Otherwise it is killed.
        bool ended = eof && child.finished_by(*drain_until);
        if (ended)
            check_status(role, child.status());
        else
            child.kill_and_reap();
        // A command that was killed wrote more than the limit: how much more
        // it would have written no one knows.
        std::string got = ended ? std::to_string(total) : "more than " + std::to_string(max_output);
        throw Error(
            ErrorCode::output_long,
            std::string("data encryption key from ") + role_name(role) + " is too long",
            "Expected " +
                (expected.empty() ? "at most " + std::to_string(max_output) + " bytes" : expected) +
                ", got " + got + ".",
            "An unwrap command must write exactly the plaintext key to its standard "
            "output, and nothing else.");
    }
    if (stop == Stop::none && !drain_until)
        stop = child.wait(watch);
    if (stop != Stop::none)
        throw_stopped(role, stop, child, options.timeout_seconds);
    check_status(role, child.status());
    return output;
}

} // namespace fe_datakey
