// Finding the server's postgresql.conf as it was started, and checking it can be rewritten.
#include "config_file.hpp"

#include "exit_status.hpp"

#include "fe_datakey/regular_file.hpp"
#include "fe_datakey/store.hpp"

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <limits>
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

// The postgres binary to ask: one this installation trusts, never one named
// by a file in the data directory (postmaster.opts is its owner's, and a
// database superuser can write it with COPY ... TO). First the postgres
// installed beside pg_datakey; else the one of the cluster's major version
// where Debian's postgresql-common installs each version,
// /usr/lib/postgresql/N/bin/postgres, N from PG_VERSION (digits only).
std::optional<std::string> postgres_binary(const std::string& datadir) {
    char self[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        std::string path(self, static_cast<std::size_t>(n));
        path = path.substr(0, path.rfind('/') + 1) + "postgres";
        if (::access(path.c_str(), X_OK) == 0)
            return path;
    }
    if (auto major = cluster_major_version(datadir)) {
        std::string path = "/usr/lib/postgresql/" + *major + "/bin/postgres";
        if (::access(path.c_str(), X_OK) == 0)
            return path;
    }
    return std::nullopt;
}

bool is_other_directory(const std::string& dir, const std::string& datadir) {
    char a[PATH_MAX], b[PATH_MAX];
    struct stat st;
    if (::realpath(dir.c_str(), a) == nullptr || ::realpath(datadir.c_str(), b) == nullptr)
        return false;
    return std::strcmp(a, b) != 0 && ::stat(a, &st) == 0 && S_ISDIR(st.st_mode);
}

// Runs `postgres -D DIR -C config_file` and returns its one line of output,
// or nullopt if it fails. Nothing else is passed: no option of
// postmaster.opts reaches the program. Bounded: killed after 10 seconds.
std::optional<std::string> ask_postgres(const std::string& binary, const std::string& dir) {
    std::vector<std::string> words = {binary, "-D", dir, "-C", "config_file"};
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

namespace {

// A small file the server writes into the data directory, or "" when there
// is none; never blocks (regular_file.hpp).
std::string small_file(const std::string& path) {
    return fe_datakey::read_regular_file_if_exists(path, "file", path, fe_datakey::Links::follow,
                                                   1 << 20)
        .value_or(std::string());
}

} // namespace

std::optional<pid_t> live_postmaster(const std::string& datadir) {
    std::istringstream in(small_file(datadir + "/postmaster.pid"));
    long pid = 0;
    // A number beyond pid_t would be cut to another process (or to -1:
    // kill(-1, 0) reaches every process we may signal).
    if (!(in >> pid) || pid <= 0 || pid > std::numeric_limits<pid_t>::max())
        return std::nullopt;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)
        return static_cast<pid_t>(pid);
    return std::nullopt;
}

std::vector<std::string> postmaster_opts(const std::string& datadir) {
    // The server writes the program path, then each argument as " \"arg\"".
    std::vector<std::string> words;
    std::string text = small_file(datadir + "/postmaster.opts");
    if (text.empty())
        return words;
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

std::optional<std::string> cluster_major_version(const std::string& datadir) {
    std::istringstream in(small_file(datadir + "/PG_VERSION"));
    std::string line;
    if (!std::getline(in, line))
        return std::nullopt;
    if (line.empty() || line.size() > 4 ||
        line.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    return line;
}

ServerOptions parse_server_options(const std::vector<std::string>& args,
                                   const std::string& datadir) {
    ServerOptions found;
    auto setting = [&](const std::string& text) {
        for (const char* name : {"config_file=", "config-file="})
            if (text.rfind(name, 0) == 0)
                found.config_file = absolute(text.substr(std::strlen(name)), datadir);
    };
    // The last one wins, as in the server. Only these are looked at: every
    // other word (a -c of any other setting, a program) is ignored.
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-c" && i + 1 < args.size())
            setting(args[++i]);
        else if (a.size() > 2 && a.rfind("-c", 0) == 0)
            setting(a.substr(2));
        else if (a == "-D" && i + 1 < args.size())
            found.data_dir = absolute(args[++i], datadir);
        else if (a.size() > 2 && a.rfind("-D", 0) == 0)
            found.data_dir = absolute(a.substr(2), datadir);
        else if (a.rfind("--", 0) == 0)
            setting(a.substr(2));
    }
    return found;
}

ConfigLocation locate_config_file(const std::string& datadir,
                                  const std::optional<std::string>& option) {
    if (option && !option->empty())
        return {absolute(*option, datadir), "--config-file"};
    std::vector<std::string> opts = postmaster_opts(datadir);
    if (!opts.empty()) {
        // The program (the first word) is never looked at, let alone run.
        std::vector<std::string> args(opts.begin() + 1, opts.end());
        ServerOptions parsed = parse_server_options(args, datadir);
        // config_file given on the command line is what the server reads:
        // postgres -C config_file would answer the same path, so it is used
        // as it is and nothing runs. Running or stopped alike.
        if (parsed.config_file)
            return {*parsed.config_file, "postmaster.opts"};
        // Stopped, and started without config_file: -D may name a
        // configuration directory (pg_ctl -D /etc/... with data_directory
        // set there). A trusted postgres says which file that is.
        // Without one, it is what postgres itself takes: that directory's
        // postgresql.conf.
        // A -D that does not resolve to an existing directory other than
        // this one (a path relative to where pg_ctl ran, say) is ignored.
        if (parsed.data_dir && is_other_directory(*parsed.data_dir, datadir)) {
            if (!live_postmaster(datadir))
                if (auto binary = postgres_binary(datadir))
                    if (auto answer = ask_postgres(*binary, *parsed.data_dir))
                        return {absolute(*answer, datadir), "postgres -C"};
            return {*parsed.data_dir + "/postgresql.conf", "postmaster.opts"};
        }
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
