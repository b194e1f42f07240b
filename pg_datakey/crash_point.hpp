// Testing hook: FE_DATAKEY_CRASH_AT=<name> makes pg_datakey kill itself with
// SIGKILL at the named step of a rewrap or repair, so that tests can prove
// recovery from each step. Read by pg_datakey only, never by the library,
// and only when built with -DFE_DATAKEY_TEST_HOOKS=ON (as PostgreSQL's
// injection points need --enable-injection-points): without it crash_point()
// is a no-op and the variable means nothing.
#pragma once

namespace pg_datakey {

constexpr const char* crash_at_variable = "FE_DATAKEY_CRASH_AT";

void crash_point(const char* name);

} // namespace pg_datakey
