// Small pieces of pg_datakey: journal format, exit statuses, crash hook,
// command line, status rendering.
#include "env_guard.hpp"
#include "pg_datakey_cluster.hpp"

#include "cli.hpp"
#include "commands.hpp"
#include "crash_point.hpp"
#include "exit_status.hpp"
#include "journal.hpp"
#include "json_writer.hpp"
#include "status.hpp"
#include "unwrap_command.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace pg_datakey;

namespace {

Invocation parse(std::vector<const char*> args) {
    args.insert(args.begin(), "pg_datakey");
    return parse_command_line(static_cast<int>(args.size()), args.data());
}

int usage_status(std::vector<const char*> args) {
    try {
        parse(std::move(args));
    } catch (const fe_datakey::Error& e) {
        return exit_status_for(e);
    }
    return -1;
}

} // namespace

TEST(PgDatakeyJournal, RoundTripKeepsAwkwardCommands) {
    Journal j;
    j.new_unwrap_command = "openssl enc -d -pass 'file:it''s' -in \"%p\" \\ \n\t%%";
    j.new_key_sha256 = std::string(64, 'a');
    Journal back = Journal::parse(j.serialize());
    EXPECT_EQ(back.new_unwrap_command, j.new_unwrap_command);
    EXPECT_EQ(back.new_key_sha256, j.new_key_sha256);
}

TEST(PgDatakeyJournal, RejectsDamagedJournals) {
    EXPECT_THROW(Journal::parse(""), fe_datakey::Error);
    EXPECT_THROW(Journal::parse("fe_datakey rewrap journal 2\n"), fe_datakey::Error);
    EXPECT_THROW(Journal::parse("fe_datakey rewrap journal 1\nnew_unwrap_command 'x'\n"),
                 fe_datakey::Error);
    EXPECT_THROW(Journal::parse("fe_datakey rewrap journal 1\nnew_unwrap_command 'x'\n"
                                "new_key_sha256 abc\n"),
                 fe_datakey::Error);
}

TEST(PgDatakeyExitStatus, DistinctPerFailureKind) {
    using fe_datakey::Error;
    using fe_datakey::ErrorCode;
    EXPECT_EQ(exit_status_for(Error(ErrorCode::not_encrypted, "")), exit_not_encrypted);
    EXPECT_EQ(exit_status_for(Error(ErrorCode::command_missing, "")), exit_no_command);
    EXPECT_EQ(exit_status_for(Error(ErrorCode::command_signaled, "")), exit_command_failed);
    EXPECT_EQ(exit_status_for(Error(ErrorCode::command_timeout, "")), exit_timeout);
    EXPECT_EQ(exit_status_for(Error(ErrorCode::key_mismatch, "")), exit_wrong_key);
    EXPECT_EQ(exit_status_for(Error(ErrorCode::output_short, "")), exit_bad_length);
    EXPECT_EQ(exit_status_for(Error(ErrorCode::check_invalid, "")), exit_check_invalid);
    EXPECT_EQ(exit_status_for(Error(ErrorCode::io, "")), exit_io);
    EXPECT_EQ(exit_status_for(ToolError(exit_busy, "")), exit_busy);
}

// Test builds only (FE_DATAKEY_TEST_HOOKS); crash_point_without_test_hooks
// checks the other side.
#ifdef FE_DATAKEY_TEST_HOOKS
TEST(PgDatakeyCrashPoint, KillsOnlyAtTheNamedStep) {
    EnvGuard env;
    env.set(crash_at_variable, "after-rename");
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        crash_point("after-journal");
        crash_point("after-rename");
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status));
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
}
#endif

TEST(PgDatakeyCli, CommandsAndOptions) {
    EnvGuard env;
    env.set("PGDATAKEYUNWRAPCMD", std::nullopt);
    Invocation i = parse({"-D", "/x", "rewrap", "--new-key-wrap-command=w %p",
                          "--new-key-unwrap-command", "u %p", "--timeout=5", "--no-verify"});
    EXPECT_EQ(i.command, Command::rewrap);
    EXPECT_EQ(i.pgdata, "/x");
    EXPECT_EQ(i.new_wrap, "w %p");
    EXPECT_EQ(i.new_unwrap, "u %p");
    EXPECT_EQ(i.timeout_seconds, 5);
    EXPECT_TRUE(i.no_verify);
    EXPECT_EQ(parse({}).command, Command::status);
    EXPECT_EQ(parse({"--version"}).command, Command::version);
    EXPECT_EQ(parse({"-?"}).command, Command::help);
}

