// The fields of a cluster's global/pg_control that say whether the cluster is
// encrypted, read by our own reader (no PostgreSQL headers in the library)
// and checked with its CRC-32C.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fe_datakey {

constexpr const char* control_file = "global/pg_control";

// pg_control_version of stock PostgreSQL 15, without the encryption fields.
constexpr std::uint32_t control_version_stock = 1300;
// PostgreSQL 15 with the patch series: data_encryption_version and
// data_encryption_key_length after data_checksum_version.
constexpr std::uint32_t control_version_encryption = 1301;

struct ControlFile {
    std::uint64_t system_identifier = 0;
    std::uint32_t pg_control_version = 0;
    std::uint32_t catalog_version_no = 0;
    // False for a version that has no encryption fields (stock 1300): such
    // a cluster is not encrypted.
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

} // namespace fe_datakey
