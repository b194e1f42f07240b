// The C ABI: errors as objects, no exception crossing, strings owned by the
// caller.
#include "env_guard.hpp"
#include "fe_datakey/fe_datakey.h"
#include "temp_dir.hpp"

#include <getopt.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <vector>

TEST(CApi, ExtractResolveAndFree) {
    EnvGuard env;
    env.set("PGDATAKEYWRAPCMD", std::nullopt);
    env.set("PGDATAKEYUNWRAPCMD", "cat \"%p\"");
    std::vector<std::string> args{"initdb", "-y", "--key-wrap-command", "cat > \"%p\"", "-D", "d"};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    int argc = static_cast<int>(args.size());
    fe_datakey_error* err = nullptr;
    fe_datakey_options* opts = fe_datakey_options_extract(
        &argc, argv.data(),
        FE_DATAKEY_OPT_WRAP | FE_DATAKEY_OPT_UNWRAP | FE_DATAKEY_OPT_NO_KEY_WRAP, "D:y", nullptr,
        &err);
    ASSERT_NE(opts, nullptr);
    EXPECT_EQ(err, nullptr);
    EXPECT_EQ(argc, 4);
    EXPECT_STREQ(argv[3], "d");
    EXPECT_EQ(argv[4], nullptr);
    EXPECT_EQ(fe_datakey_options_on_command_line(opts), 1);
    char* wrap = nullptr;
    char* unwrap = nullptr;
    ASSERT_EQ(fe_datakey_options_command_pair(opts, &wrap, &unwrap, &err), 1);
    EXPECT_STREQ(wrap, "cat > \"%p\"");
    EXPECT_STREQ(unwrap, "cat \"%p\"");
    fe_datakey_free(wrap);
    fe_datakey_free(unwrap);
    fe_datakey_options_free(opts);
}

TEST(CApi, ErrorsCarryMessageDetailHint) {
    EnvGuard env;
    env.set("PGDATAKEYWRAPCMD", std::nullopt);
    env.set("PGDATAKEYUNWRAPCMD", std::nullopt);
    char prog[] = "pg_rewind";
    char* argv[] = {prog, nullptr};
    int argc = 1;
    fe_datakey_error* err = nullptr;
    fe_datakey_options* opts =
        fe_datakey_options_extract(&argc, argv, FE_DATAKEY_OPT_UNWRAP, "", nullptr, &err);
    ASSERT_NE(opts, nullptr);
    EXPECT_EQ(fe_datakey_options_is_set(opts, FE_DATAKEY_ROLE_UNWRAP), 0);
    EXPECT_EQ(fe_datakey_options_command(opts, FE_DATAKEY_ROLE_UNWRAP, &err), nullptr);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_COMMAND_MISSING);
    EXPECT_STREQ(fe_datakey_error_message(err), "key unwrap command not specified");
    EXPECT_NE(fe_datakey_error_detail(err), nullptr);
    EXPECT_NE(fe_datakey_error_hint(err), nullptr);
    fe_datakey_error_free(err);
    fe_datakey_options_free(opts);
}

TEST(CApi, CommandValidate) {
    fe_datakey_error* err = nullptr;
    EXPECT_EQ(fe_datakey_command_validate(FE_DATAKEY_ROLE_UNWRAP, "cat \"%p\"", "x", &err), 1);
    EXPECT_EQ(fe_datakey_command_validate(FE_DATAKEY_ROLE_UNWRAP, "-", "x", &err), 1);
    EXPECT_EQ(err, nullptr);
    EXPECT_EQ(fe_datakey_command_validate(FE_DATAKEY_ROLE_UNWRAP, "cat key.bin",
                                          "data_encryption_key_unwrap_command", &err),
              0);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_COMMAND_INVALID);
    EXPECT_STREQ(fe_datakey_error_message(err), "key unwrap command does not contain %p");
    EXPECT_NE(std::string(fe_datakey_error_detail(err)).find("data_encryption_key_unwrap_command"),
              std::string::npos);
    fe_datakey_error_free(err);
    err = nullptr;
    EXPECT_EQ(fe_datakey_command_validate(FE_DATAKEY_ROLE_WRAP, "", "x", &err), 0);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_COMMAND_EMPTY);
    fe_datakey_error_free(err);
}

