// Key files in a data directory: creation, modes, durable replacement,
// loading and verification through real commands.
#include "fe_datakey/error.hpp"
#include "fe_datakey/store.hpp"

#include "library_helpers.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace fe_datakey;

namespace {

const char* cat_wrap = "cat > \"%p\"";
const char* cat_unwrap = "cat \"%p\"";

mode_t mode_of(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0)
        return 07777;
    return st.st_mode & 07777;
}

bool exists(const std::string& path) {
    return access(path.c_str(), F_OK) == 0;
}

// A data directory (mode 0700 as initdb makes it) inside a temporary directory.
class Store : public ::testing::Test {
protected:
    void SetUp() override {
        datadir = tmp / "data";
        ASSERT_EQ(mkdir(datadir.c_str(), 0700), 0);
        ASSERT_EQ(chmod(datadir.c_str(), 0700), 0);
    }
    std::string in_data(const std::string& rel) const { return datadir + "/" + rel; }
    RunOptions opts() const { return RunOptions{}; }

    TempDir tmp;
    std::string datadir;
};

} // namespace

TEST_F(Store, CreateAndLoadRoundTrip) {
    EXPECT_FALSE(exists(in_data(key_file)));
    Key key = Key::generate(128);
    create_key_store(datadir, cat_wrap, key, opts());
    EXPECT_TRUE(exists(in_data(key_file)));
    EXPECT_EQ(read_text(in_data(key_file)), text_of(key.bytes()));
    EXPECT_EQ(read_key_check(datadir), KeyCheck::of(key));
    EXPECT_EQ(read_text(in_data(key_check_file)), KeyCheck::of(key).serialize());
    EXPECT_FALSE(exists(in_data("pg_encryption/key.bin.tmp")));
    EXPECT_FALSE(exists(in_data("pg_encryption/key.check.tmp")));

    Key loaded = load_key(datadir, cat_unwrap, opts());
    EXPECT_EQ(loaded.bits(), 128);
    EXPECT_TRUE(loaded.bytes().equals(key.bytes()));
}

// initdb --no-clean keeps the data directory of a failed initdb: a failed
// wrap must leave no key check behind (the check is written after the wrap).
TEST_F(Store, FailedWrapLeavesNeitherKeyFileNorKeyCheck) {
    EXPECT_THROW(create_key_store(datadir, "cat > /dev/null; exit 3", Key::generate(128), opts()),
                 Error);
    EXPECT_FALSE(exists(in_data(key_file)));
    EXPECT_FALSE(exists(in_data(key_check_file)));
    EXPECT_FALSE(exists(in_data("pg_encryption/key.bin.tmp")));
}

TEST_F(Store, ModesWithoutGroupAccess) {
    mode_t old = umask(0); // the library must not depend on the umask
    create_key_store(datadir, cat_wrap, Key::generate(256), opts());
    umask(old);
    EXPECT_FALSE(group_access(datadir));
    EXPECT_EQ(mode_of(in_data(key_directory)), 0700u);
    EXPECT_EQ(mode_of(in_data(key_file)), 0600u);
    EXPECT_EQ(mode_of(in_data(key_check_file)), 0600u);
}

TEST_F(Store, ModesWithGroupAccess) {
    ASSERT_EQ(chmod(datadir.c_str(), 0750), 0);
    EXPECT_TRUE(group_access(datadir));
    create_key_store(datadir, cat_wrap, Key::generate(128), opts());
    EXPECT_EQ(mode_of(in_data(key_directory)), 0750u);
    EXPECT_EQ(mode_of(in_data(key_file)), 0640u);
    EXPECT_EQ(mode_of(in_data(key_check_file)), 0640u);
}

TEST_F(Store, PlaintextModeStoresAndReadsTheKeyAsItIs) {
    Key key = Key::generate(256);
    create_key_store(datadir, "-", key, opts());
    EXPECT_EQ(read_text(in_data(key_file)), text_of(key.bytes()));
    EXPECT_EQ(mode_of(in_data(key_file)), 0600u);
    EXPECT_TRUE(load_key(datadir, "-", opts()).bytes().equals(key.bytes()));

    write_text(in_data(key_file), "");
    EXPECT_EQ(error_of([&] { load_key(datadir, "-", opts()); }).code(), ErrorCode::output_empty);
    write_text(in_data(key_file), "short");
    EXPECT_EQ(error_of([&] { load_key(datadir, "-", opts()); }).code(), ErrorCode::output_short);
}

