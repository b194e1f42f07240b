// The command runner: expansion, path safety and real shell commands.
#include "fe_datakey/command.hpp"
#include "fe_datakey/error.hpp"

#include "library_helpers.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <set>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace fe_datakey;

namespace {

SecureBuffer buffer_of(const std::string& s) {
    SecureBuffer b(s.size() + 1);
    b.resize(s.size());
    std::memcpy(b.data(), s.data(), s.size());
    return b;
}

void expect_not_in_error(const Error& e, const std::string& secret) {
    for (const std::string* s : {&e.message(), &e.detail(), &e.hint()})
        EXPECT_EQ(s->find(secret), std::string::npos) << *s;
    EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos);
}

// Live (not zombie) processes in process group `pgid`.
int live_processes_in_group(pid_t pgid) {
    int count = 0;
    DIR* proc = opendir("/proc");
    while (dirent* entry = readdir(proc)) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        std::string stat = read_text(std::string("/proc/") + entry->d_name + "/stat");
        std::size_t paren = stat.rfind(')');
        if (paren == std::string::npos)
            continue;
        char state;
        int ppid, pgrp;
        if (std::sscanf(stat.c_str() + paren + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
            pgrp == pgid && state != 'Z' && state != 'X')
            count++;
    }
    closedir(proc);
    return count;
}

// Waits (bounded) for the SIGKILLed processes of a group to die: the signal
// is delivered asynchronously, and orphans are reaped by someone else.
void expect_group_gone(pid_t pgid) {
    ASSERT_GT(pgid, 1);
    for (int i = 0; i < 500 && live_processes_in_group(pgid) > 0; i++)
        usleep(10000);
    EXPECT_EQ(live_processes_in_group(pgid), 0);
}

// Whether process `pid` exists and is not a zombie.
bool process_alive(pid_t pid) {
    std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    std::size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z' &&
           stat[paren + 2] != 'X';
}

void expect_process_gone(pid_t pid) {
    ASSERT_GT(pid, 1);
    for (int i = 0; i < 500 && process_alive(pid); i++)
        usleep(10000);
    EXPECT_FALSE(process_alive(pid)) << pid;
}

bool have_bash() {
    return access("/bin/bash", X_OK) == 0;
}

class Runner : public ::testing::Test {
protected:
    TempDir dir;
    RunOptions opts() const {
        RunOptions o;
        o.working_directory = dir.path();
        return o;
    }
};

} // namespace

TEST(ExpandCommand, ReplacesPercentPAndPercentPercent) {
    EXPECT_EQ(expand_command("cat \"%p\"", "pg_encryption/key.bin"),
              "cat \"pg_encryption/key.bin\"");
    EXPECT_EQ(expand_command("%p %p", "x"), "x x");
    EXPECT_EQ(expand_command("100%%", "x"), "100%");
    EXPECT_EQ(expand_command("%%p", "x"), "%p");
    EXPECT_EQ(expand_command("%%%p", "x"), "%x");
    EXPECT_EQ(expand_command("date +%s %x", "x"), "date +%s %x");
    EXPECT_EQ(expand_command("trailing %", "x"), "trailing %");
    EXPECT_EQ(expand_command("%", "x"), "%");
    EXPECT_EQ(expand_command("", "x"), "");
    // The path is inserted as it is, not expanded again.
    EXPECT_EQ(expand_command("%p", "a%pb%%"), "a%pb%%");
}

TEST(ExpandCommand, ThePlaceholderCheckReadsTheEscapesTheSameWay) {
    // One reading: a command has a %p exactly when expanding it inserts the path.
    for (const char* c : {"cat \"%p\"", "%%p", "%%%p", "100%", "%", "%x", "", "a %p %p"}) {
        SCOPED_TRACE(c);
        EXPECT_EQ(has_placeholder(c), expand_command(c, "\x01").find('\x01') != std::string::npos);
    }
    EXPECT_EQ(split_at_placeholders("a%pb%%c%p"), (std::vector<std::string>{"a", "b%c", ""}));
    EXPECT_EQ(split_at_placeholders("%%p"), (std::vector<std::string>{"%p"}));
}

