// The fields of a cluster's global/pg_control that say whether the cluster is
// encrypted, read by pg_datakey's own reader (no PostgreSQL headers in this
// project) and checked with its CRC-32C. The PostgreSQL programs read their
// pg_control themselves and give the library its fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pg_datakey {

constexpr const char* control_file = "global/pg_control";

// Where a pg_control_version keeps its fields. Each supported release has
// two: stock (no encryption fields: such a cluster is not encrypted) and
// stock + 1, built with the patch series' switch, which adds
// data_encryption_version and data_encryption_key_length after
// data_checksum_version.
struct ControlLayout {
    std::uint32_t version;          // pg_control_version
    unsigned pg_major;              // the PostgreSQL release that writes it
    std::size_t encryption_version; // offsets; 0: no encryption fields
    std::size_t encryption_key_length;
    std::size_t crc; // the CRC-32C covers bytes [0, crc)

    bool has_encryption_fields() const noexcept { return encryption_version != 0; }
};

// The layout of `version`, or nullptr when it is not supported.
const ControlLayout* find_control_layout(std::uint32_t version) noexcept;

// "1300 (PostgreSQL 15), 1301 (PostgreSQL 15 with data encryption), ...".
std::string supported_control_versions();

struct ControlFile {
    std::uint64_t system_identifier = 0;
    std::uint32_t pg_control_version = 0;
    std::uint32_t catalog_version_no = 0;
    // False for a version that has no encryption fields (stock 1300, 1700,
    // 1800): such a cluster is not encrypted.
    bool has_encryption_fields = false;
    std::uint32_t data_encryption_version = 0;    // 0 = not encrypted
    std::uint32_t data_encryption_key_length = 0; // bits: 0, 128 or 256

    bool encrypted() const noexcept { return data_encryption_version != 0; }
};

// CRC-32C (Castagnoli), as PostgreSQL's INIT_CRC32C/COMP_CRC32C/FIN_CRC32C.
std::uint32_t crc32c(const void* data, std::size_t size) noexcept;

// Parses the bytes of a pg_control file; `path` names it in messages. Throws
// Error(io) when the file is too short, its version is unknown, its CRC does
// not match, or the encryption fields hold values no cluster can have.
ControlFile parse_control_file(const unsigned char* data, std::size_t size,
                               const std::string& path);

// Reads DATADIR/global/pg_control.
ControlFile read_control_file(const std::string& datadir);

} // namespace pg_datakey