// No command runs in "-" mode: the messages speak of the key file.
TEST_F(Store, PlaintextModeErrorsSpeakOfTheKeyFile) {
    Key key = Key::generate(128);
    create_key_store(datadir, "-", key, opts());
    std::string quoted = "\"" + in_data(key_file) + "\"";
    auto expect_about_the_file = [](const Error& e) {
        EXPECT_EQ(e.hint().find("unwrap command must write"), std::string::npos) << e.hint();
        EXPECT_EQ(e.detail().find("standard output"), std::string::npos) << e.detail();
        EXPECT_EQ(e.hint().find("passphrase"), std::string::npos) << e.hint();
    };

    write_text(in_data(key_file), "short");
    Error e = error_of([&] { load_key(datadir, "-", opts()); });
    EXPECT_EQ(e.code(), ErrorCode::output_short);
    EXPECT_EQ(e.message(), "data encryption key from key file " + quoted + " is too short");
    EXPECT_EQ(e.detail(), "Expected 64 bytes, got 5.");
    EXPECT_NE(e.hint().find("stored without wrapping (\"-\") must be exactly the plaintext key"),
              std::string::npos)
        << e.hint();
    expect_about_the_file(e);

    write_text(in_data(key_file), text_of(key.bytes()) + "\n");
    e = error_of([&] { load_key(datadir, "-", opts()); });
    EXPECT_EQ(e.code(), ErrorCode::output_long);
    EXPECT_EQ(e.message(), "data encryption key from key file " + quoted + " is too long");
    expect_about_the_file(e);

    write_text(in_data(key_file), text_of(Key::generate(128).bytes()));
    e = error_of([&] { load_key(datadir, "-", opts()); });
    EXPECT_EQ(e.code(), ErrorCode::key_mismatch);
    expect_about_the_file(e);
    EXPECT_NE(e.hint().find("key file probably belongs to another cluster"), std::string::npos)
        << e.hint();

    // A key file named by the user with no key check beside it: only its length.
    write_text(tmp / "lone.bin", "five!");
    e = error_of([&] { load_key_file(tmp / "lone.bin", "-", opts()); });
    EXPECT_EQ(e.code(), ErrorCode::output_short);
    EXPECT_NE(e.message().find("has an invalid length"), std::string::npos) << e.message();
    expect_about_the_file(e);

    // An unwrap command's wrong output keeps the hint about the command.
    write_text(in_data(key_file), "short");
    e = error_of([&] { load_key(datadir, cat_unwrap, opts()); });
    EXPECT_EQ(e.code(), ErrorCode::output_short);
    EXPECT_NE(e.hint().find("An unwrap command must write exactly the plaintext key"),
              std::string::npos);
}

TEST_F(Store, OpensslPassphraseRoundTrip) {
    write_text(tmp / "pass", "correct horse battery staple\n");
    write_text(tmp / "wrong", "incorrect horse\n");
    std::string wrap =
        "openssl enc -aes-256-cbc -pbkdf2 -pass file:" + tmp / "pass" + " -out \"%p\"";
    std::string unwrap =
        "openssl enc -d -aes-256-cbc -pbkdf2 -pass file:" + tmp / "pass" + " -in \"%p\"";
    Key key = Key::generate(128);
    create_key_store(datadir, wrap, key, opts());
    // Wrapped: salted ciphertext, not the key.
    std::string stored = read_text(in_data(key_file));
    EXPECT_EQ(stored.compare(0, 8, "Salted__"), 0);
    EXPECT_EQ(stored.find(text_of(key.bytes())), std::string::npos);
    EXPECT_EQ(mode_of(in_data(key_file)), 0600u);

    EXPECT_TRUE(load_key(datadir, unwrap, opts()).bytes().equals(key.bytes()));

    // A wrong passphrase never yields a key: openssl fails, or (rarely, when
    // the padding happens to look valid) the output does not verify.
    std::string wrong = "openssl enc -d -aes-256-cbc -pbkdf2 -pass file:" + tmp / "wrong" +
                        " -in \"%p\" 2>/dev/null";
    ErrorCode code = error_of([&] { load_key(datadir, wrong, opts()); }).code();
    EXPECT_TRUE(code == ErrorCode::command_failed || code == ErrorCode::key_mismatch ||
                code == ErrorCode::output_short || code == ErrorCode::output_long)
        << static_cast<int>(code);
}

