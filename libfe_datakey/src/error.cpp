// I/O errors worded as PostgreSQL words them.
#include "fe_datakey/error.hpp"

#include <cstring>

namespace fe_datakey {

void throw_io_error(const std::string& what, int saved_errno) {
    throw Error(ErrorCode::io, what + ": " + std::strerror(saved_errno));
}

std::string in_quotes(const std::string& text) {
    return "\"" + text + "\"";
}

} // namespace fe_datakey
