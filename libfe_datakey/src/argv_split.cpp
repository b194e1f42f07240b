#include "argv_split.hpp"

#include <cstdlib>
#include <cstring>
#include <getopt.h>

namespace fe_datakey::detail {
namespace {

const OwnedOption* find_owned(const std::vector<OwnedOption>& owned, const std::string& name) {
    for (const auto& o : owned)
        if (name == o.name)
            return &o;
    return nullptr;
}

// has_arg of the utility's long option `name`, matched exactly or by a unique
// prefix as getopt_long does; no_argument when unknown or ambiguous.
int utility_long_has_arg(const struct option* longopts, const std::string& name) {
    if (longopts == nullptr)
        return no_argument;
    const struct option* prefix_match = nullptr;
    int prefix_matches = 0;
    for (const struct option* o = longopts; o->name != nullptr; ++o) {
        if (name == o->name)
            return o->has_arg;
        if (std::strncmp(o->name, name.c_str(), name.size()) == 0) {
            prefix_match = o;
            ++prefix_matches;
        }
    }
    return prefix_matches == 1 ? prefix_match->has_arg : no_argument;
}

// How many of the following argv elements a short-option cluster ("-abc",
// "-ofoo") consumes as a value: 1 when its last option needs a separate value.
int short_cluster_consumes(const char* token, const char* shortopts) {
    for (const char* c = token + 1; *c != '\0'; ++c) {
        const char* spec = shortopts != nullptr ? std::strchr(shortopts, *c) : nullptr;
        if (spec == nullptr || *c == ':' || *c == '+' || *c == '-')
            continue; // unknown: getopt reports it, consumes nothing
        if (spec[1] == ':') {
            if (spec[2] == ':')
                return 0;                // optional argument: only ever attached
            return c[1] == '\0' ? 1 : 0; // "-o value" or "-ovalue"
        }
    }
    return 0;
}

} // namespace

std::vector<std::string> split_owned_options(int& argc, char** argv,
                                             const std::vector<OwnedOption>& owned,
                                             const UtilityOptions& utility) {
    std::vector<std::string> found;
    const char* shortopts = utility.shortopts != nullptr ? utility.shortopts : "";
    // A leading '+' (or POSIXLY_CORRECT) stops option parsing at the first
    // operand; '-' returns operands in order. Both only matter for the stop.
    bool stop_at_operand = shortopts[0] == '+' || std::getenv("POSIXLY_CORRECT") != nullptr;
    if (shortopts[0] == '+' || shortopts[0] == '-')
        ++shortopts;

    int out = 1;
    int i = 1;
    for (; i < argc; ++i) {
        const char* tok = argv[i];
        if (std::strcmp(tok, "--") == 0)
            break; // the rest are operands
        if (tok[0] != '-' || tok[1] == '\0') {
            if (stop_at_operand)
                break;
            argv[out++] = argv[i]; // operand
            continue;
        }
        if (tok[1] == '-') {
            std::string body(tok + 2);
            auto eq = body.find('=');
            std::string name = body.substr(0, eq);
            if (const OwnedOption* o = find_owned(owned, name)) {
                if (!o->takes_value || eq != std::string::npos) {
                    found.emplace_back(tok);
                } else if (i + 1 < argc) {
                    // As getopt_long does for a required argument, the next
                    // element is the value whatever it looks like ("-" too).
                    found.push_back(std::string(tok) + "=" + argv[i + 1]);
                    ++i;
                } else {
                    found.emplace_back(tok);
                }
                continue;
            }
            argv[out++] = argv[i];
            if (eq == std::string::npos &&
                utility_long_has_arg(utility.longopts, name) == required_argument && i + 1 < argc)
                argv[out++] = argv[++i]; // the utility's value, whatever it holds
            continue;
        }
        argv[out++] = argv[i];
        if (short_cluster_consumes(tok, shortopts) == 1 && i + 1 < argc)
            argv[out++] = argv[++i];
    }
    for (; i < argc; ++i)
        argv[out++] = argv[i];
    argv[out] = nullptr;
    argc = out;
    return found;
}

} // namespace fe_datakey::detail