TEST(CheckPath, RefusesEachClassOfUnsafeCharacterAndNamesIt) {
    const std::pair<const char*, const char*> cases[] = {
        {"it's.bin", "a single quote"},
        {"a\"b", "a double quote"},
        {"key.bin;rm", "a shell operator"},
        {"a&b", "a shell operator"},
        {"a|b", "a shell operator"},
        {"a>b", "a shell operator"},
        {"a(b", "a shell operator"},
        {"/srv/old cluster/key.bin", "a space or tab"},
        {"a\tb", "a space or tab"},
        {"key*.bin", "a wildcard character"},
        {"key?.bin", "a wildcard character"},
        {"key[1].bin", "a wildcard character"},
        {"$HOME/key", "a dollar sign"},
        {"a`b", "a backquote"},
        {"a\\b", "a backslash"},
        {"a\nb", "a newline"},
        {"cl\xc3\xa9/key.bin", "a non-ASCII character"},
        {"a\x01b", "a control character"},
        {"~/key.bin", "a character that the shell treats specially (~)"},
        {"a#b", "a character that the shell treats specially (#)"},
        {"a{b,c}", "a character that the shell treats specially ({)"},
        {"-rf", "a leading dash"},
    };
    for (const auto& [bad, what] : cases) {
        Error e = error_of([&] { check_path_is_shell_safe(bad); });
        EXPECT_EQ(e.code(), ErrorCode::unsafe_path) << bad;
        EXPECT_EQ(e.message(), "path contains a character that is not allowed in a key command");
        EXPECT_NE(e.detail().find(what), std::string::npos) << bad << ": " << e.detail();
        EXPECT_NE(e.hint().find("Copy or link the file"), std::string::npos) << e.hint();
    }
    std::string with_nul("a\0b", 3);
    EXPECT_EQ(error_of([&] { check_path_is_shell_safe(with_nul); }).code(), ErrorCode::unsafe_path);
}

TEST(CheckPath, AcceptsOrdinaryAbsoluteAndRelativePaths) {
    for (const char* good :
         {"/srv/pg15/pg_encryption/key.bin", "pg_encryption/key.bin", "key.bin", "./old/key.bin",
          "../backup-2026-12-03/key.bin", "/var/lib/postgresql/15/main/pg_encryption/key.bin",
          "a+b,c:d@e=f/KEY_1.bin", "x-y"})
        EXPECT_NO_THROW(check_path_is_shell_safe(good)) << good;
}

TEST(Command, NamesAndShell) {
    EXPECT_STREQ(role_name(Role::wrap), "key wrap command");
    EXPECT_STREQ(role_name(Role::unwrap), "key unwrap command");
    EXPECT_TRUE(is_plaintext_mode("-"));
    EXPECT_FALSE(is_plaintext_mode("- "));
    EXPECT_FALSE(is_plaintext_mode(""));
    EXPECT_EQ(command_shell(), have_bash() ? "/bin/bash" : "/bin/sh");
}

TEST_F(Runner, WrapWritesTheKeyThroughStdinInTheWorkingDirectory) {
    static const char raw[] = "binary\0key\xff\n bytes";
    std::string key(raw, sizeof raw - 1);
    run_wrap(expand_command("cat > \"%p\"", "out.bin"), buffer_of(key), opts());
    EXPECT_EQ(read_text(dir / "out.bin"), key);
}

TEST_F(Runner, UnwrapCapturesRawBytesWithNul) {
    static const char raw[] = "\0\0abc\0\xff\xfe\n";
    std::string key(raw, sizeof raw - 1);
    write_text(dir / "in.bin", key);
    SecureBuffer out = run_unwrap("cat in.bin", 100, opts());
    EXPECT_EQ(text_of(out), key);
    EXPECT_EQ(out.capacity(), 100u);
}

TEST_F(Runner, UnwrapOfNothingIsEmpty) {
    EXPECT_EQ(run_unwrap("true", 100, opts()).size(), 0u);
}

TEST_F(Runner, UnwrapOutputALittleTooLongIsCountedExactly) {
    // The command ends within the grace period: the count is exact.
    Error e = error_of([&] { run_unwrap("head -c 98 /dev/zero", 97, opts(), "97 bytes"); });
    EXPECT_EQ(e.code(), ErrorCode::output_long);
    EXPECT_EQ(e.message(), "data encryption key from key unwrap command is too long");
    EXPECT_EQ(e.detail(), "Expected 97 bytes, got 98.");
}

