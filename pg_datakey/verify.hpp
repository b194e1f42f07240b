// Unwraps key.bin and verifies it against key.check; safe while the server runs.
#pragma once

#include <string>

namespace pg_datakey {

struct VerifyResult {
    int bits = 0;
    std::string check_value;
};

VerifyResult verify(const std::string& datadir, const std::string& unwrap_command,
                    int timeout_seconds);

} // namespace pg_datakey
