// %p / %% expansion against a plain reference, and the path check: a path it
// accepts is one shell word, quoted or not, as itself.
#include "fe_datakey/command.hpp"
#include "fe_datakey/error.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <string>

using namespace fe_datakey;

namespace {

// %p -> path, %% -> %, anything else (also a trailing %) as it is.
std::string reference_expand(const std::string& command, const std::string& path) {
    std::string out;
    for (std::size_t i = 0; i < command.size(); i++) {
        if (command[i] == '%' && i + 1 < command.size() &&
            (command[i + 1] == 'p' || command[i + 1] == '%')) {
            out += command[i + 1] == 'p' ? path : "%";
            i++;
        } else {
            out += command[i];
        }
    }
    return out;
}

// A path that is one shell word however %p is quoted ("%p", '%p', bare):
// ASCII letters, digits and / . _ - + , : @ =, and no leading - (an option).
bool shell_safe(const std::string& path) {
    static const std::string allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                       "0123456789/._-+,:@=";
    return path.find_first_not_of(allowed) == std::string::npos && (path.empty() || path[0] != '-');
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    const std::size_t nul = input.find('\0');
    const std::string command = input.substr(0, nul);
    const std::string path = nul == std::string::npos ? std::string() : input.substr(nul + 1);

    FUZZ_CHECK(expand_command(command, path) == reference_expand(command, path));
    // Without %p or %% the command is left exactly as it is.
    if (command.find('%') == std::string::npos)
        FUZZ_CHECK(expand_command(command, path) == command);

    bool accepted = true;
    try {
        check_path_is_shell_safe(path);
    } catch (const Error& e) {
        accepted = false;
        FUZZ_CHECK(e.code() == ErrorCode::unsafe_path);
        FUZZ_CHECK(!e.message().empty() && !e.detail().empty() && !e.hint().empty());
    }
    FUZZ_CHECK(accepted == shell_safe(path));
    return 0;
}
