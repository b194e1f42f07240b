// Messages in the format of PostgreSQL 15's frontend logging:
// "pg_datakey: error: ...", "pg_datakey: detail: ...", "pg_datakey: hint: ...".
#pragma once

#include <string>

namespace fe_datakey {
class Error;
}

namespace pg_datakey {

extern const char* progname;

void log_error(const std::string& message);
void log_warning(const std::string& message);
void log_detail(const std::string& detail);
void log_hint(const std::string& hint);
void log_info(const std::string& message); // progress lines, stderr too
// An error from the library, with its detail and hint.
void log_error(const fe_datakey::Error& error);

} // namespace pg_datakey
