// Taking our options out of a utility's argv, against real getopt_long: run
// getopt_long once over the whole argv with the utility's options and ours,
// and once over what the split left with the utility's options alone. Our
// options (as the split returns them), the utility's options with their
// values, and the operands must come out the same.
//
// The argv elements come from a vocabulary of the interesting shapes (values
// that look like our options, clusters, attached values, "--", a missing
// value at the end) and raw strings. Abbreviations of our options are not
// ours by design (only full names are taken), so inputs with one are skipped.
#include "argv_split.hpp"

#include "fuzz_support.hpp"

#include <cstdint>
#include <cstdlib>
#include <getopt.h>
#include <string>
#include <vector>

using namespace fe_datakey;

namespace {

enum { ours_base = 1000 };

const char* const shortopts = "b:B:cd:D:j:kNo:O:p:P:rs:U:vx::";
const struct option utility_long[] = {
    {"old-bindir", required_argument, nullptr, 'b'},
    {"new-bindir", required_argument, nullptr, 'B'},
    {"check", no_argument, nullptr, 'c'},
    {"old-options", required_argument, nullptr, 'o'},
    {"jobs", required_argument, nullptr, 'j'},
    {"link", no_argument, nullptr, 'k'},
    {"no-sync", no_argument, nullptr, 'N'},
    {"sync-method", required_argument, nullptr, 1},
    {"optional", optional_argument, nullptr, 2},
    {nullptr, 0, nullptr, 0},
};
const char* const our_names[] = {"key-wrap-command", "key-unwrap-command", "no-key-wrap"};
const bool our_values[] = {true, true, false};

std::vector<struct option> combined_long() {
    std::vector<struct option> all;
    for (const struct option* o = utility_long; o->name != nullptr; ++o)
        all.push_back(*o);
    for (int i = 0; i < 3; i++)
        all.push_back({our_names[i], our_values[i] ? required_argument : no_argument, nullptr,
                       ours_base + i});
    all.push_back({nullptr, 0, nullptr, 0});
    return all;
}

struct Parse {
    std::vector<std::string> utility; // "code:value" per option the utility sees
    std::vector<std::string> ours;    // "--name=value" / "--name"
    std::vector<std::string> operands;
};

Parse run_getopt(std::vector<std::string> args, const struct option* longopts) {
    std::vector<char*> argv;
    for (std::string& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    int argc = static_cast<int>(args.size());
    Parse p;
    optind = 0; // full re-initialisation (glibc)
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv.data(), shortopts, longopts, nullptr);
        if (c == -1)
            break;
        if (c >= ours_base) {
            p.ours.push_back(std::string("--") + our_names[c - ours_base] +
                             (optarg != nullptr ? std::string("=") + optarg : ""));
        } else if (c == '?' && optopt >= ours_base) {
            // Ours, but wrong (a missing value): the split hands it over
            // as it was, for the option parser to report.
            p.ours.push_back(argv[optind - 1]);
        } else if (c == '?') {
            p.utility.push_back("?:" + std::to_string(optopt));
        } else {
            p.utility.push_back(std::to_string(c) + ":" + (optarg != nullptr ? optarg : "<none>"));
        }
    }
    for (int i = optind; i < argc; i++)
        p.operands.push_back(argv[i]);
    return p;
}

const char* const vocabulary[] = {
    "-o",
    "-ob",
    "-k",
    "-kb",
    "-kob",
    "-b",
    "-x",
    "-xval",
    "-c",
    "-",
    "--",
    "--old-bindir",
    "--old-bindir=v",
    "--old-b",
    "--old-b=v",
    "--check",
    "--jobs",
    "--optional",
    "--optional=v",
    "--no-sync",
    "--link",
    "--key-wrap-command",
    "--key-wrap-command=w %p",
    "--key-unwrap-command",
    "--key-unwrap-command=u %p",
    "--key-unwrap-command=",
    "--no-key-wrap",
    "operand",
    "-q",
    "--unknown",
    "--unknown=v",
    "-D",
    "-Ddir",
    "",
    "-o--key-unwrap-command=x",
    "--old-options=--no-key-wrap",
};

// A long option name (up to '=') that only abbreviates one of ours.
bool abbreviates_ours(const std::string& token) {
    if (token.size() <= 2 || token.compare(0, 2, "--") != 0)
        return false;
    std::string name = token.substr(2, token.find('=') - 2);
    for (const char* ours : our_names) {
        std::string full(ours);
        if (name.size() < full.size() && full.compare(0, name.size(), name) == 0)
            return true;
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<struct option> combined = combined_long();
    unsetenv("POSIXLY_CORRECT");
    std::vector<std::string> args{"utility"};
    for (size_t i = 0; i < size && args.size() < 40;) {
        uint8_t b = data[i++];
        if (b < 0xC0) {
            args.emplace_back(vocabulary[b % (sizeof vocabulary / sizeof vocabulary[0])]);
            continue;
        }
        std::string raw;
        for (size_t n = b - 0xC0; n > 0 && i < size; n--, i++)
            raw += data[i] == '\0' ? 'x' : static_cast<char>(data[i]);
        if (abbreviates_ours(raw))
            return 0;
        args.push_back(raw);
    }

    Parse expected = run_getopt(args, combined.data());

    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (std::string& a : copy)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    int argc = static_cast<int>(copy.size());
    std::vector<detail::OwnedOption> owned;
    for (int i = 0; i < 3; i++)
        owned.push_back({our_names[i], our_values[i]});
    std::vector<std::string> found = detail::split_owned_options(
        argc, argv.data(), owned, UtilityOptions{shortopts, utility_long});
    FUZZ_CHECK(argv[argc] == nullptr);

    FUZZ_CHECK(found == expected.ours);
    std::vector<std::string> left(argv.begin(), argv.begin() + argc);
    Parse utility = run_getopt(left, utility_long);
    FUZZ_CHECK(utility.ours.empty());
    FUZZ_CHECK(utility.utility == expected.utility);
    FUZZ_CHECK(utility.operands == expected.operands);
    return 0;
}