TEST(CApi, UsageErrorDoesNotThrow) {
    char prog[] = "x";
    char opt[] = "--key-unwrap-command";
    char* argv[] = {prog, opt, nullptr};
    int argc = 2;
    fe_datakey_error* err = nullptr;
    EXPECT_EQ(fe_datakey_options_extract(&argc, argv, FE_DATAKEY_OPT_UNWRAP, "", nullptr, &err),
              nullptr);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_USAGE);
    EXPECT_EQ(fe_datakey_error_detail(err), nullptr);
    fe_datakey_error_free(err);
}

TEST(CApi, KeyStoreRoundTripAndChecks) {
    TempDir dir;
    fe_datakey_error* err = nullptr;
    fe_datakey_key* key = fe_datakey_key_generate(256, &err);
    ASSERT_NE(key, nullptr);
    EXPECT_EQ(fe_datakey_key_bits(key), 256);
    EXPECT_EQ(fe_datakey_key_length(key), 96u);
    ASSERT_EQ(fe_datakey_store_create(dir.path().c_str(), "cat > \"%p\"", key, 0, &err), 1)
        << fe_datakey_error_message(err);
    struct stat st;
    EXPECT_EQ(stat((dir / FE_DATAKEY_KEY_FILE).c_str(), &st), 0);
    fe_datakey_key* loaded = fe_datakey_store_load(dir.path().c_str(), "cat \"%p\"", 0, &err);
    ASSERT_NE(loaded, nullptr) << fe_datakey_error_message(err);
    ASSERT_EQ(fe_datakey_key_length(loaded), fe_datakey_key_length(key));
    EXPECT_EQ(std::memcmp(fe_datakey_key_bytes(loaded), fe_datakey_key_bytes(key), 96), 0);

    fe_datakey_check a{}, b{};
    fe_datakey_key_check_of(key, &a);
    ASSERT_EQ(fe_datakey_store_read_check(dir.path().c_str(), &b, &err), 1);
    EXPECT_EQ(fe_datakey_check_equal(&a, &b), 1);
    EXPECT_EQ(std::strlen(a.kcv), size_t(FE_DATAKEY_KCV_HEX_LEN));
    std::string text = read_text(dir / FE_DATAKEY_CHECK_FILE);
    fe_datakey_check parsed{};
    ASSERT_EQ(fe_datakey_check_parse(text.data(), text.size(), &parsed, &err), 1);
    EXPECT_EQ(fe_datakey_check_equal(&a, &parsed), 1);
    EXPECT_EQ(fe_datakey_check_parse("garbage", 7, &parsed, &err), 0);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_CHECK_INVALID);
    fe_datakey_error_free(err);
    err = nullptr;

    fe_datakey_key* other = fe_datakey_key_generate(256, &err);
    fe_datakey_check c{};
    fe_datakey_key_check_of(other, &c);
    EXPECT_EQ(fe_datakey_check_equal(&a, &c), 0);

    // The wrong key from the unwrap command is an error object, not garbage.
    EXPECT_EQ(fe_datakey_store_load(dir.path().c_str(), "head -c 96 /dev/urandom # %p", 0, &err),
              nullptr);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_KEY_MISMATCH);
    fe_datakey_error_free(err);
    fe_datakey_key_free(other);
    fe_datakey_key_free(loaded);
    fe_datakey_key_free(key);
}

TEST(CApi, ConfAndQuoting) {
    TempDir dir;
    std::string conf = dir / "postgresql.conf";
    write_text(conf, "port = 5432\n");
    fe_datakey_error* err = nullptr;
    EXPECT_EQ(fe_datakey_conf_get_unwrap_command(conf.c_str(), &err), nullptr);
    EXPECT_EQ(err, nullptr);
    ASSERT_EQ(fe_datakey_conf_set_unwrap_command(conf.c_str(), "a 'b' \\ %p", &err), 1);
    char* got = fe_datakey_conf_get_unwrap_command(conf.c_str(), &err);
    ASSERT_NE(got, nullptr);
    EXPECT_STREQ(got, "a 'b' \\ %p");
    fe_datakey_free(got);
    char* q = fe_datakey_conf_quote("it's");
    EXPECT_STREQ(q, "'it''s'");
    fe_datakey_free(q);
    char* s = fe_datakey_shell_quote("it's");
    EXPECT_STREQ(s, "'it'\\''s'");
    fe_datakey_free(s);
    EXPECT_EQ(fe_datakey_conf_set_unwrap_command((dir / "none").c_str(), "x %p", &err), 0);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_IO);
    fe_datakey_error_free(err);
}

