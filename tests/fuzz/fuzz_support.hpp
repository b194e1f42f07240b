// Shared by the harnesses: a check that aborts (a finding for libFuzzer),
// and a scratch file per process in a private directory.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

// A path in a directory created once per process (removed at exit).
inline std::string fuzz_scratch_file(const std::string& name) {
    static const std::string dir = [] {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                           "/fe_datakey_fuzz.XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr)
            std::abort();
        static std::string removed_at_exit;
        removed_at_exit = tmpl;
        std::atexit([] {
            std::string cmd = "rm -rf -- '" + removed_at_exit + "'";
            if (std::system(cmd.c_str()) != 0) {
            }
        });
        return tmpl;
    }();
    return dir + "/" + name;
}

inline void fuzz_write_file(const std::string& path, const std::string& contents) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
    if (!out)
        std::abort();
}
