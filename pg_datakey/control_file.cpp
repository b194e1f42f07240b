// Reading global/pg_control. The file is the server's ControlFileData struct
// written in the platform's own byte order and alignment, followed by zeros
// up to 8192 bytes; its last field is a CRC-32C over all bytes before it.
#include "control_file.hpp"

#include "fe_datakey/error.hpp"
#include "fe_datakey/regular_file.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace pg_datakey {

using fe_datakey::Error;
using fe_datakey::ErrorCode;
using fe_datakey::throw_io_error;

namespace {

// Where the fields lie, per pg_control_version, on x86_64 Linux with gcc
// (the only platform the offsets were measured on): offsetof(ControlFileData,
// ...) printed by a program compiled against each release's src/include
// after configure (pg_config.h present), once stock and once with the patch
// series' switch. system_identifier (uint64) is at 0, pg_control_version at
// 8 and catalog_version_no at 12 in all of them.
//  - 15 and 17 share a layout: 17's CheckPoint gained an int wal_level in
//    what was padding after fullPageWrites.
//  - 18 adds bool default_char_signedness after data_checksum_version (and
//    after the encryption fields, in 1801), before the 32-byte nonce.
constexpr std::array<ControlLayout, 6> layouts = {{
    {1300, 15, 0, 0, 288},
    {1301, 15, 256, 260, 296},
    {1700, 17, 0, 0, 288},
    {1701, 17, 256, 260, 296},
    {1800, 18, 0, 0, 292},
    {1801, 18, 256, 260, 300},
}};

constexpr std::size_t version_offset = 8;
constexpr std::size_t catalog_version_offset = 12;

template <typename T>
T field(const unsigned char* data, std::size_t offset) {
    T value;
    std::memcpy(&value, data + offset, sizeof value);
    return value;
}

std::array<std::uint32_t, 256> make_crc_table() {
    std::array<std::uint32_t, 256> table{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
    return table;
}

[[noreturn]] void invalid(const std::string& path, const std::string& detail,
                          const std::string& hint = {}) {
    throw Error(ErrorCode::io, "invalid control file \"" + path + "\"", detail, hint);
}

} // namespace

const ControlLayout* find_control_layout(std::uint32_t version) noexcept {
    for (const ControlLayout& l : layouts)
        if (l.version == version)
            return &l;
    return nullptr;
}

std::string supported_control_versions() {
    std::string list;
    for (const ControlLayout& l : layouts) {
        if (!list.empty())
            list += ", ";
        list += std::to_string(l.version) + " (PostgreSQL " + std::to_string(l.pg_major) +
                (l.has_encryption_fields() ? " with data encryption)" : ")");
    }
    return list;
}

std::uint32_t crc32c(const void* data, std::size_t size) noexcept {
    static const std::array<std::uint32_t, 256> table = make_crc_table();
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint32_t crc = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < size; ++i)
        crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc ^ 0xFFFFFFFFu;
}

ControlFile parse_control_file(const unsigned char* data, std::size_t size,
                               const std::string& path) {
    if (size < version_offset + 4)
        invalid(path, "The file has " + std::to_string(size) + " bytes.");
    ControlFile cf;
    cf.system_identifier = field<std::uint64_t>(data, 0);
    cf.pg_control_version = field<std::uint32_t>(data, version_offset);
    const ControlLayout* layout = find_control_layout(cf.pg_control_version);
    if (layout == nullptr)
        throw Error(ErrorCode::io,
                    "unsupported pg_control version " + std::to_string(cf.pg_control_version) +
                        " in control file \"" + path + "\"",
                    "Supported versions: " + supported_control_versions() + ".",
                    "Use a pg_datakey that supports the cluster's PostgreSQL release.");
    if (size < layout->crc + 4)
        invalid(path, "The file has " + std::to_string(size) + " bytes, fewer than version " +
                          std::to_string(layout->version) + " needs.");
    if (crc32c(data, layout->crc) != field<std::uint32_t>(data, layout->crc))
        invalid(path, "The CRC of the control file does not match its contents.",
                "The file is damaged, or was written by a server of another build.");
    cf.catalog_version_no = field<std::uint32_t>(data, catalog_version_offset);
    if (layout->has_encryption_fields()) {
        cf.has_encryption_fields = true;
        cf.data_encryption_version = field<std::uint32_t>(data, layout->encryption_version);
        cf.data_encryption_key_length = field<std::uint32_t>(data, layout->encryption_key_length);
        std::uint32_t bits = cf.data_encryption_key_length;
        bool valid = cf.encrypted() ? (bits == 128 || bits == 256) : bits == 0;
        if (!valid)
            invalid(path, "Data encryption version " + std::to_string(cf.data_encryption_version) +
                              " with a key length of " + std::to_string(bits) +
                              " bits is not a valid combination.");
    }
    return cf;
}

ControlFile read_control_file(const std::string& datadir) {
    std::string path = datadir + "/" + control_file;
    fe_datakey::FileHandle file =
        fe_datakey::open_regular_file(path, "file", path, fe_datakey::Links::follow);
    if (file.get() < 0)
        throw_io_error("could not open file \"" + path + "\"", ENOENT);
    int fd = file.get();
    // The server writes 8192 bytes; the struct is far smaller.
    std::array<unsigned char, 8192> buf{};
    std::size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw_io_error("could not read file \"" + path + "\"", errno);
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    return parse_control_file(buf.data(), got, path);
}

} // namespace pg_datakey
