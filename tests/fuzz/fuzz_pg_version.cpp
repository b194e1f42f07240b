// pg_datakey's PG_VERSION reader, whose answer names a directory to run a
// postgres from (/usr/lib/postgresql/N/bin): any file gives a major
// version of 1 to 4 digits or none, and it is the file's first line exactly
// when that line is such a number.
#include "config_file.hpp"

#include "fe_datakey/error.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const std::string path = fuzz_scratch_file("PG_VERSION");
    fuzz_write_file(path, text);
    std::optional<std::string> major;
    try {
        major = pg_datakey::cluster_major_version(path.substr(0, path.rfind('/')));
    } catch (const fe_datakey::Error&) {
        return 0; // a file it cannot read is an error, not a crash
    }
    const std::string line = text.substr(0, text.find('\n'));
    const bool number = !line.empty() && line.size() <= 4 &&
                        line.find_first_not_of("0123456789") == std::string::npos;
    FUZZ_CHECK(major.has_value() == number);
    if (major)
        FUZZ_CHECK(*major == line);
    return 0;
}
