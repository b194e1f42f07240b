// --key-wrap-command, --key-unwrap-command and --no-key-wrap, with the
// PGDATAKEYWRAPCMD / PGDATAKEYUNWRAPCMD fallbacks.
#pragma once

#include "fe_datakey/command.hpp"

#include <optional>
#include <string>
#include <vector>

struct option; // <getopt.h>

namespace boost::program_options {
class error;
}

namespace fe_datakey {

enum OptionSet : unsigned {
    option_wrap = 1u,
    option_unwrap = 2u,
    option_no_key_wrap = 4u,
};

enum class Source { unset, command_line, environment };

struct CommandSetting {
    Source source = Source::unset;
    std::string value;
};

// How a utility's own getopt_long will read argv, so that a value of one of
// its options is never mistaken for one of ours.
struct UtilityOptions {
    const char* shortopts = "";
    const struct option* longopts = nullptr; // terminated by a zero entry
};

class KeyOptions {
public:
    // Parses our options out of argv (removing them; argv stays NULL-terminated
    // and *argc shrinks) and reads the environment variables. Throws usage on
    // a malformed option (missing value, given twice, value for --no-key-wrap).
    static KeyOptions extract(int& argc, char** argv, unsigned accepted,
                              const UtilityOptions& utility);
    // Parses a list of arguments that holds only our options (pg_datakey
    // hands over what its own parser did not recognise).
    static KeyOptions from_arguments(const std::vector<std::string>& args, unsigned accepted);

    const CommandSetting& setting(Role role) const { return role == Role::wrap ? wrap_ : unwrap_; }
    bool no_key_wrap() const { return no_key_wrap_; }
    // Any of our options was on the command line (the variables do not count).
    bool given_on_command_line() const;

    // The command to use for `role`, validated; throws command_missing,
    // command_empty or command_invalid. "-" when --no-key-wrap was given.
    std::string command(Role role) const;
    // Both commands, also checking that they are both "-" or both commands.
    std::pair<std::string, std::string> command_pair() const;

private:
    CommandSetting wrap_;
    CommandSetting unwrap_;
    bool no_key_wrap_ = false;
};

// Validates one command value: it must not be empty, and must be "-" (no
// wrapping) or contain %p (the key file); see docs/design.md. `origin` is
// how the user gave it, for the message ("--key-wrap-command", ...).
void validate_command(Role role, const std::string& value, const std::string& origin);
void validate_command_pair(const std::string& wrap, const std::string& unwrap);

const char* option_name(Role role);      // "--key-wrap-command"
const char* environment_name(Role role); // "PGDATAKEYWRAPCMD"

// Boost.ProgramOptions refuses "--opt=" outright, but an empty command must
// reach validation to get its own error: hands each "--opt=" over as "--opt"
// "". Arguments from a "--" on are operands and are left as they are.
std::vector<std::string> split_empty_values(const std::vector<std::string>& args);

// The message for a Boost.ProgramOptions error, in PostgreSQL's words
// ("option --pgdata requires a value"): the one mapping for the library's
// own options and for pg_datakey's command line.
std::string usage_message(const boost::program_options::error& e);

} // namespace fe_datakey
