// The signals that stop pg_datakey (stop_signals.hpp): a handler that only
// notes the signal, read by the library's interrupt check while a command
// runs. Outside a command nothing waits: the work in hand (a durable write,
// a rename) finishes, and a command that follows is stopped as it starts.
#include "stop_signals.hpp"

#include "fe_datakey/command.hpp"

#include <csignal>
#include <cstring>

namespace pg_datakey {

namespace {

volatile sig_atomic_t stop_requested = 0;

extern "C" void note_stop_signal(int) {
    stop_requested = 1;
}

int stop_check() {
    return stop_requested;
}

} // namespace

void stop_on_signals() {
    struct sigaction act;
    std::memset(&act, 0, sizeof act);
    act.sa_handler = note_stop_signal;
    sigemptyset(&act.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP}) {
        struct sigaction old;
        // An ignored signal (nohup) stays ignored.
        if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sig, &act, nullptr);
    }
    fe_datakey::set_interrupt_check(stop_check);
}

} // namespace pg_datakey