TEST_F(Store, UnwrapOutputErrorsAreDistinct) {
    Key key = Key::generate(128);
    create_key_store(datadir, cat_wrap, key, opts());
    Key other = Key::generate(128);
    write_text(tmp / "other.bin", text_of(other.bytes()));

    Error empty = error_of([&] { load_key(datadir, "cat \"%p\" > /dev/null", opts()); });
    EXPECT_EQ(empty.code(), ErrorCode::output_empty);
    EXPECT_EQ(empty.message(), "key unwrap command produced no output");

    Error short_ = error_of([&] { load_key(datadir, "head -c 10 \"%p\"", opts()); });
    EXPECT_EQ(short_.code(), ErrorCode::output_short);
    EXPECT_NE(short_.detail().find("Expected 64 bytes, got 10."), std::string::npos);

    Error long_ = error_of([&] { load_key(datadir, "cat \"%p\" \"%p\"", opts()); });
    EXPECT_EQ(long_.code(), ErrorCode::output_long);
    EXPECT_NE(long_.detail().find("Expected 64 bytes, got 128."), std::string::npos);

    Error wrong = error_of([&] { load_key(datadir, "cat " + tmp / "other.bin", opts()); });
    EXPECT_EQ(wrong.code(), ErrorCode::key_mismatch);
    EXPECT_NE(wrong.hint().find("passphrase"), std::string::npos);
}

TEST_F(Store, UnwrapRunsInTheDataDirectoryWithARelativePath) {
    create_key_store(datadir, "pwd -P > ../wrap-cwd; cat > \"%p\"", Key::generate(128), opts());
    char real[PATH_MAX];
    ASSERT_NE(realpath(datadir.c_str(), real), nullptr);
    EXPECT_EQ(read_text(tmp / "wrap-cwd"), std::string(real) + "\n");

    load_key(datadir, "printf '%s' \"%p\" > ../seen; pwd -P > ../unwrap-cwd; cat \"%p\"", opts());
    EXPECT_EQ(read_text(tmp / "seen"), "pg_encryption/key.bin");
    EXPECT_EQ(read_text(tmp / "unwrap-cwd"), std::string(real) + "\n");
}

TEST_F(Store, MissingOrMalformedKeyCheckIsRefusedBeforeRunningTheCommand) {
    create_key_store(datadir, cat_wrap, Key::generate(128), opts());
    std::string marker_cmd = "touch " + tmp / "ran" + "; cat \"%p\"";

    ASSERT_EQ(unlink(in_data(key_check_file).c_str()), 0);
    Error missing = error_of([&] { load_key(datadir, marker_cmd, opts()); });
    EXPECT_EQ(missing.code(), ErrorCode::check_invalid);
    EXPECT_NE(missing.message().find("key.check"), std::string::npos) << missing.message();
    EXPECT_NE(missing.message().find("missing"), std::string::npos) << missing.message();

    write_text(in_data(key_check_file), "fe_datakey key check 1\nbits 128\nkcv nothex\n");
    Error bad = error_of([&] { load_key(datadir, marker_cmd, opts()); });
    EXPECT_EQ(bad.code(), ErrorCode::check_invalid);
    EXPECT_NE(bad.message().find("key.check"), std::string::npos) << bad.message();
    EXPECT_FALSE(bad.detail().empty());
    EXPECT_FALSE(exists(tmp / "ran"));
}

TEST_F(Store, WrapThatLeavesNoFileOrAnEmptyFileFails) {
    create_key_store(datadir, "-", Key::generate(128), opts());
    std::string before = read_text(in_data(key_file));
    Key key = Key::generate(128);

    Error none = error_of([&] { wrap_key_to(datadir, key_file, "cat > /dev/null", key, opts()); });
    EXPECT_EQ(none.code(), ErrorCode::output_empty);
    Error empty = error_of(
        [&] { wrap_key_to(datadir, key_file, "cat > /dev/null; : > \"%p\"", key, opts()); });
    EXPECT_EQ(empty.code(), ErrorCode::output_empty);
    EXPECT_FALSE(exists(in_data("pg_encryption/key.bin.tmp")));
    EXPECT_EQ(read_text(in_data(key_file)), before);
}

TEST_F(Store, InterruptedWrapLeavesTheOldKeyFileUntouched) {
    Key key = Key::generate(128);
    create_key_store(datadir, cat_wrap, key, opts());
    std::string before = read_text(in_data(key_file));
    Key next = Key::generate(128);
    RunOptions timed = opts();
    timed.timeout_seconds = 1;

    struct Case {
        const char* command;
        ErrorCode code;
        RunOptions options;
    } cases[] = {
        {"head -c 10 > \"%p\"; kill -9 $$", ErrorCode::command_signaled, opts()},
        {"cat > \"%p\"; exit 1", ErrorCode::command_failed, opts()},
        {"cat > \"%p\"; sleep 30", ErrorCode::command_timeout, timed},
    };
    for (const Case& c : cases) {
        Error e = error_of([&] { wrap_key_to(datadir, key_file, c.command, next, c.options); });
        EXPECT_EQ(e.code(), c.code) << c.command;
        EXPECT_EQ(read_text(in_data(key_file)), before) << c.command;
        EXPECT_FALSE(exists(in_data("pg_encryption/key.bin.tmp"))) << c.command;
    }
    EXPECT_TRUE(load_key(datadir, cat_unwrap, opts()).bytes().equals(key.bytes()));
}

