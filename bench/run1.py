#!/usr/bin/env python3
"""Runs one measured command for bench/compare.sh and writes one line to RESULT: its
exit code and wall seconds.

usage: run1.py TIMEOUT_S OUT ERR RESULT -- CMD [ARGS...]

compare.sh runs `/usr/bin/time ... COMMAND` through this: GNU time reports the peak
RSS and CPU times (a child forked from this Python process would start its peak RSS at
Python's 14 MB; one forked from GNU time starts at about 1 MB), and the wall time runs
from just before GNU time is started to the moment it has been waited for. So the
harness's own fixed cost in a wall time is one fork and exec of GNU time and its fork and
exec of the command, about 2.6 ms for `true` on the project's machine. (It used to be
GNU time, timeout(1) and two `date` processes, about 5 ms: a tenth of a 100 MB run, which
the per-packet growth compares.) After TIMEOUT_S seconds the process group gets SIGTERM,
SIGKILL 10 s later, and the exit code is 124, as with timeout(1).
"""
import os
import signal
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 7 or sys.argv[5] != "--":
        sys.exit(__doc__)
    timeout = float(sys.argv[1])
    out, err, result = sys.argv[2:5]
    cmd = sys.argv[6:]
    timed_out = False

    with open(out, "wb") as o, open(err, "wb") as e:
        t0 = time.perf_counter_ns()
        try:
            # A session of its own, so a timeout reaches everything the command started.
            p = subprocess.Popen(cmd, stdout=o, stderr=e, start_new_session=True)
        except OSError as x:
            e.write(f"run1.py: cannot run {cmd[0]}: {x}\n".encode())
            with open(result, "w") as r:
                r.write("127 0\n")
            return

        def on_alarm(_sig, _frame):
            nonlocal timed_out
            sig = signal.SIGKILL if timed_out else signal.SIGTERM
            timed_out = True
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            signal.setitimer(signal.ITIMER_REAL, 10)

        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        # waitpid is retried after the alarm's handler (PEP 475).
        _, status = os.waitpid(p.pid, 0)
        t1 = time.perf_counter_ns()
        signal.setitimer(signal.ITIMER_REAL, 0)
        # Popen must not wait for a process already reaped.
        p.returncode = os.waitstatus_to_exitcode(status)

    rc = p.returncode
    if rc < 0:
        rc = 128 - rc
    if timed_out:
        rc = 124
    with open(result, "w") as r:
        r.write(f"{rc} {(t1 - t0) / 1e9:.4f}\n")


if __name__ == "__main__":
    main()
