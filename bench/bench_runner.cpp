// Overhead of the command runner: run_wrap / run_unwrap against a bare
// posix_spawn of the same shell doing the same work over the same pipes.
// The ratio runner/bare is what the runner's safety costs per command.
#include "fe_datakey/command.hpp"
#include "fe_datakey/key.hpp"

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using namespace fe_datakey;

// A scratch directory holding the key file the commands read and write.
struct Scratch {
    std::string dir;
    Scratch() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/fe_bench.XXXXXX";
        if (mkdtemp(tmpl.data()) == nullptr)
            std::abort();
        dir = tmpl;
    }
    ~Scratch() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
};

Scratch& scratch() {
    static Scratch s;
    return s;
}

const Key& bench_key() {
    static Key key = Key::generate(128);
    return key;
}

// The key file the unwrap commands read, written once.
void ensure_key_file() {
    static bool done = false;
    if (done)
        return;
    RunOptions o;
    o.working_directory = scratch().dir;
    run_wrap("cat > key.bin", bench_key().bytes(), o);
    done = true;
}

std::vector<std::string> shell_argv(const std::string& command) {
    std::string shell = command_shell();
    std::vector<std::string> argv{shell};
    if (shell == "/bin/bash")
        argv.insert(argv.end(), {"-o", "pipefail"});
    argv.insert(argv.end(), {"-c", command});
    return argv;
}

// posix_spawn with `child_fd` of the pipe on the child's stdin (0) or stdout (1).
pid_t bare_spawn(const std::string& command, int pipe_fd, int target_fd) {
    std::vector<std::string> args = shell_argv(command);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fd, target_fd);
    posix_spawn_file_actions_addchdir_np(&actions, scratch().dir.c_str());
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        std::abort();
    return pid;
}

void reap(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        std::abort();
}

void BM_RunnerWrap(benchmark::State& state) {
    RunOptions o;
    o.working_directory = scratch().dir;
    o.timeout_seconds = static_cast<int>(state.range(0));
    std::string command = expand_command("cat > \"%p\"", "wrapped.bin");
    for (auto _ : state)
        run_wrap(command, bench_key().bytes(), o);
}

void BM_BareSpawnWrap(benchmark::State& state) {
    const SecureBuffer& key = bench_key().bytes();
    std::string command = expand_command("cat > \"%p\"", "wrapped.bin");
    for (auto _ : state) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0)
            std::abort();
        pid_t pid = bare_spawn(command, p[0], 0);
        close(p[0]);
        if (write(p[1], key.data(), key.size()) != static_cast<ssize_t>(key.size()))
            std::abort();
        close(p[1]);
        reap(pid);
    }
}

void BM_RunnerUnwrap(benchmark::State& state) {
    ensure_key_file();
    RunOptions o;
    o.working_directory = scratch().dir;
    o.timeout_seconds = static_cast<int>(state.range(0));
    std::string command = expand_command("cat \"%p\"", "key.bin");
    for (auto _ : state) {
        SecureBuffer out = run_unwrap(command, 4096, o);
        benchmark::DoNotOptimize(out.data());
    }
}

void BM_BareSpawnUnwrap(benchmark::State& state) {
    ensure_key_file();
    std::string command = expand_command("cat \"%p\"", "key.bin");
    unsigned char buf[4096];
    for (auto _ : state) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0)
            std::abort();
        pid_t pid = bare_spawn(command, p[1], 1);
        close(p[1]);
        std::size_t got = 0;
        ssize_t n;
        while ((n = read(p[0], buf + got, sizeof buf - got)) > 0)
            got += static_cast<std::size_t>(n);
        close(p[0]);
        reap(pid);
        benchmark::DoNotOptimize(got);
    }
}

} // namespace

// Argument: timeout in seconds (0: none; with one, the process-group and
// pidfd path is measured).
BENCHMARK(BM_RunnerWrap)->Arg(0)->Arg(30)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BareSpawnWrap)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RunnerUnwrap)->Arg(0)->Arg(30)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BareSpawnUnwrap)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
