// pg_datakey's messages on stderr, prefixed "pg_datakey: error:" as PostgreSQL's tools do.
#include "logging.hpp"

#include "fe_datakey/error.hpp"

#include <cstdio>

namespace pg_datakey {

const char* progname = "pg_datakey";

namespace {
void emit(const char* level, const std::string& text) {
    // One write per line keeps lines whole when other processes share stderr.
    std::string line =
        std::string(progname) + ": " + (level ? std::string(level) + ": " : "") + text + "\n";
    std::fputs(line.c_str(), stderr);
}
} // namespace

void log_error(const std::string& message) {
    emit("error", message);
}
void log_warning(const std::string& message) {
    emit("warning", message);
}
void log_detail(const std::string& detail) {
    emit("detail", detail);
}
void log_hint(const std::string& hint) {
    emit("hint", hint);
}
void log_info(const std::string& message) {
    emit(nullptr, message);
}

void log_error(const fe_datakey::Error& error) {
    log_error(error.message());
    if (!error.detail().empty())
        log_detail(error.detail());
    if (!error.hint().empty())
        log_hint(error.hint());
}

} // namespace pg_datakey