TEST_F(Store, StaleTemporaryFileIsReplaced) {
    Key key = Key::generate(128);
    create_key_store(datadir, cat_wrap, key, opts());
    write_text(in_data("pg_encryption/key.bin.tmp"), "stale junk from a crash");
    // `cat >>` would keep the junk if the library did not remove it first.
    wrap_key_to(datadir, key_file, "cat >> \"%p\"", key, opts());
    EXPECT_EQ(read_text(in_data(key_file)), text_of(key.bytes()));
    EXPECT_FALSE(exists(in_data("pg_encryption/key.bin.tmp")));
}

TEST_F(Store, MessagesNeverContainTheCommand) {
    create_key_store(datadir, cat_wrap, Key::generate(128), opts());
    const std::string secret = "s3cret-master-key-xyzzy";
    for (const std::string& command :
         {": " + secret + "; exit 4", "echo " + secret + "; cat \"%p\"", ": " + secret}) {
        Error e = error_of([&] { load_key(datadir, command, opts()); });
        EXPECT_NE(e.code(), ErrorCode::ok) << command;
        for (const std::string* s : {&e.message(), &e.detail(), &e.hint()})
            EXPECT_EQ(s->find("xyzzy"), std::string::npos) << *s;
    }
    Error w = error_of([&] {
        wrap_key_to(datadir, key_file, ": " + secret + "; exit 3", Key::generate(128), opts());
    });
    EXPECT_EQ(w.code(), ErrorCode::command_failed);
    for (const std::string* s : {&w.message(), &w.detail(), &w.hint()})
        EXPECT_EQ(s->find("xyzzy"), std::string::npos) << *s;
}

TEST_F(Store, WriteFileDurably) {
    write_file_durably(datadir, "note", "hello\n");
    EXPECT_EQ(read_text(in_data("note")), "hello\n");
    EXPECT_EQ(mode_of(in_data("note")), 0600u);
    write_file_durably(datadir, "note", "again\n");
    EXPECT_EQ(read_text(in_data("note")), "again\n");
    EXPECT_FALSE(exists(in_data("note.tmp")));
    EXPECT_NO_THROW(fsync_path(datadir, true));
    EXPECT_EQ(error_of([&] { fsync_path(tmp / "nothing", false); }).code(), ErrorCode::io);
}

TEST_F(Store, LoadKeyFileOfAnotherCluster) {
    Key key = Key::generate(256);
    create_key_store(datadir, cat_wrap, key, opts());
    std::optional<KeyCheck> check;
    std::string command = "printf '%s' \"%p\" > " + tmp / "seen" + "; cat \"%p\"";
    Key loaded = load_key_file(in_data(key_file), command, opts(), &check);
    EXPECT_TRUE(loaded.bytes().equals(key.bytes()));
    ASSERT_TRUE(check.has_value());
    EXPECT_EQ(*check, KeyCheck::of(key));
    // The command ran in the other cluster's data directory.
    EXPECT_EQ(read_text(tmp / "seen"), "pg_encryption/key.bin");

    // The same file beside a check that does not match it.
    write_text(in_data(key_check_file), KeyCheck::of(Key::generate(256)).serialize());
    EXPECT_EQ(error_of([&] { load_key_file(in_data(key_file), cat_unwrap, opts()); }).code(),
              ErrorCode::key_mismatch);
}

TEST_F(Store, LoadKeyFileOutsideADataDirectory) {
    Key key = Key::generate(128);
    ASSERT_EQ(mkdir((tmp / "export dir").c_str(), 0700), 0);
    std::string file = tmp / "export dir" + "/my_key-1.bin";
    write_text(file, text_of(key.bytes()));
    std::optional<KeyCheck> check = KeyCheck{};
    std::string command = "printf '%s' \"%p\" > ../seen; cat \"%p\"";
    Key loaded = load_key_file(file, command, opts(), &check);
    EXPECT_TRUE(loaded.bytes().equals(key.bytes()));
    EXPECT_FALSE(check.has_value());
    EXPECT_EQ(read_text(tmp / "seen"), "my_key-1.bin");

    write_text(file, "too short");
    EXPECT_EQ(error_of([&] { load_key_file(file, cat_unwrap, opts()); }).code(),
              ErrorCode::output_short);

    // "-": the file holds the plaintext key and is read as it is.
    write_text(file, text_of(key.bytes()));
    EXPECT_TRUE(load_key_file(file, "-", opts()).bytes().equals(key.bytes()));
}

