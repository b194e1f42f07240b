// Unwraps key.bin and verifies it against key.check; safe while the server
// runs. A key.bin proven this way makes key.bin.prev unnecessary.
#pragma once

#include <string>

namespace pg_datakey {

struct VerifyResult {
    int bits = 0;
    std::string check_value;
    bool previous_key_removed = false; // key.bin.prev was removed
};

// Throws like require_encrypted and load_key.
VerifyResult verify(const std::string& datadir, const std::string& unwrap_command,
                    int timeout_seconds);

} // namespace pg_datakey