TEST(CApi, ErrorPrefixKeepsCodeDetailAndHint) {
    fe_datakey_error* err =
        fe_datakey_error_new(FE_DATAKEY_E_KEY_MISMATCH, "keys differ", "A detail.", "A hint.");
    ASSERT_NE(err, nullptr);
    fe_datakey_error_prefix(err, "could not load the key of the old cluster: ");
    EXPECT_STREQ(fe_datakey_error_message(err),
                 "could not load the key of the old cluster: keys differ");
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_KEY_MISMATCH);
    EXPECT_STREQ(fe_datakey_error_detail(err), "A detail.");
    EXPECT_STREQ(fe_datakey_error_hint(err), "A hint.");
    fe_datakey_error_free(err);
    // A NULL error (what an out-of-memory failure leaves) stays NULL and
    // reads as out of memory; prefixing it must not crash.
    fe_datakey_error* oom = nullptr;
    fe_datakey_error_prefix(oom, "ignored: ");
    EXPECT_EQ(oom, nullptr);
    EXPECT_STREQ(fe_datakey_error_message(oom), "out of memory");
    EXPECT_EQ(fe_datakey_error_code(oom), FE_DATAKEY_E_INTERNAL);
    EXPECT_EQ(fe_datakey_error_detail(oom), nullptr);
}

TEST(CApi, ConfiguredUnwrapCommandWithoutAutoConf) {
    TempDir data, conf;
    fe_datakey_error* err = nullptr;
    // A data directory with neither file: nothing set, and no error.
    EXPECT_EQ(fe_datakey_configured_unwrap_command(data.path().c_str(), nullptr, &err), nullptr);
    EXPECT_EQ(err, nullptr);
    // postgresql.conf alone (no postgresql.auto.conf), in another directory.
    write_text(conf / "postgresql.conf", "data_encryption_key_unwrap_command = 'a %p'\n");
    std::string conf_file = conf / "postgresql.conf";
    char* command =
        fe_datakey_configured_unwrap_command(data.path().c_str(), conf_file.c_str(), &err);
    ASSERT_NE(command, nullptr) << fe_datakey_error_message(err);
    EXPECT_STREQ(command, "a %p");
    fe_datakey_free(command);
    // postgresql.auto.conf in the data directory wins.
    write_text(data / "postgresql.auto.conf", "data_encryption_key_unwrap_command = 'b %p'\n");
    command = fe_datakey_configured_unwrap_command(data.path().c_str(), conf_file.c_str(), &err);
    ASSERT_NE(command, nullptr);
    EXPECT_STREQ(command, "b %p");
    fe_datakey_free(command);
}

TEST(CApi, StoreCheckStateAgainstPgControl) {
    TempDir dir;
    fe_datakey_error* err = nullptr;
    // Not encrypted and no key file: fine; "encrypted" without a key file: not.
    EXPECT_EQ(fe_datakey_store_check_state(dir.path().c_str(), 0, 0, &err), 1);
    EXPECT_EQ(fe_datakey_store_check_state(dir.path().c_str(), 1, 128, &err), 0);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_IO);
    EXPECT_NE(std::strstr(fe_datakey_error_message(err), "is missing"), nullptr);
    fe_datakey_error_free(err);
    err = nullptr;

    fe_datakey_key* key = fe_datakey_key_generate(256, &err);
    ASSERT_NE(key, nullptr);
    ASSERT_EQ(fe_datakey_store_create(dir.path().c_str(), "cat > \"%p\"", key, 0, &err), 1);
    fe_datakey_key_free(key);
    EXPECT_EQ(
        fe_datakey_store_check_state(dir.path().c_str(), FE_DATAKEY_CONTROL_VERSION, 256, &err), 1);
    // A key file where pg_control says "not encrypted".
    EXPECT_EQ(fe_datakey_store_check_state(dir.path().c_str(), 0, 0, &err), 0);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_NOT_ENCRYPTED);
    fe_datakey_error_free(err);
    err = nullptr;
    // Key lengths that disagree, and versions or lengths pg_control cannot hold.
    EXPECT_EQ(fe_datakey_store_check_state(dir.path().c_str(), 1, 128, &err), 0);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_CHECK_INVALID);
    fe_datakey_error_free(err);
    err = nullptr;
    EXPECT_EQ(fe_datakey_store_check_state(dir.path().c_str(), 2, 256, &err), 0);
    fe_datakey_error_free(err);
    err = nullptr;
    EXPECT_EQ(fe_datakey_store_check_state(dir.path().c_str(), 1, 192, &err), 0);
    fe_datakey_error_free(err);
}

