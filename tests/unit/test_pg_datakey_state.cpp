// pg_datakey's view of a cluster: pg_control decides "encrypted or not", the
// configuration file may live outside the data directory, and the last key
// file known to unwrap is kept until its successor is proven.
#include "pg_datakey_cluster.hpp"

#include "config_file.hpp"
#include "datadir.hpp"
#include "exit_status.hpp"
#include "journal.hpp"
#include "paths.hpp"
#include "recovery.hpp"
#include "rewrap.hpp"
#include "rewrap_lock.hpp"
#include "status.hpp"
#include "verify.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fcntl.h>
#include <fstream>
#include <optional>
#include <sys/file.h>
#include <thread>
#include <unistd.h>

using namespace pg_datakey;

namespace {

const std::string b64_wrap = "base64 > \"%p\"";
const std::string b64_unwrap = "base64 -d \"%p\"";
const std::string garbage_wrap = "cat >/dev/null; echo '{\"error\": \"quota exceeded\"}' > \"%p\"";

template <typename F>
int exit_of(F&& f) {
    try {
        f();
    } catch (const fe_datakey::Error& e) {
        return exit_status_for(e);
    }
    return 0;
}

RewrapRequest request(const FakeCluster& c, const std::string& wrap, const std::string& unwrap,
                      const std::string& old = "-") {
    RewrapRequest r;
    r.datadir = c.path();
    r.config_file = c.conf();
    r.old_unwrap = old;
    r.new_wrap = wrap;
    r.new_unwrap = unwrap;
    return r;
}

bool opens(const std::string& datadir, const std::string& rel, const std::string& unwrap,
           const fe_datakey::Key& key) {
    try {
        return fe_datakey::load_key(datadir, unwrap, {}, rel).bytes().equals(key.bytes());
    } catch (const fe_datakey::Error&) {
        return false;
    }
}

} // namespace

TEST(PgDatakeyState, EncryptedControlWithoutKeyFileIsRefused) {
    FakeCluster c;
    ::unlink((c.dir / fe_datakey::key_file).c_str());
    EXPECT_EQ(exit_of([&] { require_encrypted(c.path()); }), exit_key_files_disagree);
    EXPECT_EQ(exit_of([&] { verify(c.path(), "-", 0); }), exit_key_files_disagree);
    EXPECT_EQ(exit_of([&] { rewrap(request(c, b64_wrap, b64_unwrap)); }), exit_key_files_disagree);
    Status s = collect_status(c.path(), {c.conf(), "data directory"});
    EXPECT_TRUE(s.encrypted); // pg_control says so, whatever the files say
    EXPECT_NE(s.disagreement.find("is missing"), std::string::npos);
}

TEST(PgDatakeyState, EncryptedControlWithUnreadableKeyFileIsRefused) {
    FakeCluster c;
    ::unlink((c.dir / fe_datakey::key_file).c_str());
    ::mkdir((c.dir / fe_datakey::key_file).c_str(), 0700);
    EncryptionState s = encryption_state(c.path());
    EXPECT_NE(s.disagreement.find("not a regular file"), std::string::npos);
    EXPECT_EQ(exit_of([&] { require_encrypted(c.path()); }), exit_key_files_disagree);
}

TEST(PgDatakeyState, KeyFilesInAnUnencryptedClusterAreRefused) {
    for (auto control : {make_control_file(1301, 0, 0), make_control_file(1300)}) {
        FakeCluster c;
        write_control_file(c.path(), control);
        EXPECT_EQ(exit_of([&] { require_encrypted(c.path()); }), exit_key_files_disagree);
        EXPECT_EQ(exit_of([&] { verify(c.path(), "-", 0); }), exit_key_files_disagree);
        EXPECT_EQ(exit_of([&] { rewrap(request(c, b64_wrap, b64_unwrap)); }),
                  exit_key_files_disagree);
        EXPECT_TRUE(opens(c.path(), fe_datakey::key_file, "-", c.key)); // nothing changed
        Status s = collect_status(c.path(), {c.conf(), "data directory"});
        EXPECT_FALSE(s.encrypted);
        EXPECT_EQ(s.disagreement, "data directory holds a data encryption key, but pg_control says "
                                  "the cluster is not encrypted");
    }
}