TEST_F(Runner, UnwrapStopsReadingOnceTheOutputIsTooLong) {
    // Larger than a pipe buffer, then more than we count: reading stops
    // after the limit, whether or not the command would ever end.
    Error e = error_of([&] { run_unwrap("head -c 300000 /dev/zero", 97, opts()); });
    EXPECT_EQ(e.code(), ErrorCode::output_long);
    EXPECT_EQ(e.detail(), "Expected at most 97 bytes, got more than 97.");
}

TEST_F(Runner, EndlessUnwrapOutputIsStoppedAtOnceAndItsGroupKilled) {
    // No timeout: before, only the end of the output could end this run.
    auto start = std::chrono::steady_clock::now();
    Error e = error_of([&] { run_unwrap("echo $$ > pgid; yes", 64, opts(), "64 bytes"); });
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(e.code(), ErrorCode::output_long);
    EXPECT_EQ(e.detail(), "Expected 64 bytes, got more than 64.");
    EXPECT_LT(took, std::chrono::seconds(3));
    expect_group_gone(std::stoi(read_text(dir / "pgid")));
}

TEST_F(Runner, TooLongOutputFromACommandThatThenWaitsIsStoppedToo) {
    // One byte too many, then silence: the byte decides, not the timeout.
    RunOptions o = opts();
    o.timeout_seconds = 60;
    auto start = std::chrono::steady_clock::now();
    Error e =
        error_of([&] { run_unwrap("echo $$ > pgid; head -c 65 /dev/zero; sleep 600", 64, o); });
    EXPECT_EQ(e.code(), ErrorCode::output_long);
    EXPECT_EQ(e.detail(), "Expected at most 64 bytes, got more than 64.");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
    expect_group_gone(std::stoi(read_text(dir / "pgid")));
}

TEST_F(Runner, AKeyFollowedBySilenceEndsOnlyAtTheTimeout) {
    // The right length, but the command has not ended: it could still write
    // more, so only the timeout ends it.
    RunOptions o = opts();
    o.timeout_seconds = 1;
    Error e =
        error_of([&] { run_unwrap("echo $$ > pgid; head -c 64 /dev/zero; sleep 600", 64, o); });
    EXPECT_EQ(e.code(), ErrorCode::command_timeout);
    expect_group_gone(std::stoi(read_text(dir / "pgid")));
}

TEST_F(Runner, NonZeroExitFails) {
    Error w = error_of([&] { run_wrap("cat >/dev/null; exit 3", buffer_of("k"), opts()); });
    EXPECT_EQ(w.code(), ErrorCode::command_failed);
    EXPECT_EQ(w.message(), "key wrap command failed");
    EXPECT_EQ(w.detail(), "The command exited with status 3.");

    Error u = error_of([&] { run_unwrap("echo partial; exit 4", 100, opts()); });
    EXPECT_EQ(u.code(), ErrorCode::command_failed);
    EXPECT_EQ(u.message(), "key unwrap command failed");
    EXPECT_EQ(u.detail(), "The command exited with status 4.");
}

TEST_F(Runner, CommandNotFoundHasAHint) {
    Error e = error_of([&] { run_unwrap("no-such-program-fe-datakey", 100, opts()); });
    EXPECT_EQ(e.code(), ErrorCode::command_failed);
    EXPECT_EQ(e.detail(), "The command exited with status 127.");
    EXPECT_FALSE(e.hint().empty());
}

TEST_F(Runner, FailingFirstStageOfAPipelineFailsTheWrap) {
    Error e = error_of([&] {
        run_wrap(expand_command("false | cat > \"%p\"", "out.bin"), buffer_of("k"), opts());
    });
    EXPECT_EQ(e.code(), ErrorCode::command_failed);
    if (have_bash()) {
        // pipefail: the pipeline's status is the failing stage's.
        EXPECT_EQ(e.detail(), "The command exited with status 1.");
    } else {
        // /bin/sh has no pipefail (tests/root/unit_without_bash.sh runs this
        // with /bin/bash hidden): the pipeline succeeds, and only the key
        // that nothing read gives the failure away.
        EXPECT_EQ(e.message(), "key wrap command did not read the whole key");
    }
}

TEST_F(Runner, DeathBySignalIsReported) {
    Error w = error_of([&] { run_wrap("cat >/dev/null; kill -9 $$", buffer_of("k"), opts()); });
    EXPECT_EQ(w.code(), ErrorCode::command_signaled);
    EXPECT_NE(w.detail().find("signal 9"), std::string::npos) << w.detail();
    EXPECT_NE(w.detail().find(strsignal(SIGKILL)), std::string::npos) << w.detail();

    Error u = error_of([&] { run_unwrap("kill -TERM $$", 100, opts()); });
    EXPECT_EQ(u.code(), ErrorCode::command_signaled);
    EXPECT_NE(u.detail().find("signal 15"), std::string::npos) << u.detail();
}

