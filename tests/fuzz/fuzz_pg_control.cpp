// pg_datakey's pg_control reader: any bytes are parsed or refused with an io error,
// never read out of bounds. The input is also made into a file with a
// correct CRC for one of the encryption layouts (its first byte chooses
// which), which must then parse to exactly the fields at the documented
// offsets (or be refused for impossible values), so the fuzzer reaches the
// field checks behind the CRC.
#include "control_file.hpp"

#include "fe_datakey/error.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <cstring>
#include <vector>

using namespace fe_datakey;
using namespace pg_datakey;

namespace {

constexpr std::size_t version_offset = 8;
// The versions with encryption fields (see control_file.cpp).
constexpr std::uint32_t encryption_versions[] = {1301, 1701, 1801};

std::uint32_t u32_at(const std::vector<unsigned char>& b, std::size_t off) {
    std::uint32_t v;
    std::memcpy(&v, b.data() + off, sizeof v);
    return v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        ControlFile cf = parse_control_file(data, size, "pg_control");
        const ControlLayout* layout = find_control_layout(cf.pg_control_version);
        FUZZ_CHECK(layout != nullptr);
        FUZZ_CHECK(cf.has_encryption_fields == layout->has_encryption_fields());
        if (!cf.has_encryption_fields)
            FUZZ_CHECK(!cf.encrypted() && cf.data_encryption_key_length == 0);
    } catch (const Error& e) {
        FUZZ_CHECK(e.code() == ErrorCode::io);
    }

    std::uint32_t version = encryption_versions[size > 0 ? data[0] % 3 : 0];
    const ControlLayout* layout = find_control_layout(version);
    FUZZ_CHECK(layout != nullptr && layout->has_encryption_fields());
    std::vector<unsigned char> file(layout->crc + 4 + 64, 0);
    std::memcpy(file.data(), data, size < file.size() ? size : file.size());
    std::memcpy(file.data() + version_offset, &version, sizeof version);
    std::uint32_t crc = crc32c(file.data(), layout->crc);
    std::memcpy(file.data() + layout->crc, &crc, sizeof crc);
    std::uint32_t enc = u32_at(file, layout->encryption_version);
    std::uint32_t bits = u32_at(file, layout->encryption_key_length);
    bool possible = enc == 0 ? bits == 0 : (bits == 128 || bits == 256);
    try {
        ControlFile cf = parse_control_file(file.data(), file.size(), "pg_control");
        FUZZ_CHECK(cf.has_encryption_fields);
        FUZZ_CHECK(cf.data_encryption_version == enc);
        FUZZ_CHECK(cf.data_encryption_key_length == bits);
        FUZZ_CHECK(possible);
    } catch (const Error& e) {
        FUZZ_CHECK(e.code() == ErrorCode::io);
        FUZZ_CHECK(!possible);
    }
    return 0;
}
