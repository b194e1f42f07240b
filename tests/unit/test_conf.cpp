// data_encryption_key_unwrap_command in postgresql.conf: quoting round trips
// and line-preserving, atomic updates.
#include "fe_datakey/conf.hpp"
#include "fe_datakey/error.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <grp.h>
#include <optional>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace fe_datakey;

namespace {

const std::vector<std::string> awkward_values = {
    "-",
    "openssl enc -d -aes-128-cbc -pbkdf2 -in \"%p\"",
    "it's 'quoted' %p",
    "back\\slash \\\\ and \\' %p",
    "hash # not a comment %p",
    "percent %% and %x and %p and trailing %",
    "unicode: clé ключ 鍵 %p",
    "tab\tand\nnewline %p",
    "''",
    "\\",
};

} // namespace

TEST(Conf, QuoteUnquoteRoundTrip) {
    for (const auto& v : awkward_values) {
        SCOPED_TRACE(v);
        std::string q = quote_conf_value(v);
        EXPECT_EQ(q.front(), '\'');
        EXPECT_EQ(q.back(), '\'');
        EXPECT_EQ(q.find('\n'), std::string::npos) << "a newline inside a token breaks the file";
        EXPECT_EQ(unquote_conf_value(q), v);
    }
}

TEST(Conf, UnquoteFollowsTheServersEscapes) {
    EXPECT_EQ(unquote_conf_value("'a''b'"), "a'b");
    EXPECT_EQ(unquote_conf_value("'a\\'b'"), "a'b");
    EXPECT_EQ(unquote_conf_value("'\\101\\x'"), "Ax");
    EXPECT_EQ(unquote_conf_value("'\\t\\n\\r\\b\\f'"), "\t\n\r\b\f");
    EXPECT_EQ(unquote_conf_value("unquoted"), "unquoted");
}

TEST(Conf, SetAppendsAndKeepsEveryOtherLine) {
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    std::string original = "# comment\r\nshared_buffers = 128MB\t# note\n\n"
                           "#data_encryption_key_unwrap_command = 'old %p'\nport = 5433";
    write_text(conf, original);
    ::chmod(conf.c_str(), 0640);
    set_conf_unwrap_command(conf, "cat \"%p\"");
    EXPECT_EQ(read_text(conf), original + "\ndata_encryption_key_unwrap_command = 'cat \"%p\"'\n");
    struct stat st {};
    ASSERT_EQ(::stat(conf.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    EXPECT_FALSE(std::filesystem::exists(conf + ".tmp"));
}

TEST(Conf, SetReplacesTheLastActiveLineOnly) {
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "data_encryption_key_unwrap_command = 'first %p'\n"
                     "#data_encryption_key_unwrap_command = 'commented %p'\n"
                     "  DATA_ENCRYPTION_KEY_UNWRAP_COMMAND='second %p'  # last\n"
                     "work_mem = 4MB\n");
    EXPECT_EQ(get_conf_unwrap_command(conf), "second %p");
    set_conf_unwrap_command(conf, "new %p");
    EXPECT_EQ(read_text(conf), "data_encryption_key_unwrap_command = 'first %p'\n"
                               "#data_encryption_key_unwrap_command = 'commented %p'\n"
                               "data_encryption_key_unwrap_command = 'new %p'\n"
                               "work_mem = 4MB\n");
    EXPECT_EQ(get_conf_unwrap_command(conf), "new %p");
}

TEST(Conf, AwkwardValuesRoundTripThroughAFile) {
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "max_connections = 100\n");
    for (const auto& v : awkward_values) {
        SCOPED_TRACE(v);
        set_conf_unwrap_command(conf, v);
        EXPECT_EQ(get_conf_unwrap_command(conf), v);
    }
}

TEST(Conf, UnsetAndMissingFile) {
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "#data_encryption_key_unwrap_command = 'x %p'\n");
    EXPECT_FALSE(get_conf_unwrap_command(conf).has_value());
    EXPECT_THROW(get_conf_unwrap_command(dir / "absent.conf"), Error);
    EXPECT_THROW(set_conf_unwrap_command(dir / "absent.conf", "x %p"), Error);
}

TEST(Conf, AutoConfOverridesPostgresqlConf) {
    TempDir dir;
    write_text(dir / "postgresql.conf", "data_encryption_key_unwrap_command = 'a %p'\n");
    EXPECT_EQ(configured_unwrap_command(dir.path()), "a %p");
    write_text(dir / "postgresql.auto.conf", "data_encryption_key_unwrap_command = 'b %p'\n");
    EXPECT_EQ(configured_unwrap_command(dir.path()), "b %p");
    TempDir empty;
    EXPECT_FALSE(configured_unwrap_command(empty.path()).has_value());
}

TEST(Conf, ShellQuoteSurvivesTheShell) {
    for (const auto& v : awkward_values) {
        SCOPED_TRACE(v);
        TempDir dir;
        std::string out = dir / "out";
        std::string cmd = "printf '%s' " + shell_quote(v) + " > " + shell_quote(out);
        ASSERT_EQ(std::system(cmd.c_str()), 0);
        EXPECT_EQ(read_text(out), v);
    }
}

