# gdb script: runs the program given after --args, and shortens the count
# of the first read() of the file FE_DATAKEY_SHORT_READ (its real path) by
# that program (not its children: gdb stays with the parent at a fork), to
# 7 bytes or half of a smaller count: the kernel then returns a short
# count, which the reader must follow with another read.  It says so in
# the file FE_DATAKEY_SHORT_READ_DONE.  gdb exits with the program's status.
import os

import gdb

target = os.environ["FE_DATAKEY_SHORT_READ"]
done_file = os.environ["FE_DATAKEY_SHORT_READ_DONE"]
done = False


class ShortRead(gdb.Breakpoint):
    def stop(self):
        global done
        if done:
            return False
        fd = int(gdb.parse_and_eval("$rdi"))
        pid = gdb.selected_inferior().pid
        try:
            path = os.readlink("/proc/%d/fd/%d" % (pid, fd))
        except OSError:
            return False
        if path != target:
            return False
        count = int(gdb.parse_and_eval("$rdx"))
        if count < 2:
            return False
        short = 7 if count > 14 else count // 2
        gdb.execute("set $rdx = %d" % short)
        done = True
        with open(done_file, "w") as f:
            f.write("read of %s: count %d shortened to %d\n" % (path, count, short))
        return False


for setting in ("pagination off", "confirm off", "breakpoint pending on",
                "follow-fork-mode parent", "detach-on-fork on",
                "print inferior-events off", "print thread-events off"):
    gdb.execute("set " + setting)
# Signals go to the program untouched (a postmaster lives on them).
gdb.execute("handle all nostop noprint pass")
gdb.execute("handle SIGINT nostop noprint pass")
ShortRead("read", internal=True)
gdb.execute("run")
# The status as a shell gives it: the exit code, or 128 + the signal.
code = gdb.parse_and_eval("$_exitcode")
signal = gdb.parse_and_eval("$_exitsignal")
if code.type.code != gdb.TYPE_CODE_VOID:
    gdb.execute("quit %d" % int(code))
gdb.execute("quit %d" % (128 + int(signal) if signal.type.code != gdb.TYPE_CODE_VOID else 1))
