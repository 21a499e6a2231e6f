"""Emulated boards (QEMU, the host build, the TFLM server) that never outlive tinyedge.

Each running board registers itself with `track()` and unregisters in its
`close()`; an atexit hook closes whatever is still registered when the
Python process exits, so no QEMU or host-board process is left behind.
"""

from __future__ import annotations

import atexit
import subprocess
import threading
from contextlib import contextmanager

# Strong references on purpose: a board whose Python handle was dropped
# (say, by a caller that raised before closing it) must still be stopped at
# exit.  A weak set would forget it while its process kept running.
_LIVE: set = set()
_LOCK = threading.Lock()


def track(board) -> None:
    """Register `board` (anything with `close()`) to be closed at exit."""
    with _LOCK:
        _LIVE.add(board)


def untrack(board) -> None:
    with _LOCK:
        _LIVE.discard(board)


@atexit.register
def close_all() -> None:
    """Close every registered board (best effort: called at interpreter exit)."""
    with _LOCK:
        live = list(_LIVE)
    for b in live:
        try:
            b.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def stop_process(proc: subprocess.Popen, timeout: float = 3.0) -> None:
    """Terminate `proc`, then kill it if it has not stopped within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) received: unwinds like Ctrl-C, so every board is closed on the way out."""


class ChildProcess:
    """What every emulated board started as a child process answers: its pid and whether it
    still runs.  Subclasses set `self.proc` (a subprocess.Popen)."""

    proc = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None


def stop_on_signals() -> None:
    """Make SIGTERM and SIGHUP unwind the main thread as Ctrl-C does (the CLI calls this first).

    Without it the default action kills Python at once and no atexit hook
    runs, so a QEMU started by `flash` or `deploy` would keep running.
    """
    import signal

    def handler(signum, frame):
        raise Terminated(f"stopped by {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread, or no such signal here
            pass


_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@contextmanager
def signals_held():
    """Hold SIGINT, SIGTERM and SIGHUP while the block runs (in the main thread; elsewhere, and
    where the platform cannot, nothing is held); one that came meanwhile is handled as it ends.

    Start a child and register it (track) inside: a signal then finds it either not started or
    registered, never started and unknown to the exit hook.  The child inherits the held mask
    across exec, so its preexec_fn must release it (die_with_parent does).
    """
    import signal

    sigs = {getattr(signal, n) for n in _STOP_SIGNALS if hasattr(signal, n)}
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def die_with_parent() -> None:
    """preexec_fn for an emulator child: Linux sends it SIGKILL when tinyedge dies, by any signal
    (SIGKILL included, which no handler sees).  Elsewhere it does nothing.  Use it only for
    children started from the main thread: the signal follows the thread that forked, not the
    process."""
    import ctypes
    import signal
    import sys

    if hasattr(signal, "pthread_sigmask"):  # started inside signals_held: the emulator must see them
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {getattr(signal, n) for n in _STOP_SIGNALS if hasattr(signal, n)})
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
