#include "config_file.hpp"

#include "exit_status.hpp"

#include "fe_datakey/store.hpp"

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace pg_datakey {

namespace {

std::string absolute(const std::string& path, const std::string& datadir) {
    return !path.empty() && path.front() == '/' ? path : datadir + "/" + path;
}

// The postgres binary to ask: the one that last ran the cluster (the first
// word of postmaster.opts, an absolute path: pg_ctl runs the postgres beside
// it), so that the answer is that version's even when several are
// installed; else the one installed beside pg_datakey.
std::optional<std::string> postgres_binary(const std::vector<std::string>& opts) {
    if (!opts.empty() && !opts.front().empty() && opts.front().front() == '/' &&
        ::access(opts.front().c_str(), X_OK) == 0)
        return opts.front();
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return std::nullopt;
    std::string path(self, static_cast<std::size_t>(n));
    path = path.substr(0, path.rfind('/') + 1) + "postgres";
    if (::access(path.c_str(), X_OK) != 0)
        return std::nullopt;
    return path;
}

// Runs `postgres ARGS -C config_file` and returns its one line of output, or
// nullopt if it fails. Bounded: killed after 10 seconds.
std::optional<std::string> ask_postgres(const std::string& binary,
                                        const std::vector<std::string>& args) {
    std::vector<std::string> words = {binary};
    words.insert(words.end(), args.begin(), args.end());
    words.push_back("-C");
    words.push_back("config_file");
    std::vector<char*> argv;
    for (auto& w : words)
        argv.push_back(w.data());
    argv.push_back(nullptr);

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        return std::nullopt;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (rc != 0) {
        ::close(out[0]);
        return std::nullopt;
    }
    std::string text;
    char buf[1024];
    for (int waited_ms = 0; waited_ms < 10000;) {
        struct pollfd p = {out[0], POLLIN, 0};
        int r = ::poll(&p, 1, 100);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            waited_ms += 100;
            continue;
        }
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    ::kill(pid, SIGKILL); // no effect once it has exited; ends a hung one
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return std::nullopt;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    if (text.empty() || text.find('\n') != std::string::npos)
        return std::nullopt;
    return text;
}

} // namespace

std::optional<pid_t> live_postmaster(const std::string& datadir) {
    std::ifstream in(datadir + "/postmaster.pid");
    long pid = 0;
    if (!(in >> pid) || pid <= 0)
        return std::nullopt;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)
        return static_cast<pid_t>(pid);
    return std::nullopt;
}

std::vector<std::string> postmaster_opts(const std::string& datadir) {
    // The server writes the program path, then each argument as " \"arg\"".
    std::ifstream in(datadir + "/postmaster.opts", std::ios::binary);
    std::vector<std::string> words;
    if (!in)
        return words;
    std::ostringstream buf;
    buf << in.rdbuf();
    std::string text = buf.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    std::size_t first = text.find(" \"");
    words.push_back(text.substr(0, first));
    while (first != std::string::npos) {
        std::size_t start = first + 2;
        std::size_t next = text.find("\" \"", start);
        std::size_t end = next == std::string::npos ? text.size() - 1 : next;
        if (end < start || (next == std::string::npos && text.back() != '"'))
            break;
        words.push_back(text.substr(start, end - start));
        first = next == std::string::npos ? next : next + 1;
    }
    return words;
}

std::optional<std::string> config_file_in_options(const std::vector<std::string>& args,
                                                  const std::string& datadir) {
    std::optional<std::string> found;
    auto setting = [&](const std::string& text) {
        for (const char* name : {"config_file=", "config-file="})
            if (text.rfind(name, 0) == 0)
                found = absolute(text.substr(std::strlen(name)), datadir);
    };
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-c" && i + 1 < args.size())
            setting(args[++i]);
        else if (a.rfind("-c", 0) == 0 && a.size() > 2 && a[1] == 'c')
            setting(a.substr(2));
        else if (a.rfind("--", 0) == 0)
            setting(a.substr(2));
    }
    return found; // the last one wins, as in the server
}

ConfigLocation locate_config_file(const std::string& datadir,
                                  const std::optional<std::string>& option) {
    if (option && !option->empty())
        return {absolute(*option, datadir), "--config-file"};
    std::vector<std::string> opts = postmaster_opts(datadir);
    std::vector<std::string> args(opts.empty() ? opts.begin() : opts.begin() + 1, opts.end());
    if (live_postmaster(datadir)) {
        if (auto found = config_file_in_options(args, datadir))
            return {*found, "postmaster.opts"};
    } else if (!opts.empty()) {
        if (auto binary = postgres_binary(opts))
            if (auto answer = ask_postgres(*binary, args))
                return {absolute(*answer, datadir), "postgres -C"};
        if (auto found = config_file_in_options(args, datadir))
            return {*found, "postmaster.opts"};
    }
    return {datadir + "/postgresql.conf", "data directory"};
}

void check_config_updatable(const std::string& path) {
    auto refuse = [&path](const std::string& detail) {
        throw ToolError(exit_io, "configuration file \"" + path + "\" cannot be updated", detail,
                        "Give the file the server reads with --config-file, or make it "
                        "writable. Nothing was changed.");
    };
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0)
        refuse(std::string("Could not stat it: ") + std::strerror(errno) + ".");
    std::string target = path;
    if (S_ISLNK(st.st_mode)) {
        char resolved[PATH_MAX];
        if (::realpath(path.c_str(), resolved) == nullptr)
            refuse(std::string("It is a symbolic link that cannot be resolved: ") +
                   std::strerror(errno) + ".");
        target = resolved;
        if (::stat(target.c_str(), &st) != 0)
            refuse("Could not stat its target \"" + target + "\": " + std::strerror(errno) + ".");
    }
    if (!S_ISREG(st.st_mode))
        refuse("\"" + target + "\" is not a regular file.");
    if (::access(target.c_str(), R_OK | W_OK) != 0)
        refuse("\"" + target + "\" cannot be read and written: " + std::strerror(errno) + ".");
    std::string dir = target.substr(0, target.rfind('/'));
    if (dir.empty())
        dir = "/";
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        refuse("Its directory \"" + dir + "\" is not writable, and the file is replaced by a " +
               "renamed copy: " + std::strerror(errno) + ".");
}

} // namespace pg_datakey
