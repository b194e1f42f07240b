// pg_datakey's postmaster.pid reader, whose answer is the PID it names in a
// refusal: any file gives no postmaster or a positive PID that is the
// file's leading number (after blanks), never another one.
#include "config_file.hpp"

#include "fe_datakey/error.hpp"

#include "fuzz_support.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const std::string path = fuzz_scratch_file("postmaster.pid");
    fuzz_write_file(path, text);
    std::optional<pid_t> pid;
    try {
        pid = pg_datakey::live_postmaster(path.substr(0, path.rfind('/')));
    } catch (const fe_datakey::Error&) {
        return 0; // a file it cannot read is an error, not a crash
    }
    if (!pid)
        return 0;
    FUZZ_CHECK(*pid > 0);
    errno = 0;
    const long written = std::strtol(text.c_str(), nullptr, 10);
    FUZZ_CHECK(errno == 0 && written == *pid);
    return 0;
}