TEST(PgDatakeyState, ALoneKeyCheckInAnUnencryptedClusterIsRefused) {
    for (auto control : {make_control_file(1301, 0, 0), make_control_file(1300)}) {
        FakeCluster c;
        write_control_file(c.path(), control);
        ::unlink((c.dir / fe_datakey::key_file).c_str());
        EXPECT_EQ(exit_of([&] { require_encrypted(c.path()); }), exit_key_files_disagree);
        EXPECT_EQ(exit_of([&] { verify(c.path(), "-", 0); }), exit_key_files_disagree);
        EXPECT_EQ(exit_of([&] { rewrap(request(c, b64_wrap, b64_unwrap)); }),
                  exit_key_files_disagree);
        EXPECT_FALSE(c.exists(fe_datakey::key_file)); // nothing created
        Status s = collect_status(c.path(), {c.conf(), "data directory"});
        EXPECT_FALSE(s.encrypted);
        EXPECT_EQ(s.disagreement, "data directory holds a data encryption key check, but "
                                  "pg_control says the cluster is not encrypted");
    }
}

TEST(PgDatakeyState, StatusReportsEveryFinding) {
    FakeCluster c;
    ::unlink((c.dir / fe_datakey::key_file).c_str());
    ::unlink((c.dir / fe_datakey::key_check_file).c_str());
    Status s = collect_status(c.path(), {c.conf(), "data directory"});
    EXPECT_EQ(s.disagreement, "data encryption key file \"pg_encryption/key.bin\" is missing");
    EXPECT_NE(std::find(s.warnings.begin(), s.warnings.end(),
                        "key check file \"pg_encryption/key.check\" is missing"),
              s.warnings.end());
    // The other verbs fail on the first.
    try {
        require_encrypted(c.path());
        ADD_FAILURE() << "accepted";
    } catch (const ToolError& e) {
        EXPECT_EQ(e.status(), exit_key_files_disagree);
        EXPECT_EQ(e.message(), s.disagreement);
    }
}

TEST(PgDatakeyState, AMalformedKeyCheckIsNotADisagreement) {
    FakeCluster c;
    write_text(c.dir / fe_datakey::key_check_file, "fe_datakey key check 1\nbits 128\n");
    EXPECT_EQ(exit_of([&] { require_encrypted(c.path()); }), exit_check_invalid);
    Status s = collect_status(c.path(), {c.conf(), "data directory"});
    EXPECT_TRUE(s.disagreement.empty());
    EXPECT_NE(std::find(s.warnings.begin(), s.warnings.end(),
                        "invalid key check file \"pg_encryption/key.check\""),
              s.warnings.end());
}

TEST(PgDatakeyState, StockClusterWithoutKeyFilesIsNotEncrypted) {
    TempDir dir;
    write_text(dir / "PG_VERSION", "15\n");
    write_control_file(dir.path(), make_control_file(1300));
    EXPECT_EQ(exit_of([&] { require_encrypted(dir.path()); }), exit_not_encrypted);
    Status s = collect_status(dir.path(), {dir / "postgresql.conf", "data directory"});
    EXPECT_FALSE(s.encrypted);
    EXPECT_TRUE(s.disagreement.empty());
}

TEST(PgDatakeyState, KeyLengthMustMatchControl) {
    FakeCluster c; // a 128-bit key
    write_control_file(c.path(), make_control_file(1301, 1, 256));
    EXPECT_EQ(exit_of([&] { verify(c.path(), "-", 0); }), exit_key_files_disagree);
}

