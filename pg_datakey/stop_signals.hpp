// SIGINT, SIGTERM, SIGQUIT and SIGHUP while pg_datakey runs a key command:
// the command's process group is killed and the operation ends with an
// error, through the same paths as any other failure (a rewrap removes its
// temporary files), instead of pg_datakey dying with the command left
// running.
#pragma once

namespace pg_datakey {

// Installs the handlers and the library's interrupt check; for main().
void stop_on_signals();

} // namespace pg_datakey
