// verify: unwrap key.bin, check it against key.check, and drop key.bin.prev
// once the key file in place is proven.
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
#include <optional>
#include <sys/stat.h>

namespace pg_datakey {

VerifyResult verify(const std::string& datadir, const std::string& unwrap_command,
                    int timeout_seconds) {
    EncryptionState state = require_encrypted(datadir);

    // key.bin.prev outlives an unverified rewrap only until key.bin is
    // proven. The file proven must be the file kept: a rewrap that finished
    // between this unwrap and the removal would have made the proven file
    // key.bin.prev, and the removal would leave an unproven key.bin alone.
    // So the rewrap lock is taken before the unwrap and held until after the
    // removal: no rewrap or repair can change key.bin in between. (Comparing
    // inode and hash afterwards would also do, but the lock closes the
    // window instead of detecting it, and repair needs it anyway.) A busy
    // lock (a rewrap or repair runs) leaves key.bin.prev where it is: verify
    // still verifies. While verify holds the lock, a rewrap or repair waits
    // its 2 seconds and is refused as busy.
    std::optional<RewrapLock> lock;
    struct stat st;
    if (::lstat((datadir + "/" + previous_key_file).c_str(), &st) == 0) {
        try {
            lock.emplace(datadir, 0);
        } catch (const ToolError& e) {
            if (e.status() != exit_busy)
                throw;
        }
    }

    fe_datakey::RunOptions run;
    run.timeout_seconds = timeout_seconds;
    fe_datakey::Key key = fe_datakey::load_key(datadir, unwrap_command, run);
    require_key_length(state, key.bits());
    VerifyResult result{key.bits(), key.check_value(), false};

    // Not while a rewrap awaits repair (the journal owns the file).
    if (lock && !read_journal(datadir)) {
        drop_previous_key(datadir);
        result.previous_key_removed = true;
    }
    return result;
}

} // namespace pg_datakey
