// pg_datakey's trust boundaries: the options taken from postmaster.opts (and
// never run), the cluster's major version, the refusal of root and of users
// other than the data directory's owner.
#include "pg_datakey_cluster.hpp"

#include "config_file.hpp"
#include "exit_status.hpp"
#include "trust.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

using namespace pg_datakey;

namespace {

using Words = std::vector<std::string>;

bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

} // namespace

TEST(PgDatakeyServerOptions, EveryFormOfConfigFile) {
    EXPECT_EQ(parse_server_options({"-c", "config_file=/a"}, "/d").config_file, "/a");
    EXPECT_EQ(parse_server_options({"-c", "config-file=/b"}, "/d").config_file, "/b");
    EXPECT_EQ(parse_server_options({"-cconfig_file=/c"}, "/d").config_file, "/c");
    EXPECT_EQ(parse_server_options({"-cconfig-file=/c2"}, "/d").config_file, "/c2");
    EXPECT_EQ(parse_server_options({"--config_file=/e"}, "/d").config_file, "/e");
    EXPECT_EQ(parse_server_options({"--config-file=/f"}, "/d").config_file, "/f");
    EXPECT_EQ(parse_server_options({"--config-file=rel.conf"}, "/d").config_file, "/d/rel.conf");
}

TEST(PgDatakeyServerOptions, TheLastOneWins) {
    EXPECT_EQ(parse_server_options({"-c", "config_file=/a", "--config-file=/b"}, "/d").config_file,
              "/b");
    EXPECT_EQ(parse_server_options({"-D", "/x", "-D/y"}, "/d").data_dir, "/y");
}

TEST(PgDatakeyServerOptions, DataDirectoryForms) {
    EXPECT_EQ(parse_server_options({"-D", "/etc/pg"}, "/d").data_dir, "/etc/pg");
    EXPECT_EQ(parse_server_options({"-D/etc/pg"}, "/d").data_dir, "/etc/pg");
    EXPECT_EQ(parse_server_options({"-D", "conf"}, "/d").data_dir, "/d/conf");
    EXPECT_EQ(parse_server_options({"-c", "port=5432"}, "/d").data_dir, std::nullopt);
}

TEST(PgDatakeyServerOptions, EverythingElseIsIgnored) {
    ServerOptions o = parse_server_options({"-c", "shared_preload_libraries=/tmp/evil.so", "-c",
                                            "touch /tmp/marker", "--hba_file=/h",
                                            "-cdata_encryption_key_unwrap_command=x", "-c"},
                                           "/d");
    EXPECT_EQ(o.config_file, std::nullopt);
    EXPECT_EQ(o.data_dir, std::nullopt);
    // A -c whose value is the next word is not a config_file option.
    EXPECT_EQ(parse_server_options({"-c", "-c", "x"}, "/d").config_file, std::nullopt);
    EXPECT_EQ(parse_server_options({"-c", "hba_file=config_file=/z"}, "/d").config_file,
              std::nullopt);
}

TEST(PgDatakeyServerOptions, MajorVersionIsDigitsOnly) {
    TempDir dir;
    EXPECT_EQ(cluster_major_version(dir.path()), std::nullopt);
    write_text(dir / "PG_VERSION", "18\n");
    EXPECT_EQ(cluster_major_version(dir.path()), "18");
    write_text(dir / "PG_VERSION", "9.6\n");
    EXPECT_EQ(cluster_major_version(dir.path()), std::nullopt);
    write_text(dir / "PG_VERSION", "../../../tmp\n");
    EXPECT_EQ(cluster_major_version(dir.path()), std::nullopt);
    write_text(dir / "PG_VERSION", "18 x\n");
    EXPECT_EQ(cluster_major_version(dir.path()), std::nullopt);
    write_text(dir / "PG_VERSION", "\n");
    EXPECT_EQ(cluster_major_version(dir.path()), std::nullopt);
}

