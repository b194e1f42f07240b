#include "verify.hpp"

#include "datadir.hpp"
#include "exit_status.hpp"
#include "journal.hpp"
#include "paths.hpp"
#include "recovery.hpp"
#include "rewrap_lock.hpp"

#include "fe_datakey/error.hpp"
#include "fe_datakey/store.hpp"

#include <cerrno>
#include <sys/stat.h>

namespace pg_datakey {

VerifyResult verify(const std::string& datadir, const std::string& unwrap_command,
                    int timeout_seconds) {
    EncryptionState state = require_encrypted(datadir);
    fe_datakey::RunOptions run;
    run.timeout_seconds = timeout_seconds;
    fe_datakey::Key key = fe_datakey::load_key(datadir, unwrap_command, run);
    require_key_length(state, key.bits());
    VerifyResult result{key.bits(), key.check_value(), false};

    // key.bin.prev outlives an unverified rewrap only until key.bin is
    // proven: now. Not while a rewrap runs or awaits repair (it owns the file).
    struct stat st;
    if (::lstat((datadir + "/" + previous_key_file).c_str(), &st) != 0)
        return result;
    try {
        RewrapLock lock(datadir, 0);
        if (!read_journal(datadir)) {
            drop_previous_key(datadir);
            result.previous_key_removed = true;
        }
    } catch (const ToolError& e) {
        if (e.status() != exit_busy)
            throw;
    }
    return result;
}

} // namespace pg_datakey