TEST(PgDatakeyState, DamagedControlIsAnIoError) {
    FakeCluster c;
    auto data = make_control_file(1301, 1, 128);
    data[100] ^= 1;
    write_control_file(c.path(), data);
    EXPECT_EQ(exit_of([&] { require_encrypted(c.path()); }), exit_io);
}

TEST(PgDatakeyPrevious, UnverifiedGarbageWrapKeepsTheLastGoodKeyFile) {
    FakeCluster c;
    RewrapRequest r = request(c, garbage_wrap, "cat \"%p\"");
    r.verify = false;
    rewrap(r); // exits 0 and wrote junk: accepted, as --no-verify asks
    EXPECT_FALSE(opens(c.path(), fe_datakey::key_file, "cat \"%p\"", c.key));
    ASSERT_TRUE(c.exists(previous_key_file));
    EXPECT_TRUE(opens(c.path(), previous_key_file, "-", c.key));
    EXPECT_TRUE(inspect_rewrap(c.path()).previous_key_kept);
    // A failing verify keeps it, and a second rewrap cannot start from junk.
    EXPECT_NE(exit_of([&] { verify(c.path(), "cat \"%p\"", 0); }), 0);
    EXPECT_NE(exit_of([&] { rewrap(request(c, b64_wrap, b64_unwrap, "cat \"%p\"")); }), 0);
    EXPECT_TRUE(opens(c.path(), previous_key_file, "-", c.key));
}

TEST(PgDatakeyPrevious, VerifiedGarbageWrapNeverReplacesKeyFile) {
    FakeCluster c;
    EXPECT_EQ(exit_of([&] { rewrap(request(c, garbage_wrap, "cat \"%p\"")); }), exit_bad_length);
    EXPECT_TRUE(opens(c.path(), fe_datakey::key_file, "-", c.key));
    EXPECT_FALSE(c.exists(previous_key_file));
}

TEST(PgDatakeyPrevious, UnverifiedRewrapKeepsPreviousUntilVerifySucceeds) {
    FakeCluster c;
    RewrapRequest r = request(c, b64_wrap, b64_unwrap);
    r.verify = false;
    rewrap(r);
    EXPECT_TRUE(c.exists(previous_key_file));
    VerifyResult v = verify(c.path(), b64_unwrap, 0);
    EXPECT_TRUE(v.previous_key_removed);
    EXPECT_FALSE(c.exists(previous_key_file));
    EXPECT_FALSE(verify(c.path(), b64_unwrap, 0).previous_key_removed);
}

TEST(PgDatakeyPrevious, VerifiedRewrapRemovesTheOldWrapping) {
    FakeCluster c(b64_wrap, b64_unwrap);
    rewrap(request(c, "-", "-", b64_unwrap));
    EXPECT_FALSE(c.exists(previous_key_file)); // think of a leaked passphrase
    EXPECT_FALSE(c.exists(journal_file));
}

TEST(PgDatakeyPrevious, RepairAfterTheCommitKeepsOrDropsAsTheJournalSays) {
    for (bool verified : {true, false}) {
        FakeCluster c;
        fe_datakey::wrap_key_to(c.path(), new_key_file, b64_wrap, c.key, {});
        Journal j;
        j.new_unwrap_command = b64_unwrap;
        j.new_key_sha256 = file_sha256(c.dir / new_key_file);
        j.config_file = c.conf();
        j.new_key_verified = verified;
        write_journal(c.path(), j);
        EXPECT_EQ(repair(c.path(), c.conf()), RepairOutcome::completed);
        EXPECT_EQ(c.exists(previous_key_file), !verified);
        EXPECT_TRUE(opens(c.path(), fe_datakey::key_file, b64_unwrap, c.key));
    }
}

