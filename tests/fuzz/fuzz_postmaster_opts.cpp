// pg_datakey's postmaster.opts reader and the server options it looks at.
// The first byte chooses what the rest is:
//  - even: a whole postmaster.opts, any bytes: read without a crash, and
//    the options found in it are absolute paths;
//  - odd: words separated by NULs (the program, then its arguments),
//    written as the server writes them (CreateOptsFile: the program, then
//    ` "arg"` each, a newline); when no word makes that text ambiguous,
//    they must read back as the same words.
// Either way, config_file and -D words appended to what was read win: the
// last one counts, whatever came before (a dangling -c or -D takes only the
// first of them as its value).
#include "config_file.hpp"

#include "fe_datakey/error.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <string>
#include <vector>

using namespace pg_datakey;

namespace {

std::vector<std::string> split_at_nul(const std::string& text) {
    std::vector<std::string> words;
    std::size_t start = 0;
    for (std::size_t nul; (nul = text.find('\0', start)) != std::string::npos; start = nul + 1)
        words.push_back(text.substr(start, nul - start));
    words.push_back(text.substr(start));
    return words;
}

// Whether the reader can tell the words apart in the text the server writes:
// the separator ` "` first occurs after the program and `" "` first occurs at
// the end of each argument but the last, never in it; without arguments, the
// newline the reader strips is not part of the program.
bool unambiguous(const std::vector<std::string>& words) {
    const std::string& program = words[0];
    if (words.size() == 1)
        return program.find(" \"") == std::string::npos &&
               (program.empty() || (program.back() != '\n' && program.back() != '\r'));
    if ((program + " \"").find(" \"") != program.size())
        return false;
    for (std::size_t i = 1; i + 1 < words.size(); ++i)
        if ((words[i] + "\" \"").find("\" \"") != words[i].size())
            return false;
    return (words.back() + "\"").find("\" \"") == std::string::npos;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0)
        return 0;
    const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string opts = fuzz_scratch_file("postmaster.opts");
    const std::string datadir = opts.substr(0, opts.rfind('/'));

    std::vector<std::string> written;
    if (data[0] % 2 == 0) {
        fuzz_write_file(opts, rest);
    } else {
        written = split_at_nul(rest);
        std::string text = written[0];
        for (std::size_t i = 1; i < written.size(); ++i)
            text += " \"" + written[i] + "\"";
        fuzz_write_file(opts, text + "\n");
    }

    std::vector<std::string> words;
    try {
        words = postmaster_opts(datadir);
    } catch (const fe_datakey::Error&) {
        return 0; // a file it cannot read is an error, not a crash
    }
    if (!written.empty() && unambiguous(written))
        FUZZ_CHECK(words == written);
    if (words.empty())
        FUZZ_CHECK(rest.empty() && written.empty());

    std::vector<std::string> args;
    if (!words.empty())
        args.assign(words.begin() + 1, words.end());
    ServerOptions found = parse_server_options(args, datadir);
    FUZZ_CHECK(!found.config_file || found.config_file->rfind('/', 0) == 0);
    FUZZ_CHECK(!found.data_dir || found.data_dir->rfind('/', 0) == 0);

    for (const char* w : {"-Dfirst", "-Dsecond", "--config_file=/a.conf", "--config-file=b.conf"})
        args.push_back(w);
    found = parse_server_options(args, datadir);
    FUZZ_CHECK(found.data_dir && *found.data_dir == datadir + "/second");
    FUZZ_CHECK(found.config_file && *found.config_file == datadir + "/b.conf");
    return 0;
}
