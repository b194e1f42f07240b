// Built from pg_datakey/crash_point.cpp without FE_DATAKEY_TEST_HOOKS: asks
// for a crash point with FE_DATAKEY_CRASH_AT set and must live to say so.
#include "crash_point.hpp"

#include <cstdio>
#include <cstdlib>

#ifdef FE_DATAKEY_TEST_HOOKS
#error "this test must be built without FE_DATAKEY_TEST_HOOKS"
#endif

int main() {
    if (::setenv(pg_datakey::crash_at_variable, "after-journal", 1) != 0)
        return 2;
    pg_datakey::crash_point("after-journal");
    std::puts("crash_point(\"after-journal\") returned: the hook is absent");
    return 0;
}