TEST(PgDatakeyConfig, RewrapUpdatesTheConfigFileOutsideTheDataDirectory) {
    FakeCluster c;
    TempDir etc;
    write_text(etc / "postgresql.conf", "port = 5999\n");
    fe_datakey::set_conf_unwrap_command(etc / "postgresql.conf", "-");
    ::unlink(c.conf().c_str());
    RewrapRequest r = request(c, b64_wrap, b64_unwrap);
    r.config_file = etc / "postgresql.conf";
    rewrap(r);
    EXPECT_EQ(fe_datakey::get_conf_unwrap_command(etc / "postgresql.conf"), b64_unwrap);
    EXPECT_EQ(read_text(etc / "postgresql.conf").rfind("port = 5999\n", 0), 0u);
    EXPECT_FALSE(c.exists("postgresql.conf"));
}

TEST(PgDatakeyConfig, MissingConfigFileRefusesBeforeAnythingChanges) {
    FakeCluster c;
    ::unlink(c.conf().c_str());
    std::string before = read_text(c.dir / fe_datakey::key_file);
    EXPECT_EQ(exit_of([&] { rewrap(request(c, b64_wrap, b64_unwrap)); }), exit_io);
    EXPECT_EQ(read_text(c.dir / fe_datakey::key_file), before);
    EXPECT_FALSE(c.exists(new_key_file));
    EXPECT_FALSE(c.exists(journal_file));
}

TEST(PgDatakeyConfig, NonRegularOrReadOnlyConfigRefusesBeforeAnythingChanges) {
    FakeCluster c;
    ::unlink(c.conf().c_str());
    ::mkdir(c.conf().c_str(), 0700);
    EXPECT_EQ(exit_of([&] { check_config_updatable(c.conf()); }), exit_io);
    ::rmdir(c.conf().c_str());
    write_text(c.conf(), "");
    if (::geteuid() != 0) {
        ::chmod(c.conf().c_str(), 0400);
        EXPECT_EQ(exit_of([&] { rewrap(request(c, b64_wrap, b64_unwrap)); }), exit_io);
        EXPECT_FALSE(c.exists(journal_file));
        EXPECT_TRUE(opens(c.path(), fe_datakey::key_file, "-", c.key));
    }
}

TEST(PgDatakeyConfig, SymbolicLinkKeepsPointingAtTheUpdatedTarget) {
    FakeCluster c;
    TempDir etc;
    ASSERT_EQ(std::rename(c.conf().c_str(), (etc / "real.conf").c_str()), 0);
    ASSERT_EQ(::symlink((etc / "real.conf").c_str(), c.conf().c_str()), 0);
    rewrap(request(c, b64_wrap, b64_unwrap));
    struct stat st;
    ASSERT_EQ(::lstat(c.conf().c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode));
    EXPECT_EQ(fe_datakey::get_conf_unwrap_command(etc / "real.conf"), b64_unwrap);
}

TEST(PgDatakeyConfig, AutoConfIsLeftAloneWhileAPostmasterRuns) {
    FakeCluster c;
    std::string auto_conf = c.dir / "postgresql.auto.conf";
    write_text(auto_conf, "# Do not edit this file manually!\n");
    fe_datakey::set_conf_unwrap_command(auto_conf, "-");
    // The server's own temporary name, as an ALTER SYSTEM in progress has it.
    write_text(auto_conf + ".tmp", "server's half-written file\n");
    write_text(c.dir / "postmaster.pid", std::to_string(::getpid()) + "\n" + c.path() + "\n");
    EXPECT_EQ(exit_of([&] { rewrap(request(c, b64_wrap, b64_unwrap)); }), exit_busy);
    EXPECT_EQ(fe_datakey::get_conf_unwrap_command(auto_conf), "-");
    EXPECT_TRUE(opens(c.path(), fe_datakey::key_file, "-", c.key));

    RewrapRequest r = request(c, b64_wrap, b64_unwrap);
    r.edit_auto_conf = true;
    rewrap(r);
    EXPECT_EQ(fe_datakey::get_conf_unwrap_command(auto_conf), b64_unwrap);
    EXPECT_EQ(read_text(auto_conf + ".tmp"), "server's half-written file\n");
}

