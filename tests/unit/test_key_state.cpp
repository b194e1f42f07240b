// The key-state check: every way the key files of a data directory can
// disagree with pg_control, each reported once, the first one thrown.
#include "fe_datakey/error.hpp"
#include "fe_datakey/key_state.hpp"
#include "fe_datakey/store.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace fe_datakey;
using Kind = KeyStateFinding::Kind;

namespace {

class KeyState : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_EQ(chmod(dir.path().c_str(), 0700), 0); }
    void create(int bits) { create_key_store(dir.path(), "-", Key::generate(bits), {}); }
    std::vector<KeyStateFinding> findings(unsigned version, unsigned bits) const {
        return key_state_findings(dir.path(), version, bits);
    }
    ErrorCode thrown(unsigned version, unsigned bits) const {
        try {
            check_key_state(dir.path(), version, bits);
        } catch (const Error& e) {
            return e.code();
        }
        return ErrorCode::ok;
    }
    TempDir dir;
};

} // namespace

TEST_F(KeyState, AgreeingStatesHaveNoFinding) {
    EXPECT_TRUE(findings(0, 0).empty());
    EXPECT_EQ(thrown(0, 0), ErrorCode::ok);
    create(256);
    EXPECT_TRUE(findings(control_encryption_version, 256).empty());
    EXPECT_EQ(thrown(1, 256), ErrorCode::ok);
}

TEST_F(KeyState, KeyFilesInAnUnencryptedClusterAreOneFindingEach) {
    create(128);
    auto f = findings(0, 0);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].kind, Kind::key_files_unencrypted);
    EXPECT_EQ(f[0].error.code(), ErrorCode::not_encrypted);
    EXPECT_EQ(f[0].error.message(), "data directory holds a data encryption key, but pg_control "
                                    "says the cluster is not encrypted");
    EXPECT_EQ(f[0].error.detail(), "The file \"pg_encryption/key.bin\" exists, and the data "
                                   "encryption version in pg_control is 0.");
    EXPECT_EQ(f[1].kind, Kind::key_files_unencrypted);
    EXPECT_NE(f[1].error.detail().find("\"pg_encryption/key.check\""), std::string::npos);
    EXPECT_EQ(thrown(0, 0), ErrorCode::not_encrypted);
}

TEST_F(KeyState, ALoneKeyCheckInAnUnencryptedClusterIsRefused) {
    create(128);
    ASSERT_EQ(unlink((dir / key_file).c_str()), 0);
    auto f = findings(0, 0);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::key_files_unencrypted);
    EXPECT_EQ(f[0].error.message(), "data directory holds a data encryption key check, but "
                                    "pg_control says the cluster is not encrypted");
    EXPECT_NE(f[0].error.hint().find("remove the directory \"pg_encryption\""), std::string::npos);
    EXPECT_EQ(thrown(0, 0), ErrorCode::not_encrypted);
}

TEST_F(KeyState, EncryptedWithoutAnyKeyFileHasTwoFindings) {
    auto f = findings(1, 128);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].kind, Kind::key_file_missing);
    EXPECT_EQ(f[0].error.code(), ErrorCode::io);
    EXPECT_EQ(f[0].error.message(),
              "data encryption key file \"pg_encryption/key.bin\" is missing");
    EXPECT_EQ(f[0].error.detail(), "pg_control says the cluster is encrypted with a 128-bit key, "
                                   "but the file cannot be accessed: No such file or directory.");
    EXPECT_EQ(f[1].kind, Kind::key_check_missing);
    EXPECT_EQ(f[1].error.message(), "key check file \"pg_encryption/key.check\" is missing");
    EXPECT_EQ(thrown(1, 128), ErrorCode::io); // the first
}

