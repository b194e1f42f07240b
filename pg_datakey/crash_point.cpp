#include "crash_point.hpp"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace pg_datakey {

void crash_point(const char* name) {
    const char* wanted = std::getenv(crash_at_variable);
    if (wanted != nullptr && std::strcmp(wanted, name) == 0)
        ::kill(::getpid(), SIGKILL); // like a power cut: no destructors, no cleanup
}

} // namespace pg_datakey