TEST_F(Store, LoadKeyFileRefusesUnsafeNamesButNotUnsafeDirectories) {
    for (const std::string& name :
         {std::string("a$b"), std::string("a\"b"), std::string("a`b"), std::string("a'b"),
          std::string("a b"), std::string("a;b"), std::string("a*b")}) {
        // The directory is only the command's working directory.
        ASSERT_EQ(mkdir((tmp / name).c_str(), 0700), 0);
        write_text(tmp / name + "/key.bin", std::string(64, 'k'));
        EXPECT_NO_THROW(load_key_file(tmp / name + "/key.bin", cat_unwrap, opts())) << name;
        EXPECT_NO_THROW(check_key_file_path(tmp / name + "/key.bin")) << name;
        // The name goes into %p.
        write_text(tmp / ("key" + name), std::string(64, 'k'));
        EXPECT_EQ(error_of([&] { load_key_file(tmp / ("key" + name), cat_unwrap, opts()); }).code(),
                  ErrorCode::unsafe_path)
            << name;
        EXPECT_EQ(error_of([&] { check_key_file_path(tmp / ("key" + name)); }).code(),
                  ErrorCode::unsafe_path)
            << name;
    }
}

TEST_F(Store, LoadKeyOfAMissingKeyFileIsAnIoError) {
    create_key_store(datadir, cat_wrap, Key::generate(128), opts());
    ASSERT_EQ(unlink(in_data(key_file).c_str()), 0);
    Error e = error_of([&] { load_key(datadir, cat_unwrap, opts()); });
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_NE(e.message().find("No such file or directory"), std::string::npos) << e.message();
}

TEST_F(Store, TheKeyDirectoryHoldsRegularFilesOnly) {
    // What pg_datakey's verbs check before they read, rename or remove
    // anything there: the first entry that is not a regular file, by name.
    EXPECT_EQ(error_of([&] { check_key_directory(datadir); }).code(), ErrorCode::ok)
        << "no pg_encryption/ at all";
    create_key_store(datadir, cat_wrap, Key::generate(128), opts());
    EXPECT_EQ(error_of([&] { check_key_directory(datadir); }).code(), ErrorCode::ok);
    ASSERT_EQ(mkfifo(in_data("pg_encryption/rewrap.state").c_str(), 0600), 0);
    ASSERT_EQ(symlink("key.bin", in_data("pg_encryption/key.bin.prev").c_str()), 0);
    Error e = error_of([&] { check_key_directory(datadir); });
    EXPECT_EQ(e.code(), ErrorCode::io);
    EXPECT_EQ(e.message(), "file \"pg_encryption/key.bin.prev\" is not a regular file");
    EXPECT_EQ(e.detail(), "It is a symbolic link.");
    ASSERT_EQ(unlink(in_data("pg_encryption/key.bin.prev").c_str()), 0);
    e = error_of([&] { check_key_directory(datadir); });
    EXPECT_EQ(e.message(), "file \"pg_encryption/rewrap.state\" is not a regular file");
    EXPECT_EQ(e.detail(), "It is a FIFO.");
}

TEST_F(Store, AWrapThatLeavesNoRegularFileIsRefusedByTheRule) {
    // Checked before it is opened: a FIFO would block the open.
    Key key = Key::generate(128);
    for (const char* leave : {"cat > /dev/null; mkfifo \"%p\"", "cat > /dev/null; mkdir \"%p\"",
                              "cat > \"%p\".real; ln -s key.bin.tmp.real \"%p\""}) {
        SCOPED_TRACE(leave);
        Error e = error_of([&] { create_key_store(datadir, leave, key, opts()); });
        EXPECT_EQ(e.code(), ErrorCode::io);
        EXPECT_EQ(e.message(),
                  "data encryption key file \"pg_encryption/key.bin.tmp\" is not a regular file");
        EXPECT_EQ(e.hint(), "A wrap command must write the wrapped key to the file named by %p.");
        struct stat st;
        EXPECT_NE(lstat(in_data("pg_encryption/key.bin").c_str(), &st), 0);
        EXPECT_NE(lstat(in_data("pg_encryption/key.bin.tmp").c_str(), &st), 0)
            << "what the command left is removed";
        unlink(in_data("pg_encryption/key.bin.tmp.real").c_str());
    }
}