TEST(CApi, CheckPath) {
    fe_datakey_error* err = nullptr;
    EXPECT_EQ(fe_datakey_check_path("/srv/old cluster/pg_encryption/key.bin", &err), 1);
    EXPECT_EQ(err, nullptr);
    for (const char* bad : {"/a\"b", "/a$b", "/a`b", "/a\\b", "/a\nb"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(fe_datakey_check_path(bad, &err), 0);
        ASSERT_NE(err, nullptr);
        EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_UNSAFE_PATH);
        fe_datakey_error_free(err);
        err = nullptr;
    }
}

TEST(CApi, CheckKeyFileFollowsALinkButWantsARegularFile) {
    TempDir dir;
    std::string file = dir / "key.bin";
    ASSERT_EQ(close(open(file.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
    ASSERT_EQ(symlink(file.c_str(), (dir / "link.bin").c_str()), 0);
    ASSERT_EQ(mkfifo((dir / "fifo.bin").c_str(), 0600), 0);
    fe_datakey_error* err = nullptr;
    EXPECT_EQ(fe_datakey_check_key_file(file.c_str(), &err), 1);
    EXPECT_EQ(fe_datakey_check_key_file((dir / "link.bin").c_str(), &err), 1);
    EXPECT_EQ(err, nullptr);
    EXPECT_EQ(fe_datakey_check_key_file((dir / "fifo.bin").c_str(), &err), 0);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_IO);
    EXPECT_STREQ(fe_datakey_error_detail(err), "It is a FIFO.");
    fe_datakey_error_free(err);
    err = nullptr;
    EXPECT_EQ(fe_datakey_check_key_file((dir / "none.bin").c_str(), &err), 0);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_IO);
    fe_datakey_error_free(err);
}

namespace {
int always_interrupt() {
    return 1;
}
} // namespace

TEST(CApi, InterruptCheckStopsACommand) {
    TempDir dir;
    write_text(dir / "key.bin", "k");
    fe_datakey_set_interrupt_check(always_interrupt);
    fe_datakey_error* err = nullptr;
    fe_datakey_key* key = fe_datakey_load_key_file(
        (dir / "key.bin").c_str(), "sleep 600; cat \"%p\"", 0, nullptr, nullptr, &err);
    fe_datakey_set_interrupt_check(nullptr);
    EXPECT_EQ(key, nullptr);
    ASSERT_NE(err, nullptr);
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_INTERRUPTED);
    EXPECT_STREQ(fe_datakey_error_message(err), "key unwrap command was interrupted");
    fe_datakey_error_free(err);
}

// No exception can cross into the C caller (initdb, the postmaster): every
// entry point is noexcept, so the compiler holds each one to it.
static_assert(noexcept(fe_datakey_conf_quote(nullptr)));
static_assert(noexcept(fe_datakey_shell_quote(nullptr)));
static_assert(noexcept(fe_datakey_key_check_of(nullptr, nullptr)));
static_assert(noexcept(fe_datakey_check_equal(nullptr, nullptr)));
static_assert(noexcept(fe_datakey_error_set(nullptr, 0, nullptr, nullptr, nullptr)));
static_assert(noexcept(fe_datakey_pair_new(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr)));
static_assert(noexcept(fe_datakey_pair_set_directory(nullptr, 0, nullptr, nullptr, 0, 0, 0,
                                                     nullptr)));