TEST_F(Runner, UnwrapTimeoutKillsEveryStageOfAPipeline) {
    RunOptions o = opts();
    o.timeout_seconds = 1;
    // The shell records its process group, then waits for a pipeline whose
    // stages hold stdout open: all of them must be gone after the timeout.
    Error e = error_of([&] {
        run_unwrap("echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600 | sleep 600; true", 100, o);
    });
    EXPECT_EQ(e.code(), ErrorCode::command_timeout);
    EXPECT_EQ(e.message(), "key unwrap command timed out");
    // The command ran (it wrote its group) before it was stopped.
    expect_group_gone(std::stoi(read_text(dir / "pgid")));
}

TEST_F(Runner, WrapTimeoutKillsTheCommand) {
    RunOptions o = opts();
    o.timeout_seconds = 1;
    Error e = error_of([&] {
        run_wrap("cat > /dev/null; echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600 | sleep 600",
                 buffer_of("k"), o);
    });
    EXPECT_EQ(e.code(), ErrorCode::command_timeout);
    EXPECT_EQ(e.message(), "key wrap command timed out");
    expect_group_gone(std::stoi(read_text(dir / "pgid")));
}

TEST_F(Runner, TimeoutIsNotHitByAFastCommand) {
    RunOptions o = opts();
    o.timeout_seconds = 600;
    EXPECT_EQ(text_of(run_unwrap("printf abc", 10, o)), "abc");
    run_wrap("cat > out", buffer_of("xyz"), o);
    EXPECT_EQ(read_text(dir / "out"), "xyz");
}

TEST_F(Runner, WrapThatDoesNotReadTheKeyFails) {
    for (const char* command : {"true", "sleep 0.2", "exec 0<&-; sleep 0.1; echo x > out"}) {
        Error e = error_of([&] { run_wrap(command, buffer_of(std::string(64, 'k')), opts()); });
        EXPECT_EQ(e.code(), ErrorCode::command_failed) << command;
        EXPECT_EQ(e.message(), "key wrap command did not read the whole key") << command;
        EXPECT_NE(e.detail().find("64 bytes"), std::string::npos) << e.detail();
    }
}

TEST_F(Runner, WrapReaderGoneGivesEpipeNotSigpipe) {
    // Larger than a pipe buffer, so the write must still be going when the
    // command closes its stdin: EPIPE. Without SIGPIPE blocked around the
    // write this test process would be killed.
    SecureBuffer big(300000);
    big.resize(300000);
    Error e = error_of([&] { run_wrap("exec 0<&-; sleep 0.2", big, opts()); });
    EXPECT_EQ(e.code(), ErrorCode::command_failed);
    EXPECT_EQ(e.message(), "key wrap command did not read the whole key");
    sigset_t pending;
    sigpending(&pending);
    EXPECT_FALSE(sigismember(&pending, SIGPIPE));
}

TEST_F(Runner, ChildDoesNotInheritDescriptors) {
    write_text(dir / "leak-canary", "x");
    int leaked = open((dir / "leak-canary").c_str(), O_RDONLY); // deliberately not O_CLOEXEC
    ASSERT_GE(leaked, 3);
    auto check_listing = [&](const std::string& listing) {
        // `ls -l /proc/self/fd`: fds 0-2 are ours to give; anything else may
        // only be the directory ls itself is reading.
        std::set<int> others;
        std::size_t pos = 0;
        while ((pos = listing.find(" -> ", pos)) != std::string::npos) {
            std::size_t start = listing.rfind(' ', pos - 1) + 1;
            int fd = std::stoi(listing.substr(start, pos - start));
            std::size_t end = listing.find('\n', pos);
            std::string target = listing.substr(pos + 4, end - pos - 4);
            if (fd > 2) {
                EXPECT_NE(target.find("/proc/"), std::string::npos) << fd << " -> " << target;
            }
            pos = end;
        }
        EXPECT_EQ(listing.find("leak-canary"), std::string::npos) << listing;
        EXPECT_NE(listing.find(" 0 -> "), std::string::npos) << listing;
    };
    SecureBuffer out = run_unwrap("ls -l /proc/self/fd/", 100000, opts());
    check_listing(text_of(out));
    run_wrap("ls -l /proc/self/fd/ > listing; cat > /dev/null", buffer_of("k"), opts());
    check_listing(read_text(dir / "listing"));
    close(leaked);
}

