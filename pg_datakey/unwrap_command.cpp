// The unwrap command that opens key.bin: option or variable first, else the configuration.
#include "unwrap_command.hpp"

#include "fe_datakey/conf.hpp"
#include "fe_datakey/error.hpp"

namespace pg_datakey {

std::string resolve_unwrap_command(const fe_datakey::KeyOptions& options,
                                   const std::string& datadir, const std::string& config_file) {
    using fe_datakey::Role;
    if (options.setting(Role::unwrap).source != fe_datakey::Source::unset)
        return options.command(Role::unwrap);
    std::optional<std::string> configured =
        fe_datakey::configured_unwrap_command_from(datadir, config_file);
    if (!configured)
        throw fe_datakey::Error(
            fe_datakey::ErrorCode::command_missing, "key unwrap command not specified",
            "Neither --key-unwrap-command nor the environment variable " FE_DATAKEY_UNWRAP_VARIABLE
            " is set, "
            "and the configuration does not set " +
                std::string(fe_datakey::unwrap_command_setting) + ".",
            "Give the command that reads the wrapped key from %p and writes the key to standard "
            "output, or \"-\" if the key is stored without wrapping.");
    fe_datakey::validate_command(Role::unwrap, *configured,
                                 std::string(fe_datakey::unwrap_command_setting) +
                                     " in the configuration");
    return *configured;
}

} // namespace pg_datakey
