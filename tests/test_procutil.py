"""Emulated boards never outlive tinyedge, even when their handle was dropped unclosed."""

from __future__ import annotations

import gc
import subprocess

from tinyedge.procutil import close_all, stop_process, track, untrack


class _Board:
    """A stand-in board owning a real child process, registered like QEMU and the host board."""

    def __init__(self):
        self.proc = subprocess.Popen(["sleep", "60"])
        track(self)

    def close(self):
        stop_process(self.proc, timeout=2)
        untrack(self)


def test_dropped_handle_is_still_stopped_at_exit():
    b = _Board()
    proc = b.proc
    del b
    gc.collect()
    assert proc.poll() is None  # still running: nobody closed it
    close_all()                 # what the atexit hook runs
    assert proc.poll() is not None


def test_stop_process_kills_what_ignores_sigterm():
    proc = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60"])
    import time

    time.sleep(0.2)  # let the shell install its trap
    stop_process(proc, timeout=0.5)
    assert proc.poll() is not None
