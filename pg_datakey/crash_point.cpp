// The crash points of the rewrap protocol: SIGKILL at a named step, in test
// builds only (FE_DATAKEY_TEST_HOOKS); elsewhere crash_point() does nothing.
#include "crash_point.hpp"

#ifdef FE_DATAKEY_TEST_HOOKS
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#endif

namespace pg_datakey {

#ifdef FE_DATAKEY_TEST_HOOKS
void crash_point(const char* name) {
    const char* wanted = std::getenv(crash_at_variable);
    if (wanted != nullptr && std::strcmp(wanted, name) == 0)
        ::kill(::getpid(), SIGKILL); // like a power cut: no destructors, no cleanup
}
#else
void crash_point(const char*) {}
#endif

} // namespace pg_datakey