// The first word of postmaster.opts, and its other words, are never run,
// stopped or running alike; the configuration file comes out as if they
// were absent.
TEST(PgDatakeyServerOptions, AHostilePostmasterOptsRunsNothing) {
    FakeCluster c;
    std::string marker = c.dir / "marker";
    std::string script = c.dir / "evil.sh";
    write_text(script, "#!/bin/sh\ntouch '" + marker + "'\necho /evil.conf\n");
    ::chmod(script.c_str(), 0755);
    for (const std::string& opts : {"/bin/sh \"-c\" \"touch '" + marker + "'\"\n",
                                    script + " \"-c\" \"shared_preload_libraries=evil\"\n",
                                    script + " \"-D\" \"" + c.path() + "\"\n", script + "\n"}) {
        write_text(c.dir / "postmaster.opts", opts);
        ConfigLocation l = locate_config_file(c.path(), std::nullopt);
        EXPECT_EQ(l.path, c.conf()) << opts;
        EXPECT_EQ(l.source, "data directory") << opts;
        EXPECT_FALSE(exists(marker)) << opts;
    }
    // Another -D without config_file: that directory's postgresql.conf, from a
    // trusted postgres or by the same rule; the script is not it. One that
    // does not exist, or is this directory by another name, is ignored.
    write_text(c.dir / "postmaster.opts", script + " \"-D\" \"" + c.path() + "/etc\"\n");
    EXPECT_EQ(locate_config_file(c.path(), std::nullopt).path, c.conf());
    ::mkdir((c.dir / "etc").c_str(), 0700);
    EXPECT_EQ(locate_config_file(c.path(), std::nullopt).path, c.path() + "/etc/postgresql.conf");
    write_text(c.dir / "postmaster.opts", script + " \"-D\" \"" + c.path() + "/.\"\n");
    EXPECT_EQ(locate_config_file(c.path(), std::nullopt).path, c.conf());
    EXPECT_FALSE(exists(marker));
    // config_file is used as it is, and nothing runs.
    write_text(c.dir / "postmaster.opts", script + " \"-c\" \"config_file=/etc/pg.conf\"\n");
    ConfigLocation l = locate_config_file(c.path(), std::nullopt);
    EXPECT_EQ(l.path, "/etc/pg.conf");
    EXPECT_EQ(l.source, "postmaster.opts");
    EXPECT_FALSE(exists(marker));
}

TEST(PgDatakeyTrust, RootIsRefused) {
    if (::geteuid() == 0) {
        try {
            refuse_root();
            ADD_FAILURE() << "root was not refused";
        } catch (const ToolError& e) {
            EXPECT_EQ(e.status(), exit_wrong_user);
            EXPECT_STREQ(e.what(), "cannot be run as root");
            EXPECT_EQ(e.hint(), "Please log in (using, e.g., \"su\") as the (unprivileged) user "
                                "that will own the server process.");
        }
    } else {
        EXPECT_NO_THROW(refuse_root());
    }
}

TEST(PgDatakeyTrust, OnlyTheDataDirectorysOwner) {
    FakeCluster c;
    EXPECT_NO_THROW(require_data_directory_owner(c.path()));
    // A directory of another user: "/" unless this is root, which makes one.
    TempDir other;
    std::string theirs = "/";
    if (::geteuid() == 0) {
        ASSERT_EQ(::chown(other.path().c_str(), 65534, 65534), 0);
        theirs = other.path();
    }
    try {
        require_data_directory_owner(theirs);
        ADD_FAILURE() << "another user's directory was accepted";
    } catch (const ToolError& e) {
        EXPECT_EQ(e.status(), exit_wrong_user);
        EXPECT_EQ(std::string(e.what()),
                  "data directory \"" + theirs + "\" is owned by another user");
        EXPECT_NE(e.detail().find("It is owned by"), std::string::npos) << e.detail();
        EXPECT_NE(e.hint().find("runuser -u "), std::string::npos) << e.hint();
    }
    if (::geteuid() == 0)
        ::chown(other.path().c_str(), 0, 0);
}