TEST_F(KeyState, AKeyFileThatIsNoRegularFileIsRefusedSayingWhatItIs) {
    create(128);
    ASSERT_EQ(unlink((dir / key_file).c_str()), 0);
    ASSERT_EQ(mkdir((dir / key_file).c_str(), 0700), 0);
    auto f = findings(1, 128);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::key_file_unreadable);
    EXPECT_EQ(f[0].error.message(),
              "data encryption key file \"pg_encryption/key.bin\" is not a regular file");
    EXPECT_EQ(f[0].error.detail(), "It is a directory.");
}

TEST_F(KeyState, AFifoAsKeyFileOrKeyCheckIsRefusedWithoutBlocking) {
    // Opening a FIFO for reading blocks until a writer comes: none ever does.
    create(128);
    ASSERT_EQ(unlink((dir / key_check_file).c_str()), 0);
    ASSERT_EQ(mkfifo((dir / key_check_file).c_str(), 0600), 0);
    auto f = findings(1, 128);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::key_check_invalid);
    EXPECT_EQ(f[0].error.message(),
              "key check file \"pg_encryption/key.check\" is not a regular file");
    EXPECT_EQ(f[0].error.detail(), "It is a FIFO.");

    ASSERT_EQ(unlink((dir / key_file).c_str()), 0);
    ASSERT_EQ(mkfifo((dir / key_file).c_str(), 0600), 0);
    f = findings(1, 128);
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0].kind, Kind::key_file_unreadable);
    EXPECT_EQ(f[0].error.detail(), "It is a FIFO.");
}

TEST_F(KeyState, AKeyFileThatCannotBeOpenedIsNoCaseForARestore) {
    // Permissions or an I/O error: the file is there and may open again.
    // (ctest runs as an ordinary user, whom mode 0000 keeps out.)
    create(128);
    ASSERT_EQ(chmod((dir / key_file).c_str(), 0), 0);
    auto f = findings(1, 128);
    chmod((dir / key_file).c_str(), 0600);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::key_file_unreadable);
    EXPECT_EQ(
        f[0].error.message(),
        "could not open data encryption key file \"pg_encryption/key.bin\": Permission denied");
    EXPECT_EQ(f[0].error.hint().find("Restore"), std::string::npos) << f[0].error.hint();
    EXPECT_NE(f[0].error.hint().find("permissions"), std::string::npos) << f[0].error.hint();
}

TEST_F(KeyState, ASymbolicLinkToTheRightKeyFileIsRefused) {
    // Base backups skip symbolic links inside the data directory.
    create(128);
    ASSERT_EQ(rename((dir / key_file).c_str(), (dir / "key.elsewhere").c_str()), 0);
    ASSERT_EQ(symlink((dir / "key.elsewhere").c_str(), (dir / key_file).c_str()), 0);
    auto f = findings(1, 128);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::key_file_unreadable);
    EXPECT_EQ(f[0].error.message(),
              "data encryption key file \"pg_encryption/key.bin\" is not a regular file");
    EXPECT_EQ(f[0].error.detail(), "It is a symbolic link.");
}

TEST_F(KeyState, AMalformedOrOtherLengthKeyCheck) {
    create(128);
    auto f = findings(1, 256);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::key_check_length);
    EXPECT_EQ(f[0].error.message(), "key check file does not match pg_control");
    EXPECT_EQ(f[0].error.detail(), "pg_control says the key has 256 bits, "
                                   "\"pg_encryption/key.check\" says 128.");
    write_text(dir / key_check_file, "fe_datakey key check 1\nbits 128\n");
    f = findings(1, 128);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::key_check_invalid);
    EXPECT_EQ(f[0].error.code(), ErrorCode::check_invalid);
    EXPECT_EQ(f[0].error.message(), "invalid key check file \"pg_encryption/key.check\"");
}

TEST_F(KeyState, ValuesNoPgControlCanHoldAreOneFinding) {
    create(256);
    auto f = findings(2, 256);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::unsupported_version);
    EXPECT_EQ(f[0].error.message(), "unsupported data encryption version 2 in pg_control");
    f = findings(1, 192);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].kind, Kind::invalid_key_length);
    EXPECT_EQ(thrown(1, 192), ErrorCode::check_invalid);
}