static_assert(noexcept(fe_datakey_pair_set_remote(nullptr, 0, 0, 0, nullptr, 0, nullptr)));
static_assert(noexcept(fe_datakey_pair_compare(nullptr, nullptr)));
static_assert(noexcept(fe_datakey_pair_server_options(nullptr)));
static_assert(noexcept(fe_datakey_pair_free(nullptr)));
static_assert(noexcept(fe_datakey_error_new(0, nullptr, nullptr, nullptr)));
static_assert(noexcept(fe_datakey_error_prefix(nullptr, nullptr)));
static_assert(noexcept(fe_datakey_options_extract(nullptr, nullptr, 0, nullptr, nullptr, nullptr)));
static_assert(noexcept(fe_datakey_options_on_command_line(nullptr)));
static_assert(noexcept(fe_datakey_options_is_set(nullptr, 0)));
static_assert(noexcept(fe_datakey_key_generate(0, nullptr)));
static_assert(noexcept(fe_datakey_store_load(nullptr, nullptr, 0, nullptr)));
static_assert(noexcept(fe_datakey_store_check_state(nullptr, 0, 0, nullptr)));
static_assert(noexcept(fe_datakey_configured_unwrap_command(nullptr, nullptr, nullptr)));
static_assert(noexcept(fe_datakey_set_interrupt_check(nullptr)));

TEST(CApi, AnEmptyKeyCheckEqualsNothing) {
    // What fe_datakey_key_check_of leaves when it fails: never "same key".
    fe_datakey_check empty{}, also_empty{};
    EXPECT_EQ(fe_datakey_check_equal(&empty, &also_empty), 0);
    fe_datakey_error* err = nullptr;
    fe_datakey_key* key = fe_datakey_key_generate(128, &err);
    ASSERT_NE(key, nullptr);
    fe_datakey_check real{};
    fe_datakey_key_check_of(key, &real);
    EXPECT_EQ(fe_datakey_check_equal(&real, &real), 1);
    EXPECT_EQ(fe_datakey_check_equal(&real, &empty), 0);
    EXPECT_EQ(fe_datakey_check_equal(&empty, &real), 0);
    fe_datakey_key_free(key);
}

namespace {

// Expects `err` to be an invalid-argument error naming `name`, and frees it.
void expect_invalid_argument(fe_datakey_error*& err, const char* name) {
    ASSERT_NE(err, nullptr) << name;
    EXPECT_EQ(fe_datakey_error_code(err), FE_DATAKEY_E_INVALID_ARGUMENT) << name;
    EXPECT_EQ(
        std::string(fe_datakey_error_message(err)).rfind("invalid argument to fe_datakey_", 0), 0u)
        << fe_datakey_error_message(err);
    ASSERT_NE(fe_datakey_error_detail(err), nullptr);
    EXPECT_EQ(std::string(fe_datakey_error_detail(err)),
              std::string("The argument ") + name + " is NULL.");
    fe_datakey_error_free(err);
    err = nullptr;
}

} // namespace