TEST(PgDatakeyCli, UsageErrors) {
    EXPECT_EQ(usage_status({"frobnicate"}), exit_usage);
    EXPECT_EQ(usage_status({"status", "extra"}), exit_usage);
    EXPECT_EQ(usage_status({"--bogus"}), exit_usage);
    EXPECT_EQ(usage_status({"status", "--timeout=3"}), exit_usage);
    EXPECT_EQ(usage_status({"verify", "--json"}), exit_usage);
    EXPECT_EQ(usage_status({"verify", "--timeout=-1"}), exit_usage);
    EXPECT_EQ(usage_status({"verify", "--timeout=soon"}), exit_usage);
    EXPECT_EQ(usage_status({"rewrap", "--new-key-wrap-command=x %p"}), exit_usage);
    EXPECT_EQ(usage_status({"verify", "--key-unwrap-command=a %p", "--key-unwrap-command=b %p"}),
              exit_usage);
}

// --help, the option checks and the dispatch come from the command table.
TEST(PgDatakeyCli, DerivedFromTheCommandTable) {
    std::string help = help_text();
    for (const auto& c : command_table()) {
        EXPECT_EQ(find_command(c.name), &c);
        EXPECT_EQ(&command_spec(c.command), &c);
        std::string line = "  " + std::string(c.name);
        line.resize(25, ' ');
        EXPECT_NE(help.find("\n" + line + c.summary), std::string::npos) << c.name;
    }
    EXPECT_NE(help.find("\n  status                 show the key store and its state (the "
                        "default)\n"),
              std::string::npos);
    // An option of one command says which; one of several commands does not.
    EXPECT_NE(help.find("\n      --json             status: print the status as JSON\n"),
              std::string::npos);
    EXPECT_NE(help.find("\n  -t, --timeout=SECONDS  give up on a command"), std::string::npos);
    EXPECT_EQ(find_command("help"), nullptr);
    EXPECT_EQ(usage_status({"repair", "--timeout=1"}), exit_usage);
}

TEST(PgDatakeyCli, OptionBeatsVariableBeatsConfiguration) {
    FakeCluster c;
    EnvGuard env;
    env.set("PGDATAKEYUNWRAPCMD", std::nullopt);
    EXPECT_EQ(resolve_unwrap_command(parse({"verify"}).key_options, c.path(), c.conf()), "-");
    env.set("PGDATAKEYUNWRAPCMD", "from-env %p");
    EXPECT_EQ(resolve_unwrap_command(parse({"verify"}).key_options, c.path(), c.conf()),
              "from-env %p");
    EXPECT_EQ(resolve_unwrap_command(parse({"verify", "--key-unwrap-command=opt %p"}).key_options,
                                     c.path(), c.conf()),
              "opt %p");
    env.set("PGDATAKEYUNWRAPCMD", "");
    try {
        resolve_unwrap_command(parse({"verify"}).key_options, c.path(), c.conf());
        FAIL() << "no error";
    } catch (const fe_datakey::Error& e) {
        EXPECT_EQ(exit_status_for(e), exit_no_command);
    }
}

TEST(PgDatakeyStatus, ReportsWithoutRunningAnything) {
    FakeCluster c("touch ran; base64 > \"%p\"", "touch ran; base64 -d \"%p\"");
    ::unlink((c.dir / "ran").c_str());
    Status s = collect_status(c.path(), {c.conf(), "data directory"});
    EXPECT_TRUE(s.encrypted);
    EXPECT_EQ(s.key_bits, 128);
    EXPECT_EQ(s.check_value, c.key.check_value());
    EXPECT_FALSE(s.plaintext_key);
    EXPECT_TRUE(s.warnings.empty()) << s.warnings.front();
    EXPECT_FALSE(c.exists("ran"));
    std::string text = render_status_text(s, false);
    EXPECT_EQ(text.find("base64"), std::string::npos);
    EXPECT_NE(render_status_text(s, true).find("base64 -d"), std::string::npos);
    EXPECT_EQ(render_status_json(s, false).find("base64"), std::string::npos);
}

TEST(PgDatakeyStatus, Warnings) {
    FakeCluster c;
    ::chmod((c.dir / "pg_encryption/key.bin").c_str(), 0644);
    Status s = collect_status(c.path(), {c.conf(), "data directory"});
    EXPECT_TRUE(s.plaintext_key);
    ASSERT_EQ(s.warnings.size(), 2u);
    EXPECT_NE(s.warnings[0].find("without wrapping"), std::string::npos);
    EXPECT_NE(s.warnings[1].find("other users"), std::string::npos);

    write_text(c.dir / "postgresql.conf", "\n");
    EXPECT_NE(collect_status(c.path(), {c.conf(), "data directory"})
                  .warnings[0]
                  .find("names no key unwrap command"),
              std::string::npos);
}

TEST(PgDatakeyJson, EscapesStrings) {
    EXPECT_EQ(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
    JsonWriter w;
    w.begin_object();
    w.key("a");
    w.begin_array();
    w.number(1);
    w.boolean(false);
    w.null();
    w.end_array();
    w.key("b");
    w.string("x");
    w.end_object();
    EXPECT_EQ(w.text(), "{\"a\":[1,false,null],\"b\":\"x\"}");
}
