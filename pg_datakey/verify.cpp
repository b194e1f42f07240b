#include "verify.hpp"

#include "fe_datakey/error.hpp"
#include "fe_datakey/store.hpp"

namespace pg_datakey {

VerifyResult verify(const std::string& datadir, const std::string& unwrap_command,
                    int timeout_seconds) {
    fe_datakey::RunOptions run;
    run.timeout_seconds = timeout_seconds;
    fe_datakey::Key key = fe_datakey::load_key(datadir, unwrap_command, run);
    return {key.bits(), key.check_value()};
}

} // namespace pg_datakey