TEST(Conf, SetUpdatesASymbolicLinksTargetAndKeepsTheLink) {
    TempDir dir;
    std::string real = dir / "real.conf", link = dir / "postgresql.conf";
    write_text(real, "port = 5433\n");
    ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
    set_conf_unwrap_command(link, "cat \"%p\"");
    struct stat st {};
    ASSERT_EQ(::lstat(link.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(get_conf_unwrap_command(real), "cat \"%p\"");
}

TEST(Conf, SetNeverTouchesTheServersTemporaryName) {
    // ALTER SYSTEM writes postgresql.auto.conf.tmp: a file of the server's.
    TempDir dir;
    std::string conf = dir / "postgresql.auto.conf";
    write_text(conf, "# Do not edit this file manually!\n");
    write_text(conf + ".tmp", "the server's\n");
    set_conf_unwrap_command(conf, "-");
    EXPECT_EQ(read_text(conf + ".tmp"), "the server's\n");
    EXPECT_EQ(get_conf_unwrap_command(conf), "-");
    EXPECT_FALSE(std::filesystem::exists(conf + conf_temporary_suffix));
}

TEST(Conf, ConfiguredCommandFromAFileOutsideTheDataDirectory) {
    TempDir data, etc;
    write_text(etc / "main.conf", "data_encryption_key_unwrap_command = 'etc %p'\n");
    EXPECT_EQ(configured_unwrap_command_from(data.path(), etc / "main.conf"), "etc %p");
    write_text(data / "postgresql.auto.conf", "data_encryption_key_unwrap_command = 'auto %p'\n");
    EXPECT_EQ(configured_unwrap_command_from(data.path(), etc / "main.conf"), "auto %p");
    EXPECT_EQ(configured_unwrap_command_from(data.path(), etc / "missing.conf"), "auto %p");
}

namespace {

struct stat stat_of(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st;
}

// A group of this process other than its effective one, if it has one.
std::optional<gid_t> other_group_of_ours() {
    std::vector<gid_t> groups(static_cast<std::size_t>(std::max(getgroups(0, nullptr), 0)));
    int n = getgroups(static_cast<int>(groups.size()), groups.data());
    for (int i = 0; i < n; i++)
        if (groups[static_cast<std::size_t>(i)] != getegid())
            return groups[static_cast<std::size_t>(i)];
    return std::nullopt;
}

} // namespace

TEST(Conf, SetKeepsTheFilesModeOwnerAndGroup) {
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "port = 5433\n");
    ASSERT_EQ(::chmod(conf.c_str(), 0604), 0);
    struct stat before = stat_of(conf);
    set_conf_unwrap_command(conf, "cat \"%p\"");
    struct stat after = stat_of(conf);
    EXPECT_NE(after.st_ino, before.st_ino); // replaced, not rewritten in place
    EXPECT_EQ(after.st_mode & 07777, 0604u);
    EXPECT_EQ(after.st_uid, before.st_uid);
    EXPECT_EQ(after.st_gid, before.st_gid);
}

TEST(ConfPrivileged, SetKeepsASupplementaryGroupOfTheWriter) {
    std::optional<gid_t> group = other_group_of_ours();
    if (!group)
        GTEST_SKIP() << "this user belongs to one group only: a file in another group of "
                        "theirs cannot be made";
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "port = 5433\n");
    ASSERT_EQ(::chown(conf.c_str(), geteuid(), *group), 0);
    ASSERT_EQ(::chmod(conf.c_str(), 0640), 0);
    set_conf_unwrap_command(conf, "-");
    struct stat after = stat_of(conf);
    EXPECT_EQ(after.st_gid, *group);
    EXPECT_EQ(after.st_uid, geteuid());
    EXPECT_EQ(after.st_mode & 07777, 0640u);
    EXPECT_EQ(get_conf_unwrap_command(conf), "-");
}

TEST(ConfPrivileged, RootKeepsAnotherUsersOwnerAndGroup) {
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root: only root can make a file owned by another user";
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "port = 5433\n");
    ASSERT_EQ(::chown(conf.c_str(), 12345, 12346), 0);
    set_conf_unwrap_command(conf, "-");
    struct stat after = stat_of(conf);
    EXPECT_EQ(after.st_uid, 12345u);
    EXPECT_EQ(after.st_gid, 12346u);
}

TEST(ConfPrivileged, AnOwnerThatCannotBeKeptFailsBeforeAnythingIsRenamed) {
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root: to make a file owned by another user in a directory the "
                        "unprivileged writer can write";
    TempDir dir;
    ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "port = 5433\n");
    ASSERT_EQ(::chmod(conf.c_str(), 0644), 0);
    struct stat before = stat_of(conf);
    // The writer: an unprivileged user (nobody) in a child process.
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        try {
            set_conf_unwrap_command(conf, "-");
        } catch (const Error& e) {
            bool named = e.code() == ErrorCode::io &&
                         e.message() == "could not replace file \"" + conf + "\"" &&
                         e.detail().find("owned by user 0 and group 0") != std::string::npos &&
                         e.detail().find("Nothing was changed.") != std::string::npos;
            _exit(named ? 0 : 11);
        } catch (...) {
            _exit(12);
        }
        _exit(13); // succeeded: the owner was lost
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10: setuid failed, 11: other error, 13: no error";
    struct stat after = stat_of(conf);
    EXPECT_EQ(after.st_ino, before.st_ino);
    EXPECT_EQ(after.st_uid, 0u);
    EXPECT_EQ(read_text(conf), "port = 5433\n");
    EXPECT_FALSE(std::filesystem::exists(conf + conf_temporary_suffix));
}
