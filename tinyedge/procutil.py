"""Emulated boards (QEMU, the host build, the TFLM server) that never outlive tinyedge.

Each running board registers itself with `track()` and unregisters in its
`close()`; an atexit hook closes whatever is still registered when the
Python process exits, so no QEMU or host-board process is left behind.
"""

from __future__ import annotations

import atexit
import subprocess
import threading

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
