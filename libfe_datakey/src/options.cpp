// One Boost.ProgramOptions description of our options; the variables_map is
// the single record of what was given and where from (command line first,
// so an option always beats its environment variable).
#include "fe_datakey/options.hpp"

#include "argv_split.hpp"
#include "fe_datakey/error.hpp"
#include "fe_datakey/fe_datakey.h"

#include <boost/program_options.hpp>

namespace po = boost::program_options;

namespace fe_datakey {
namespace {

constexpr const char* wrap_key = "key-wrap-command";
constexpr const char* unwrap_key = "key-unwrap-command";
constexpr const char* no_wrap_key = "no-key-wrap";

po::options_description describe(unsigned accepted) {
    po::options_description desc;
    auto add = desc.add_options();
    if (accepted & option_wrap)
        add(wrap_key, po::value<std::string>(), "command that wraps the data encryption key");
    if (accepted & option_unwrap)
        add(unwrap_key, po::value<std::string>(), "command that unwraps the data encryption key");
    if (accepted & option_no_key_wrap)
        add(no_wrap_key, po::bool_switch(), "store the data encryption key without wrapping");
    return desc;
}

std::vector<detail::OwnedOption> owned_options(unsigned accepted) {
    std::vector<detail::OwnedOption> owned;
    if (accepted & option_wrap)
        owned.push_back({wrap_key, true});
    if (accepted & option_unwrap)
        owned.push_back({unwrap_key, true});
    if (accepted & option_no_key_wrap)
        owned.push_back({no_wrap_key, false});
    return owned;
}

// PGDATAKEYWRAPCMD -> key-wrap-command, for the accepted options only; every
// other variable maps to "" and is ignored.
std::string map_variable(unsigned accepted, const std::string& variable) {
    if ((accepted & option_wrap) && variable == environment_name(Role::wrap))
        return wrap_key;
    if ((accepted & option_unwrap) && variable == environment_name(Role::unwrap))
        return unwrap_key;
    return {};
}

std::string origin_of(Role role, const CommandSetting& setting) {
    if (setting.source == Source::environment)
        return std::string("the environment variable ") + environment_name(role);
    return option_name(role);
}

} // namespace

std::string usage_message(const po::error& e) {
    if (auto* u = dynamic_cast<const po::unknown_option*>(&e))
        return "unrecognized option \"" + u->get_option_name() + "\"";
    if (auto* m = dynamic_cast<const po::multiple_occurrences*>(&e))
        return "option --" +
               m->get_option_name().substr(m->get_option_name().find_first_not_of('-')) +
               " specified more than once";
    if (auto* s = dynamic_cast<const po::invalid_command_line_syntax*>(&e)) {
        if (s->kind() == po::invalid_syntax::missing_parameter)
            return "option " + s->get_option_name() + " requires a value";
        if (s->kind() == po::invalid_syntax::extra_parameter)
            return "option " + s->get_option_name() + " does not take a value";
    }
    return e.what();
}

std::vector<std::string> split_empty_values(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    for (auto a = args.begin(); a != args.end(); ++a) {
        if (*a == "--") {
            out.insert(out.end(), a, args.end());
            break;
        }
        if (a->size() > 3 && a->compare(0, 2, "--") == 0 && a->back() == '=' &&
            a->find('=') == a->size() - 1) {
            out.push_back(a->substr(0, a->size() - 1));
            out.emplace_back();
        } else {
            out.push_back(*a);
        }
    }
    return out;
}

const char* option_name(Role role) {
    return role == Role::wrap ? "--key-wrap-command" : "--key-unwrap-command";
}

const char* environment_name(Role role) {
    return role == Role::wrap ? FE_DATAKEY_WRAP_VARIABLE : FE_DATAKEY_UNWRAP_VARIABLE;
}

KeyOptions KeyOptions::extract(int& argc, char** argv, unsigned accepted,
                               const UtilityOptions& utility) {
    auto ours = detail::split_owned_options(argc, argv, owned_options(accepted), utility);
    return from_arguments(ours, accepted);
}

KeyOptions KeyOptions::from_arguments(const std::vector<std::string>& args, unsigned accepted) {
    auto desc = describe(accepted);
    po::variables_map vm;
    std::vector<std::string> on_command_line;
    try {
        // Long options only, exact names, "--opt=value" and "--opt value".
        auto style = po::command_line_style::allow_long |
                     po::command_line_style::long_allow_adjacent |
                     po::command_line_style::long_allow_next;
        auto parsed =
            po::command_line_parser(split_empty_values(args)).options(desc).style(style).run();
        for (const auto& o : parsed.options)
            on_command_line.push_back(o.string_key);
        po::store(parsed, vm);
        po::store(po::parse_environment(desc,
                                        [accepted](const std::string& variable) {
                                            return map_variable(accepted, variable);
                                        }),
                  vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw Error(ErrorCode::usage, usage_message(e));
    }

    auto from_command_line = [&](const char* key) {
        for (const auto& k : on_command_line)
            if (k == key)
                return true;
        return false;
    };
    KeyOptions result;
    auto fill = [&](const char* key, CommandSetting& setting) {
        if (!vm.count(key))
            return;
        setting.value = vm[key].as<std::string>();
        setting.source = from_command_line(key) ? Source::command_line : Source::environment;
    };
    fill(wrap_key, result.wrap_);
    fill(unwrap_key, result.unwrap_);
    result.no_key_wrap_ = vm.count(no_wrap_key) && vm[no_wrap_key].as<bool>();

    if (result.no_key_wrap_) {
        for (Role role : {Role::wrap, Role::unwrap})
            if (result.setting(role).source == Source::command_line)
                throw Error(ErrorCode::usage, std::string("options --no-key-wrap and ") +
                                                  option_name(role) + " cannot be used together");
    }
    return result;
}

bool KeyOptions::given_on_command_line() const {
    return no_key_wrap_ || wrap_.source == Source::command_line ||
           unwrap_.source == Source::command_line;
}

std::string KeyOptions::command(Role role) const {
    // --no-key-wrap beats the variables, as any option does.
    if (no_key_wrap_)
        return "-";
    const CommandSetting& s = setting(role);
    if (s.source == Source::unset) {
        bool wrap = role == Role::wrap;
        throw Error(ErrorCode::command_missing, std::string(role_name(role)) + " not specified",
                    std::string("Neither ") + option_name(role) + " nor the environment variable " +
                        environment_name(role) + " is set.",
                    wrap ? "Give a command that reads the key on standard input and writes the "
                           "wrapped key to %p, or \"-\" to store the key without wrapping (for "
                           "testing only)."
                         : "Give a command that reads the wrapped key from %p and writes the key "
                           "to standard output, or \"-\" if the key is stored without wrapping.");
    }
    validate_command(role, s.value, origin_of(role, s));
    return s.value;
}

std::pair<std::string, std::string> KeyOptions::command_pair() const {
    auto wrap = command(Role::wrap);
    auto unwrap = command(Role::unwrap);
    validate_command_pair(wrap, unwrap);
    return {wrap, unwrap};
}

void validate_command(Role role, const std::string& value, const std::string& origin) {
    if (value.empty())
        throw Error(ErrorCode::command_empty, std::string(role_name(role)) + " is empty",
                    "The value given by " + origin + " is an empty string.",
                    "An empty command is not the same as \"-\": use \"-\" for a key stored "
                    "without wrapping.");
    if (is_plaintext_mode(value))
        return;
    if (!has_placeholder(value))
        throw Error(ErrorCode::command_invalid,
                    std::string(role_name(role)) + " does not contain %p",
                    "The value given by " + origin + " has no %p, which stands for the key file " +
                        (role == Role::wrap ? "the command writes." : "the command reads."),
                    "Write %% for a literal %.");
}

void validate_command_pair(const std::string& wrap, const std::string& unwrap) {
    if (is_plaintext_mode(wrap) != is_plaintext_mode(unwrap))
        throw Error(ErrorCode::command_invalid,
                    "key wrap and unwrap commands must both be \"-\" or both be commands",
                    std::string("The key ") + (is_plaintext_mode(wrap) ? "wrap" : "unwrap") +
                        " command is \"-\" but the key " +
                        (is_plaintext_mode(wrap) ? "unwrap" : "wrap") + " command is not.");
}

} // namespace fe_datakey
