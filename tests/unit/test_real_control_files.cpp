// pg_datakey's pg_control reader on real files: global/pg_control of
// clusters made by the real initdb of each supported release (the patched
// 15, 17 and 18, unencrypted and encrypted with 128 and 256 bits, and
// Debian's stock 15), kept as seeds of fuzz_pg_control. Each must parse to
// exactly what that release's pg_controldata printed for it
// (tests/unit/pg_controldata/NAME.txt). The crafted files of
// test_control_file.cpp are built from the reader's own offsets, so only
// these catch an offset that is wrong. tests/fuzz/make_real_pg_control.sh
// makes both.
#include "control_file.hpp"

#include "fe_datakey/error.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

using namespace pg_datakey;

namespace {

const std::string source_dir = FE_DATAKEY_SOURCE_DIR;
const std::string expected_dir = source_dir + "/tests/unit/pg_controldata";
const std::string seed_dir = source_dir + "/tests/fuzz/corpus/fuzz_pg_control";

// The names NAME of expected_dir/NAME.txt, sorted.
std::vector<std::string> real_files() {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(expected_dir.c_str())) {
        while (const dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n.size() > 4 && n.compare(n.size() - 4, 4, ".txt") == 0)
                names.push_back(n.substr(0, n.size() - 4));
        }
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

// pg_controldata's "Label:   value" lines.
std::map<std::string, std::string> controldata(const std::string& name) {
    std::map<std::string, std::string> fields;
    std::ifstream in(expected_dir + "/" + name + ".txt");
    std::string line;
    while (std::getline(in, line)) {
        std::size_t colon = line.find(':');
        std::size_t value = line.find_first_not_of(' ', colon + 1);
        if (colon != std::string::npos && value != std::string::npos)
            fields[line.substr(0, colon)] = line.substr(value);
    }
    return fields;
}

std::vector<unsigned char> bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

} // namespace

TEST(RealControlFiles, EveryKindOfEachReleaseIsThere) {
    // A file left out would pass unnoticed: the list is fixed.
    EXPECT_EQ(real_files(),
              (std::vector<std::string>{
                  "pg15_encrypted_128_checksums", "pg15_encrypted_256", "pg15_plain", "pg15_stock",
                  "pg17_encrypted_128_checksums", "pg17_encrypted_256", "pg17_plain",
                  "pg18_encrypted_128_checksums", "pg18_encrypted_256", "pg18_plain"}));
}

TEST(RealControlFiles, ParseToWhatPgControldataPrinted) {
    for (const std::string& name : real_files()) {
        SCOPED_TRACE(name);
        std::map<std::string, std::string> want = controldata(name);
        ASSERT_TRUE(want.count("pg_control version number")) << "no pg_controldata output";
        std::vector<unsigned char> data = bytes_of(seed_dir + "/real_" + name);
        ASSERT_EQ(data.size(), 8192u) << "a server writes 8192 bytes";
        ControlFile cf;
        try {
            cf = parse_control_file(data.data(), data.size(), "real_" + name);
        } catch (const fe_datakey::Error& e) {
            ADD_FAILURE() << e.message() << " " << e.detail();
            continue;
        }
        EXPECT_EQ(std::to_string(cf.pg_control_version), want["pg_control version number"]);
        EXPECT_EQ(std::to_string(cf.catalog_version_no), want["Catalog version number"]);
        EXPECT_EQ(std::to_string(cf.system_identifier), want["Database system identifier"]);
        // The patched releases print the two fields; stock ones neither.
        bool printed = want.count("Data encryption version") != 0;
        EXPECT_EQ(cf.has_encryption_fields, printed);
        EXPECT_EQ(printed, want.count("Data encryption key length") != 0);
        if (printed) {
            EXPECT_EQ(std::to_string(cf.data_encryption_version), want["Data encryption version"]);
            EXPECT_EQ(std::to_string(cf.data_encryption_key_length),
                      want["Data encryption key length"]);
        } else {
            EXPECT_FALSE(cf.encrypted());
        }
        // What the name says the cluster was made with.
        bool encrypted = name.find("_encrypted_") != std::string::npos;
        EXPECT_EQ(cf.encrypted(), encrypted);
        if (encrypted) {
            EXPECT_EQ(cf.data_encryption_key_length,
                      name.find("_128") != std::string::npos ? 128u : 256u);
        }
    }
}
