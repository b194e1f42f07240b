// Reading global/pg_control. The file is the server's ControlFileData struct
// written in the platform's own byte order and alignment, followed by zeros
// up to 8192 bytes; its last field is a CRC-32C over all bytes before it.
#include "fe_datakey/control_file.hpp"

#include "fe_datakey/error.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace fe_datakey {
namespace {

// Where the fields lie, per pg_control_version. The offsets were obtained
// on x86_64 Linux with gcc by compiling a program that prints
// offsetof(ControlFileData, ...) against PostgreSQL 15.18's src/include after
// configure (pg_config.h present): once as it is (1300), once with
//     uint32 data_encryption_version;
//     uint32 data_encryption_key_length;
// added after data_checksum_version and PG_CONTROL_VERSION set to 1301, as
// the patch series does. system_identifier (uint64) is at 0,
// pg_control_version at 8 and catalog_version_no at 12 in both.
struct Layout {
    std::uint32_t version;
    std::size_t encryption_version; // 0: the version has no encryption fields
    std::size_t encryption_key_length;
    std::size_t crc; // offset of the crc; it covers bytes [0, crc)
};

constexpr std::array<Layout, 2> layouts = {{
    {control_version_stock, 0, 0, 288},
    {control_version_encryption, 256, 260, 296},
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
    const Layout* layout = nullptr;
    for (const Layout& l : layouts)
        if (l.version == cf.pg_control_version)
            layout = &l;
    if (layout == nullptr)
        throw Error(ErrorCode::io,
                    "unsupported pg_control version " + std::to_string(cf.pg_control_version) +
                        " in control file \"" + path + "\"",
                    "Versions " + std::to_string(control_version_stock) + " (PostgreSQL 15) and " +
                        std::to_string(control_version_encryption) +
                        " (PostgreSQL 15 with data encryption) are supported.",
                    "Use the pg_datakey built for the cluster's PostgreSQL release.");
    if (size < layout->crc + 4)
        invalid(path, "The file has " + std::to_string(size) + " bytes, fewer than version " +
                          std::to_string(layout->version) + " needs.");
    if (crc32c(data, layout->crc) != field<std::uint32_t>(data, layout->crc))
        invalid(path, "The CRC of the control file does not match its contents.",
                "The file is damaged, or was written by a server of another build.");
    cf.catalog_version_no = field<std::uint32_t>(data, catalog_version_offset);
    if (layout->encryption_version != 0) {
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
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw_io_error("could not open file \"" + path + "\"", errno);
    // The server writes 8192 bytes; the struct is far smaller.
    std::array<unsigned char, 8192> buf{};
    std::size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int saved = errno;
            ::close(fd);
            throw_io_error("could not read file \"" + path + "\"", saved);
        }
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return parse_control_file(buf.data(), got, path);
}

} // namespace fe_datakey