TEST_F(Runner, ChildGetsDefaultSignalsAndAnEmptyMask) {
    // As in the postmaster while it loads the key: signals blocked, and
    // SIGPIPE, SIGALRM, SIGURG, SIGTTIN, SIGTTOU, SIGXFSZ (and SIGHUP, SIGINT,
    // as a shell running in the background leaves them) ignored.
    const int ignored[] = {SIGPIPE, SIGALRM, SIGURG, SIGTTIN, SIGTTOU, SIGXFSZ, SIGHUP, SIGINT};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    struct sigaction ignore {
    }, saved[std::size(ignored)];
    ignore.sa_handler = SIG_IGN;
    for (std::size_t i = 0; i < std::size(ignored); i++)
        sigaction(ignored[i], &ignore, &saved[i]);
    SecureBuffer out(0), wrap_out(0);
    Error e = error_of(
        [&] { out = run_unwrap("grep -E '^Sig(Blk|Ign)' /proc/self/status", 1000, opts()); });
    Error w = error_of([&] {
        run_wrap("cat > /dev/null; grep -E '^Sig(Blk|Ign)' /proc/self/status > status",
                 buffer_of("k"), opts());
    });
    for (std::size_t i = 0; i < std::size(ignored); i++)
        sigaction(ignored[i], &saved[i], nullptr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ASSERT_EQ(e.code(), ErrorCode::ok) << e.message();
    ASSERT_EQ(w.code(), ErrorCode::ok) << w.message();
    // grep is exec'd by the shell, which passes on what it was given.
    for (const std::string& status : {text_of(out), read_text(dir / "status")}) {
        EXPECT_NE(status.find("SigBlk:\t0000000000000000\n"), std::string::npos) << status;
        EXPECT_NE(status.find("SigIgn:\t0000000000000000\n"), std::string::npos) << status;
    }
}

TEST_F(Runner, MessagesNeverContainTheCommand) {
    const std::string secret = "xyzzy-passphrase-123";
    std::string failing = "echo " + secret + " > /dev/null; cat > /dev/null; exit 2";
    expect_not_in_error(error_of([&] { run_wrap(failing, buffer_of("k"), opts()); }), secret);
    expect_not_in_error(error_of([&] { run_unwrap("echo " + secret + "; exit 2", 100, opts()); }),
                        secret);
    expect_not_in_error(error_of([&] { run_unwrap(": " + secret + "; kill -9 $$", 100, opts()); }),
                        secret);
    expect_not_in_error(error_of([&] { run_wrap(": " + secret, buffer_of("k"), opts()); }), secret);
    RunOptions o = opts();
    o.timeout_seconds = 1;
    expect_not_in_error(error_of([&] { run_unwrap("sleep 5; : " + secret, 100, o); }), secret);
    o.working_directory = dir / "missing";
    Error spawn = error_of([&] { run_unwrap(": " + secret, 100, o); });
    EXPECT_EQ(spawn.code(), ErrorCode::spawn_failed);
    expect_not_in_error(spawn, secret);
}

namespace {

// What is written to our file descriptor 2 while `f` runs.
std::string stderr_of(const std::function<void()>& f) {
    TempDir tmp;
    std::string path = tmp / "stderr";
    int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(file, 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(file, STDERR_FILENO);
    ::close(file);
    try {
        f();
    } catch (...) {
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        ::close(saved);
        throw;
    }
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    ::close(saved);
    return read_text(path);
}

} // namespace

TEST_F(Runner, SyntaxErrorIsReportedWithoutTheCommandText) {
    const std::string secret = "SeCrEt-123";
    const std::string command = "openssl enc -pass pass:" + secret + " ( -d";
    Error u(ErrorCode::ok, "");
    std::string unwrap_stderr = stderr_of(
        [&] { u = error_of([&] { run_unwrap(command + " -in key.bin", 100, opts()); }); });
    EXPECT_EQ(u.code(), ErrorCode::command_invalid);
    EXPECT_EQ(u.message(), "key unwrap command has a syntax error");
    EXPECT_NE(u.detail().find("not shown because it can carry secrets"), std::string::npos)
        << u.detail();
    EXPECT_FALSE(u.hint().empty());
    expect_not_in_error(u, secret);
    EXPECT_EQ(unwrap_stderr.find(secret), std::string::npos) << unwrap_stderr;

    Error w(ErrorCode::ok, "");
    std::string wrap_stderr = stderr_of([&] {
        w = error_of([&] { run_wrap(command + " -out out.bin", buffer_of("k"), opts()); });
    });
    EXPECT_EQ(w.code(), ErrorCode::command_invalid);
    EXPECT_EQ(w.message(), "key wrap command has a syntax error");
    expect_not_in_error(w, secret);
    EXPECT_EQ(wrap_stderr.find(secret), std::string::npos) << wrap_stderr;
    EXPECT_EQ(wrap_stderr, "");
}

TEST_F(Runner, SyntaxCheckExecutesNothing) {
    // The shell runs a line before it parses the next: without the check,
    // the first line would run before the error on the second.
    std::string marker = dir / "MARKER";
    for (const std::string& command :
         {"touch " + marker + "\n(", "touch " + marker + "; (", "touch " + marker + " && done"}) {
        Error e = error_of([&] { run_unwrap(command, 100, opts()); });
        EXPECT_EQ(e.code(), ErrorCode::command_invalid) << command;
        EXPECT_NE(access(marker.c_str(), F_OK), 0) << command;
        Error c = error_of([&] { check_command_syntax(Role::wrap, command); });
        EXPECT_EQ(c.code(), ErrorCode::command_invalid) << command;
        EXPECT_NE(access(marker.c_str(), F_OK), 0) << command;
    }
    // A valid command is only parsed by the check, not run.
    EXPECT_NO_THROW(check_command_syntax(Role::unwrap, "touch " + marker));
    EXPECT_NE(access(marker.c_str(), F_OK), 0);
}

TEST_F(Runner, ValidCommandsWithParenthesesAndQuotesStillRun) {
    write_text(dir / "in.bin", "key");
    EXPECT_EQ(text_of(run_unwrap("(cat 'in.bin') | cat", 100, opts())), "key");
    run_wrap("{ cat; } > \"out.bin\"", buffer_of("k2"), opts());
    EXPECT_EQ(read_text(dir / "out.bin"), "k2");
}

TEST_F(Runner, MissingWorkingDirectoryIsASpawnFailure) {
    RunOptions o = opts();
    o.working_directory = dir / "no-such-dir";
    Error e = error_of([&] { run_wrap("cat > out", buffer_of("k"), o); });
    EXPECT_EQ(e.code(), ErrorCode::spawn_failed);
    EXPECT_EQ(e.message(), "could not start key wrap command");
}

TEST_F(Runner, ChildCreatesPrivateFiles) {
    // A wrap command's output file must never be readable by others, even
    // for a moment and whatever our own umask is.
    mode_t old = umask(0);
    SecureBuffer out = run_unwrap("umask", 100, opts());
    umask(old);
    EXPECT_EQ(text_of(out), "0077\n");
}

namespace {

// The interrupt check of the tests below: counts its calls and asks to stop
// once the file `stop_when_exists` is there (the command writes it once it
// runs), never when it is empty.
std::atomic<int> interrupt_calls{0};
std::string stop_when_exists;

int test_interrupt_check() {
    interrupt_calls++;
    return !stop_when_exists.empty() && access(stop_when_exists.c_str(), F_OK) == 0 ? 1 : 0;
}

class Interrupted : public Runner {
protected:
    void SetUp() override {
        interrupt_calls = 0;
        stop_when_exists = dir / "pgid";
        set_interrupt_check(test_interrupt_check);
    }
    void TearDown() override { set_interrupt_check(nullptr); }
    void expect_group_gone() { ::expect_group_gone(std::stoi(read_text(dir / "pgid"))); }
};

} // namespace

TEST_F(Interrupted, UnwrapIsKilledWithItsWholeProcessGroup) {
    // No timeout: only the interrupt check can end this.
    Error e = error_of([&] {
        run_unwrap("echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600 | sleep 600", 100, opts());
    });
    EXPECT_EQ(e.code(), ErrorCode::interrupted);
    EXPECT_EQ(e.message(), "key unwrap command was interrupted");
    EXPECT_GT(interrupt_calls.load(), 0);
    expect_group_gone();
}

TEST_F(Interrupted, WrapIsKilledWhileItRuns) {
    Error e = error_of([&] {
        run_wrap("cat > /dev/null; echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600 | sleep 600",
                 buffer_of("k"), opts());
    });
    EXPECT_EQ(e.code(), ErrorCode::interrupted);
    EXPECT_EQ(e.message(), "key wrap command was interrupted");
    expect_group_gone();
}

TEST_F(Interrupted, WrapIsKilledWhileWeWriteTheKey) {
    // A key larger than the pipe that the command never reads: the write
    // itself waits, and must still see the interrupt.
    SecureBuffer big(300000);
    big.resize(300000);
    Error e =
        error_of([&] { run_wrap("echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600", big, opts()); });
    EXPECT_EQ(e.code(), ErrorCode::interrupted);
    expect_group_gone();
}

TEST_F(Interrupted, ACheckThatSaysGoOnChangesNothing) {
    stop_when_exists.clear();
    EXPECT_EQ(text_of(run_unwrap("sleep 0.3; printf abc", 10, opts())), "abc");
    run_wrap("sleep 0.3; cat > out", buffer_of("xyz"), opts());
    EXPECT_EQ(read_text(dir / "out"), "xyz");
    // Asked while the commands ran, not only before or after.
    EXPECT_GE(interrupt_calls.load(), 2);
}

namespace {

// A safety net for the tests below, which would otherwise hang for good
// when the read waits for EOF rather than for the command: stops the command
// after about 30 s.
std::atomic<int> safety_calls{0};
int give_up_after_30s() {
    return ++safety_calls > 30000 / kInterruptCheckMs ? 1 : 0;
}

class Leftovers : public Runner {
protected:
    void SetUp() override {
        safety_calls = 0;
        set_interrupt_check(give_up_after_30s);
    }
    void TearDown() override { set_interrupt_check(nullptr); }
};

} // namespace

TEST_F(Leftovers, UnwrapEndsWhenTheCommandExitsThoughAGrandchildHoldsItsStdout) {
    SecureBuffer out(0);
    Error e = error_of(
        [&] { out = run_unwrap("printf abc; (sleep 600 & echo $! > grandchild)", 10, opts()); });
    ASSERT_EQ(e.code(), ErrorCode::ok) << e.message();
    EXPECT_EQ(text_of(out), "abc");
    // Left in the command's process group: killed when the command exited.
    expect_process_gone(std::stoi(read_text(dir / "grandchild")));
}

TEST_F(Leftovers, UnwrapReadEndsAfterAGraceWhenAProcessOutsideTheGroupHoldsStdout) {
    // setsid takes the grandchild out of the group, so it is not killed:
    // only the grace period after the command's exit ends the read. The
    // command waits (bounded) until the grandchild is out of its group.
    SecureBuffer out(0);
    Error e = error_of([&] {
        out = run_unwrap("printf abc; (setsid sh -c 'echo $$ > e.tmp; mv e.tmp escaped; exec "
                         "sleep 600' &); for i in $(seq 1000); do [ -e escaped ] && break; "
                         "sleep 0.01; done; exit 3",
                         10, opts());
    });
    pid_t escaped = std::stoi(read_text(dir / "escaped"));
    // Still there and holding the pipe: the read did not wait for it.
    EXPECT_TRUE(process_alive(escaped));
    kill(escaped, SIGKILL);
    EXPECT_EQ(e.code(), ErrorCode::command_failed) << e.message();
    EXPECT_EQ(e.detail(), "The command exited with status 3.");
    EXPECT_LT(safety_calls.load(), 30000 / kInterruptCheckMs);
}

TEST_F(Runner, LeftoversAreKilledWhenTheCommandExitsAlsoWithoutATimeout) {
    // No timeout, no interrupt check: the background job holds nothing of
    // ours open, so only the kill at the command's exit can end it.
    EXPECT_EQ(
        text_of(run_unwrap("sleep 600 > /dev/null 2>&1 & echo $! > left; printf k", 10, opts())),
        "k");
    expect_process_gone(std::stoi(read_text(dir / "left")));
    run_wrap("cat > /dev/null; sleep 600 > /dev/null 2>&1 & echo $! > left", buffer_of("k"),
             opts());
    expect_process_gone(std::stoi(read_text(dir / "left")));
}

TEST(Terminal, ACommandCanPromptOnOurTerminalAndWeGetItBack) {
    // A child of ours in a session of its own on a pseudo-terminal, in its
    // foreground like initdb at a shell prompt. The command runs with a
    // timeout (so in a group of its own) and reads a line from /dev/tty:
    // without the terminal handed to its group it would be stopped by
    // SIGTTIN. Afterwards the terminal is ours again.
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        int rc = 1;
        try {
            RunOptions o;
            o.timeout_seconds = 60;
            SecureBuffer line =
                run_unwrap("read -r line < /dev/tty && printf %s \"$line\"", 100, o);
            if (text_of(line) != "typed-secret")
                rc = 2;
            else if (tcgetpgrp(STDIN_FILENO) != getpgrp())
                rc = 3;
            else
                rc = 0;
        } catch (...) {
            rc = 4;
        }
        _exit(rc);
    }
    const char typed[] = "typed-secret\n";
    ASSERT_EQ(write(master, typed, sizeof typed - 1), static_cast<ssize_t>(sizeof typed - 1));
    // Keep the master side drained (the line is echoed) until the child ends.
    int status = 0;
    for (int i = 0; i < 3000; i++) {
        char buf[256];
        pollfd p{master, POLLIN, 0};
        if (poll(&p, 1, 20) > 0 && read(master, buf, sizeof buf) <= 0)
            p.revents = 0;
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        if (i == 2999) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
    }
    close(master);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

namespace {

// Runs `body` in a forked child, whose SIGTERM disposition is `handler`
// (SIG_DFL, or a function); a thread of the child sends it SIGTERM once the
// command has written `pgid`. Returns the child's wait status.
volatile sig_atomic_t handled = 0;
extern "C" void note_signal(int) {
    handled = 1;
}

int run_in_child_with_sigterm(const std::string& dir, void (*handler)(int),
                              const std::function<int()>& body) {
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction act;
        std::memset(&act, 0, sizeof act);
        act.sa_handler = handler;
        sigemptyset(&act.sa_mask);
        sigaction(SIGTERM, &act, nullptr);
        std::string pgid = dir + "/pgid";
        pthread_t killer;
        pthread_create(
            &killer, nullptr,
            [](void* arg) -> void* {
                const std::string& file = *static_cast<std::string*>(arg);
                for (int i = 0; i < 1000 && access(file.c_str(), F_OK) != 0; i++)
                    usleep(10000);
                kill(getpid(), SIGTERM);
                return nullptr;
            },
            &pgid);
        _exit(body());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

} // namespace

TEST_F(Runner, WithoutAnInterruptCheckSigtermKillsTheCommandThenTheProgram) {
    // As in pg_rewind: SIGTERM's default action. The command's group is
    // killed first, then the signal ends the program as it would have.
    std::string d = dir.path();
    int status = run_in_child_with_sigterm(d, SIG_DFL, [&] {
        RunOptions o;
        o.working_directory = d;
        try {
            run_unwrap("echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600 | sleep 600", 64, o);
        } catch (const Error&) {
            return 2;
        }
        return 3;
    });
    ASSERT_TRUE(WIFSIGNALED(status)) << status;
    EXPECT_EQ(WTERMSIG(status), SIGTERM);
    expect_group_gone(std::stoi(read_text(dir / "pgid")));
}

TEST_F(Runner, WithoutAnInterruptCheckAHandledSigtermEndsTheRunAsInterrupted) {
    // As in initdb, whose own handler notes the signal and cleans up later:
    // the handler runs, and the run throws interrupted.
    std::string d = dir.path();
    int status = run_in_child_with_sigterm(d, note_signal, [&] {
        RunOptions o;
        o.working_directory = d;
        try {
            run_wrap("cat > /dev/null; echo $$ > pgid.tmp; mv pgid.tmp pgid; sleep 600",
                     buffer_of("k"), o);
        } catch (const Error& e) {
            return e.code() == ErrorCode::interrupted && handled ? 0 : 4;
        }
        return 5;
    });
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
    expect_group_gone(std::stoi(read_text(dir / "pgid")));
}

TEST_F(Runner, AnIgnoredSignalStaysIgnoredWhileACommandRuns) {
    // nohup: SIGHUP ignored by the caller is not ours to catch.
    struct sigaction ign, old;
    std::memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGHUP, &ign, &old);
    EXPECT_EQ(text_of(run_unwrap("kill -HUP $PPID 2>/dev/null; sleep 0.2; printf k", 10, opts())),
              "k");
    sigaction(SIGHUP, &old, nullptr);
}