// Every entry point, with each pointer it takes NULL: a defined error or
// result, never a crash (run under the asan preset as well).
TEST(CApi, EveryEntryPointHasADefinedResultForNullArguments) {
    EnvGuard env;
    env.set("PGDATAKEYWRAPCMD", "cat > \"%p\"");
    env.set("PGDATAKEYUNWRAPCMD", "cat \"%p\"");
    TempDir dir;
    fe_datakey_error* err = nullptr;

    // Errors.
    EXPECT_STREQ(fe_datakey_error_message(nullptr), "out of memory");
    EXPECT_EQ(fe_datakey_error_detail(nullptr), nullptr);
    EXPECT_EQ(fe_datakey_error_hint(nullptr), nullptr);
    EXPECT_EQ(fe_datakey_error_code(nullptr), FE_DATAKEY_E_INTERNAL);
    fe_datakey_error_free(nullptr);
    fe_datakey_error* made = fe_datakey_error_new(FE_DATAKEY_E_IO, nullptr, nullptr, nullptr);
    ASSERT_NE(made, nullptr);
    EXPECT_STREQ(fe_datakey_error_message(made), "");
    fe_datakey_error_prefix(made, nullptr);
    EXPECT_STREQ(fe_datakey_error_message(made), "");
    fe_datakey_error_prefix(nullptr, "x");
    fe_datakey_error_prefix(nullptr, nullptr);
    fe_datakey_error_free(made);
    fe_datakey_free(nullptr);

    // Options.
    char prog[] = "initdb";
    char* argv[] = {prog, nullptr};
    int argc = 1;
    EXPECT_EQ(fe_datakey_options_extract(nullptr, argv, FE_DATAKEY_OPT_WRAP, "", nullptr, &err),
              nullptr);
    expect_invalid_argument(err, "argc");
    EXPECT_EQ(fe_datakey_options_extract(&argc, nullptr, FE_DATAKEY_OPT_WRAP, "", nullptr, &err),
              nullptr);
    expect_invalid_argument(err, "argv");
    EXPECT_EQ(fe_datakey_options_extract(nullptr, nullptr, 0, nullptr, nullptr, nullptr), nullptr);
    fe_datakey_options* opts = fe_datakey_options_extract(
        &argc, argv, FE_DATAKEY_OPT_WRAP | FE_DATAKEY_OPT_UNWRAP, nullptr, nullptr, &err);
    ASSERT_NE(opts, nullptr) << fe_datakey_error_message(err);
    fe_datakey_options_free(nullptr);
    EXPECT_EQ(fe_datakey_options_on_command_line(nullptr), 0);
    EXPECT_EQ(fe_datakey_options_is_set(nullptr, FE_DATAKEY_ROLE_WRAP), 0);
    EXPECT_EQ(fe_datakey_options_command(nullptr, FE_DATAKEY_ROLE_WRAP, &err), nullptr);
    expect_invalid_argument(err, "opts");
    EXPECT_EQ(fe_datakey_options_command(nullptr, FE_DATAKEY_ROLE_WRAP, nullptr), nullptr);
    char* wrap = reinterpret_cast<char*>(1);
    char* unwrap = nullptr;
    EXPECT_EQ(fe_datakey_options_command_pair(nullptr, &wrap, &unwrap, &err), 0);
    expect_invalid_argument(err, "opts");
    EXPECT_EQ(fe_datakey_options_command_pair(opts, nullptr, &unwrap, &err), 0);
    expect_invalid_argument(err, "wrap");
    EXPECT_EQ(fe_datakey_options_command_pair(opts, &wrap, nullptr, &err), 0);
    expect_invalid_argument(err, "unwrap");
    EXPECT_EQ(fe_datakey_options_command_pair(opts, nullptr, nullptr, nullptr), 0);
    fe_datakey_options_free(opts);
    EXPECT_EQ(fe_datakey_command_validate(FE_DATAKEY_ROLE_WRAP, nullptr, "x", &err), 0);
    expect_invalid_argument(err, "command");
    EXPECT_EQ(fe_datakey_command_validate(FE_DATAKEY_ROLE_WRAP, "cat %p", nullptr, &err), 0);
    expect_invalid_argument(err, "origin");
    EXPECT_EQ(fe_datakey_check_path(nullptr, &err), 0);
    expect_invalid_argument(err, "path");
    EXPECT_EQ(fe_datakey_check_path(nullptr, nullptr), 0);

    // Keys and checks.
    EXPECT_EQ(fe_datakey_key_bits(nullptr), 0);
    EXPECT_EQ(fe_datakey_key_length(nullptr), 0u);
    EXPECT_EQ(fe_datakey_key_bytes(nullptr), nullptr);
    fe_datakey_key_free(nullptr);
    fe_datakey_check check;
    std::memset(&check, 'x', sizeof check);
    fe_datakey_key_check_of(nullptr, &check);
    EXPECT_EQ(check.kcv[0], '\0');
    EXPECT_EQ(check.bits, 0);
    fe_datakey_key* key = fe_datakey_key_generate(128, &err);
    ASSERT_NE(key, nullptr);
    fe_datakey_key_check_of(key, nullptr);
    EXPECT_EQ(fe_datakey_check_parse(nullptr, 10, &check, &err), 0);
    expect_invalid_argument(err, "text");
    EXPECT_EQ(fe_datakey_check_parse("x", 1, nullptr, &err), 0);
    expect_invalid_argument(err, "out");
    fe_datakey_key_check_of(key, &check);
    EXPECT_EQ(fe_datakey_check_equal(nullptr, &check), 0);
    EXPECT_EQ(fe_datakey_check_equal(&check, nullptr), 0);
    EXPECT_EQ(fe_datakey_check_equal(nullptr, nullptr), 0);

    // The key store and the configuration.
    EXPECT_EQ(fe_datakey_store_check_state(nullptr, 0, 0, &err), 0);
    expect_invalid_argument(err, "datadir");
    const char* d = dir.path().c_str();
    EXPECT_EQ(fe_datakey_store_create(nullptr, "-", key, 0, &err), 0);
    expect_invalid_argument(err, "datadir");
    EXPECT_EQ(fe_datakey_store_create(d, nullptr, key, 0, &err), 0);
    expect_invalid_argument(err, "wrap_command");
    EXPECT_EQ(fe_datakey_store_create(d, "-", nullptr, 0, &err), 0);
    expect_invalid_argument(err, "key");
    EXPECT_EQ(fe_datakey_store_load(nullptr, "-", 0, &err), nullptr);
    expect_invalid_argument(err, "datadir");
    EXPECT_EQ(fe_datakey_store_load(d, nullptr, 0, &err), nullptr);
    expect_invalid_argument(err, "unwrap_command");
    EXPECT_EQ(fe_datakey_store_read_check(nullptr, &check, &err), 0);
    expect_invalid_argument(err, "datadir");
    EXPECT_EQ(fe_datakey_store_read_check(d, nullptr, &err), 0);
    expect_invalid_argument(err, "out");
    int found = 0;
    EXPECT_EQ(fe_datakey_load_key_file(nullptr, "-", 0, &check, &found, &err), nullptr);
    expect_invalid_argument(err, "path");
    EXPECT_EQ(fe_datakey_load_key_file("key.bin", nullptr, 0, nullptr, nullptr, &err), nullptr);
    expect_invalid_argument(err, "unwrap_command");
    EXPECT_EQ(fe_datakey_conf_set_unwrap_command(nullptr, "cat %p", &err), 0);
    expect_invalid_argument(err, "conf_path");
    EXPECT_EQ(fe_datakey_conf_set_unwrap_command((dir / "postgresql.conf").c_str(), nullptr, &err),
              0);
    expect_invalid_argument(err, "command");
    EXPECT_EQ(fe_datakey_conf_get_unwrap_command(nullptr, &err), nullptr);
    expect_invalid_argument(err, "conf_path");
    EXPECT_EQ(fe_datakey_configured_unwrap_command(nullptr, nullptr, &err), nullptr);
    expect_invalid_argument(err, "datadir");
    EXPECT_EQ(fe_datakey_configured_unwrap_command(nullptr, nullptr, nullptr), nullptr);
    EXPECT_EQ(fe_datakey_conf_quote(nullptr), nullptr);
    EXPECT_EQ(fe_datakey_shell_quote(nullptr), nullptr);
    fe_datakey_key_free(key);
}

TEST(CApi, AKeyCheckValueIsReadNoFurtherThanItsArray) {
    // kcv filled to the end with no NUL, in blocks that end with the array:
    // compared by its 33 bytes, not beyond (which asan reports as a heap
    // over-read; without asan the old code compared what lay beyond).
    const std::size_t size = offsetof(fe_datakey_check, kcv) + FE_DATAKEY_KCV_HEX_LEN + 1;
    auto* a = static_cast<fe_datakey_check*>(std::malloc(size));
    auto* b = static_cast<fe_datakey_check*>(std::malloc(size));
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    for (fe_datakey_check* c : {a, b}) {
        c->version = 1;
        c->bits = 128;
        std::memset(c->kcv, 'a', sizeof c->kcv);
    }
    EXPECT_EQ(fe_datakey_check_equal(a, b), 1);
    b->kcv[FE_DATAKEY_KCV_HEX_LEN] = 'b';
    EXPECT_EQ(fe_datakey_check_equal(a, b), 0);
    std::free(a);
    std::free(b);
}
