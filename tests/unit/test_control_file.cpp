// pg_datakey's pg_control reader: layout per pg_control_version, CRC-32C checked.
#include "control_file_helpers.hpp"
#include "temp_dir.hpp"

#include "fe_datakey/error.hpp"

#include <gtest/gtest.h>

#include <utility>

using namespace fe_datakey;
using namespace pg_datakey;

namespace {

ControlFile parse(const std::vector<unsigned char>& data) {
    return parse_control_file(data.data(), data.size(), "global/pg_control");
}

std::string message_of(const std::vector<unsigned char>& data) {
    try {
        parse(data);
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::io);
        return e.message() + " | " + e.detail();
    }
    return "no error";
}

} // namespace

TEST(ControlFile, Crc32cIsCastagnoli) {
    // The check value of CRC-32C: crc of "123456789".
    EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
    EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(ControlFile, EncryptedVersionGivesItsFields) {
    ControlFile cf = parse(make_control_file(1301, 1, 256));
    EXPECT_EQ(cf.pg_control_version, 1301u);
    EXPECT_EQ(cf.system_identifier, 7000000000000000001ULL);
    EXPECT_EQ(cf.catalog_version_no, 202209061u);
    EXPECT_TRUE(cf.has_encryption_fields);
    EXPECT_TRUE(cf.encrypted());
    EXPECT_EQ(cf.data_encryption_version, 1u);
    EXPECT_EQ(cf.data_encryption_key_length, 256u);
}

TEST(ControlFile, UnencryptedVersion1301) {
    ControlFile cf = parse(make_control_file(1301, 0, 0));
    EXPECT_TRUE(cf.has_encryption_fields);
    EXPECT_FALSE(cf.encrypted());
}

TEST(ControlFile, StockVersionReadsAsNotEncrypted) {
    ControlFile cf = parse(make_control_file(1300));
    EXPECT_EQ(cf.pg_control_version, 1300u);
    EXPECT_FALSE(cf.has_encryption_fields);
    EXPECT_FALSE(cf.encrypted());
}

TEST(ControlFile, StockFileIsNotReadWithTheEncryptionLayout) {
    // Bytes where 1301 keeps its fields, in a 1300 file: its nonce. They
    // must not count, and its CRC is at 288, not 296.
    std::vector<unsigned char> data = make_control_file(1300);
    data[256] = 1;
    data[260] = 128;
    std::uint32_t crc = crc32c(data.data(), 288);
    std::memcpy(data.data() + 288, &crc, 4);
    EXPECT_FALSE(parse(data).encrypted());
}

TEST(ControlFile, UnknownVersionIsAClearError) {
    EXPECT_NE(message_of(make_control_file(1201)).find("unsupported pg_control version 1201"),
              std::string::npos);
    EXPECT_NE(message_of(make_control_file(1600)).find("unsupported pg_control version 1600"),
              std::string::npos);
    // The detail lists what is supported.
    EXPECT_NE(message_of(make_control_file(1600)).find("1801 (PostgreSQL 18 with data encryption)"),
              std::string::npos);
}

TEST(ControlFile, EveryReleaseHasAStockAndAnEncryptionLayout) {
    // (1300 has been the version since PostgreSQL 13.)
    const std::pair<std::uint32_t, unsigned> releases[] = {{1300, 15}, {1700, 17}, {1800, 18}};
    for (auto [stock, major] : releases) {
        SCOPED_TRACE(stock);
        ControlFile plain = parse(make_control_file(stock));
        EXPECT_FALSE(plain.has_encryption_fields);
        EXPECT_FALSE(plain.encrypted());
        ControlFile enc = parse(make_control_file(stock + 1, 1, 128));
        EXPECT_TRUE(enc.has_encryption_fields);
        EXPECT_EQ(enc.data_encryption_key_length, 128u);
        EXPECT_EQ(find_control_layout(stock + 1)->pg_major, major);
    }
}

TEST(ControlFile, Release18KeepsItsCrcAfterTheSignednessFlag) {
    // 18 stock: bool default_char_signedness at 256 and the nonce after it,
    // CRC at 292; a file with the CRC at 15's 288 is refused.
    std::vector<unsigned char> data = make_control_file(1800);
    EXPECT_FALSE(parse(data).encrypted());
    std::uint32_t crc = crc32c(data.data(), 288);
    std::memcpy(data.data() + 288, &crc, 4);
    std::memset(data.data() + 292, 0, 4);
    EXPECT_NE(message_of(data).find("CRC"), std::string::npos);
    // 1801: the fields before the flag, CRC at 300.
    data = make_control_file(1801, 1, 256);
    EXPECT_EQ(parse(data).data_encryption_key_length, 256u);
    data.resize(300);
    EXPECT_NE(message_of(data).find("300 bytes"), std::string::npos);
}

TEST(ControlFile, CrcMismatchIsAnError) {
    std::vector<unsigned char> data = make_control_file(1301, 1, 128);
    data[260] = 0; // key length changed behind the CRC's back
    data[261] = 1;
    EXPECT_NE(message_of(data).find("CRC"), std::string::npos);
    data = make_control_file(1301, 0, 0);
    data[256] = 1; // "encrypted" without a new CRC
    EXPECT_NE(message_of(data).find("CRC"), std::string::npos);
}

TEST(ControlFile, ShortFileIsAnError) {
    std::vector<unsigned char> data = make_control_file(1301, 1, 128);
    data.resize(296);
    EXPECT_NE(message_of(data).find("296 bytes"), std::string::npos);
    data.resize(4);
    EXPECT_NE(message_of(data).find("4 bytes"), std::string::npos);
}

TEST(ControlFile, ImpossibleFieldCombinationsAreErrors) {
    EXPECT_NE(message_of(make_control_file(1301, 1, 192)).find("not a valid combination"),
              std::string::npos);
    EXPECT_NE(message_of(make_control_file(1301, 0, 128)).find("not a valid combination"),
              std::string::npos);
}

TEST(ControlFile, ReadsFromTheDataDirectory) {
    TempDir dir;
    write_control_file(dir.path(), make_control_file(1301, 1, 128));
    EXPECT_TRUE(read_control_file(dir.path()).encrypted());
    TempDir empty;
    try {
        read_control_file(empty.path());
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::io);
        EXPECT_NE(e.message().find("could not open file"), std::string::npos);
    }
}
