// postgresql.conf: a value written as a quoted line reads back as the same
// value, through the quoting alone and through the file reader; and the
// reader survives any file.
#include "fe_datakey/conf.hpp"
#include "fe_datakey/error.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <cstring>
#include <string>

using namespace fe_datakey;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string input(reinterpret_cast<const char*>(data), size);
    // The first part (up to a NUL) is a value: a C string, as every caller
    // hands over. The rest is a whole file for the reader.
    const std::string value = input.substr(0, input.find('\0'));
    const std::string quoted = quote_conf_value(value);
    FUZZ_CHECK(quoted.size() >= 2 && quoted.front() == '\'' && quoted.back() == '\'');
    FUZZ_CHECK(quoted.find('\n') == std::string::npos);
    FUZZ_CHECK(unquote_conf_value(quoted) == value);

    const std::string path = fuzz_scratch_file("postgresql.conf");
    fuzz_write_file(path, "# a comment\nport = 5432\n" + std::string(unwrap_command_setting) +
                              " = " + quoted + "\n");
    std::optional<std::string> read = get_conf_unwrap_command(path);
    FUZZ_CHECK(read.has_value() && *read == value);

    if (std::size_t nul = input.find('\0'); nul != std::string::npos) {
        fuzz_write_file(path, input.substr(nul + 1));
        try {
            (void)get_conf_unwrap_command(path);
        } catch (const Error&) {
            // A file it cannot read is an error, not a crash.
        }
    }
    return 0;
}