TEST(PgDatakeyConfig, LocatedFromTheServersOptions) {
    FakeCluster c;
    EXPECT_EQ(locate_config_file(c.path(), std::nullopt).path, c.conf());
    EXPECT_EQ(locate_config_file(c.path(), std::nullopt).source, "data directory");
    write_text(c.dir / "postmaster.opts",
               "/usr/lib/postgresql/15/bin/postgres \"-D\" \"" + c.path() +
                   "\" \"-c\" \"config_file=/etc/postgresql/15/main/postgresql.conf\"\n");
    // Stopped: the options of the last start (no postgres beside this program
    // to ask, so they are read as they are).
    EXPECT_EQ(locate_config_file(c.path(), std::nullopt).path,
              "/etc/postgresql/15/main/postgresql.conf");
    write_text(c.dir / "postmaster.pid", std::to_string(::getpid()) + "\n");
    ConfigLocation l = locate_config_file(c.path(), std::nullopt);
    EXPECT_EQ(l.path, "/etc/postgresql/15/main/postgresql.conf");
    EXPECT_EQ(l.source, "postmaster.opts");
    l = locate_config_file(c.path(), std::string("/elsewhere.conf"));
    EXPECT_EQ(l.path, "/elsewhere.conf");
    EXPECT_EQ(l.source, "--config-file");
}

TEST(PgDatakeyConfig, ConfigFileInServerOptions) {
    EXPECT_EQ(parse_server_options({"-D", "/d", "-c", "config_file=/a"}, "/d").config_file, "/a");
    EXPECT_EQ(parse_server_options({"-cconfig_file=/b"}, "/d").config_file, "/b");
    EXPECT_EQ(
        parse_server_options({"--config-file=/c", "--config_file=rel.conf"}, "/d").config_file,
        "/d/rel.conf");
    EXPECT_EQ(parse_server_options({"-c", "hba_file=/h"}, "/d").config_file, std::nullopt);
}

TEST(PgDatakeyConfig, PostmasterOptsWords) {
    TempDir dir;
    write_text(dir / "postmaster.opts", "/bin/postgres \"-D\" \"/my data\" \"-c\" \"a=b c\"\n");
    std::vector<std::string> want = {"/bin/postgres", "-D", "/my data", "-c", "a=b c"};
    EXPECT_EQ(postmaster_opts(dir.path()), want);
    write_text(dir / "postmaster.opts", "/bin/postgres\n");
    EXPECT_EQ(postmaster_opts(dir.path()), std::vector<std::string>{"/bin/postgres"});
}

TEST(PgDatakeyLock, AMomentaryStatusProbeDoesNotFailARewrap) {
    FakeCluster c;
    { RewrapLock create(c.path()); }
    int fd = ::open((c.dir / lock_file).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_SH | LOCK_NB), 0); // what status holds for an instant
    std::thread release([fd] {
        ::usleep(200 * 1000);
        ::close(fd);
    });
    EXPECT_NO_THROW(rewrap(request(c, b64_wrap, b64_unwrap)));
    release.join();
}

TEST(PgDatakeyState, APostmasterPidBeyondPidTIsNoLiveServer) {
    // Cut to pid_t, 4294967295 is -1 (kill(-1, 0) reaches every process we
    // may signal) and 4294967297 is 1: neither is a postmaster. Found by
    // fuzz_postmaster_pid.
    TempDir dir;
    for (const char* text : {"4294967295\n", "4294967297\n", "99999999999999999999\n", "-1\n"}) {
        SCOPED_TRACE(text);
        std::ofstream(dir / "postmaster.pid") << text;
        EXPECT_FALSE(pg_datakey::live_postmaster(dir.path()).has_value());
    }
    // Our own PID is a live process.
    std::ofstream(dir / "postmaster.pid") << getpid() << "\n";
    EXPECT_EQ(pg_datakey::live_postmaster(dir.path()), std::optional<pid_t>(getpid()));
}
