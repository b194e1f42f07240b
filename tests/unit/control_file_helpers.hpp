// Crafted global/pg_control files in the layout pg_datakey knows for the
// version (see pg_datakey/control_file.cpp for how the offsets were
// obtained), with a correct CRC-32C unless told otherwise. An unknown
// version gets 15's stock layout.
#pragma once

#include "control_file.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <vector>

inline std::vector<unsigned char> make_control_file(std::uint32_t version,
                                                    std::uint32_t encryption_version = 0,
                                                    std::uint32_t key_bits = 0) {
    std::vector<unsigned char> data(8192, 0);
    auto put32 = [&data](std::size_t offset, std::uint32_t v) {
        std::memcpy(data.data() + offset, &v, sizeof v);
    };
    std::uint64_t sysid = 7000000000000000001ULL;
    std::memcpy(data.data(), &sysid, sizeof sysid);
    put32(8, version);
    put32(12, 202209061); // catalog_version_no of PostgreSQL 15
    std::size_t crc_at = 288;
    if (const pg_datakey::ControlLayout* layout = pg_datakey::find_control_layout(version)) {
        crc_at = layout->crc;
        if (layout->has_encryption_fields()) {
            put32(layout->encryption_version, encryption_version);
            put32(layout->encryption_key_length, key_bits);
        }
    }
    put32(crc_at, pg_datakey::crc32c(data.data(), crc_at));
    return data;
}

inline void write_control_file(const std::string& datadir, const std::vector<unsigned char>& data) {
    ::mkdir((datadir + "/global").c_str(), 0700);
    std::ofstream(datadir + "/" + pg_datakey::control_file, std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()),
               static_cast<std::streamsize>(data.size()));
}
