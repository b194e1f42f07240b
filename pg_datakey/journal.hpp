// pg_encryption/rewrap.state, the rewrap journal. It is written (durably)
// only after the new key file has been written and verified; from then on the
// rewrap is committed and recovery always completes it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace pg_datakey {

struct Journal {
    // The unwrap command the configuration must name once the new key file
    // is key.bin. Same secrecy as postgresql.conf, which will hold it too.
    std::string new_unwrap_command;
    // Identity of the new key file (a rename keeps it): tells recovery
    // whether key.bin is already the new file without reading any key.
    std::uint64_t new_key_device = 0;
    std::uint64_t new_key_inode = 0;

    std::string serialize() const;
    static Journal parse(const std::string& text); // throws check_invalid-like io error
};

void write_journal(const std::string& datadir, const Journal& journal);
std::optional<Journal> read_journal(const std::string& datadir);
// Removes the journal and fsyncs pg_encryption/: the end of a rewrap.
void remove_journal(const std::string& datadir);

} // namespace pg_datakey
