"""The emulated MicroPython boards: real MicroPython interpreters that tinyedge builds and starts.

- `UnixMicroPython`: MicroPython's unix port behind a pty (like the host
  board), a temporary folder as its filesystem (its cwd and $HOME).
- `QemuMicroPython`: MicroPython's QEMU port under qemu-system-arm with
  `-icount shift=0` and its UART on TCP (`socket://`); its `boot_script`
  mounts a FAT filesystem on a RAM block device, the board's "flash".

Both are stopped by `.close()` and, failing that, when Python exits.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import tempfile
import time
import tty
from pathlib import Path

from ..errors import DeviceTimeout, FlashError, ToolMissingError, UsageError
from ..procutil import ChildProcess, stop_process, track, untrack
from . import build as mpbuild

log = logging.getLogger(__name__)


class UnixMicroPython(ChildProcess):
    """MicroPython's unix port on a pty; `.port` is the pty path (a pyserial URL)."""

    boot_script = None

    def __init__(self, exe: os.PathLike | str, *, heap_bytes: int = 8 << 20, timeout: float = 10.0):
        from ..emulation import OutputRelay
        from ..ports import emulated_log_path, register_emulated

        self.exe = Path(exe)
        self.fs = Path(tempfile.mkdtemp(prefix="tinyedge-mpfs-"))
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        self._slave, self._master = slave, master
        self.port = os.ttyname(slave)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.fs), "TERM": "dumb"}
        # what MicroPython prints goes through a relay into the pty and the board's log (its output
        # from the start, for `tinyedge monitor`); it reads the pty's master side directly
        self.log_path = emulated_log_path(self.port)
        out_r, out_w = os.pipe()
        self.proc = subprocess.Popen([str(self.exe), "-X", f"heapsize={heap_bytes}"], stdin=master, stdout=out_w,
                                     stderr=out_w, cwd=self.fs, env=env, close_fds=True, start_new_session=True)
        os.close(out_w)
        self._relay = OutputRelay(out_r, master, self.log_path)
        track(self)
        register_emulated(self.port, pid=self.proc.pid, log=self.log_path, live=True, board="unix-micropython")
        try:
            self.banner = self._read_banner(timeout)
        except BaseException:
            self.close()
            raise

    def _read_banner(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        buf = b""
        while b">>> " not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise DeviceTimeout(f"MicroPython's unix port printed no prompt (got {buf[-200:]!r})",
                                    hint=f"run {self.exe} by hand to see why")
            r, _, _ = select.select([self._slave], [], [], left)
            if r:
                buf += os.read(self._slave, 4096)
        return buf.decode("utf-8", "replace").strip().splitlines()[0]

    def close(self, timeout: float = 3.0) -> None:
        from ..ports import unregister_emulated

        stop_process(self.proc, timeout)
        unregister_emulated(self.port, pid=self.proc.pid)
        self._relay.join(self._slave, timeout)
        for name in ("_master", "_slave"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        self.log_path.unlink(missing_ok=True)
        shutil.rmtree(self.fs, ignore_errors=True)
        untrack(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def qemu_command(elf: Path, machine: str, port: int, log: os.PathLike | str | None = None) -> list[str]:
    from ..qemu import serial_args

    return ["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-semihosting",
            "-icount", "shift=0", "-kernel", str(elf), *serial_args(port, log)]


class QemuMicroPython(ChildProcess):
    """MicroPython's QEMU port; `.port` is `socket://127.0.0.1:PORT`."""

    def __init__(self, elf: os.PathLike | str, machine: str, *, fs_bytes: int = 1 << 20, timeout: float = 10.0):
        from ..qemu import _free_port, _listening

        exe = shutil.which("qemu-system-arm")
        if exe is None:
            raise ToolMissingError("qemu-system-arm", "sudo apt-get install qemu-system-arm")
        self.elf = Path(elf)
        self._err = tempfile.TemporaryFile()
        from ..ports import emulated_log_path, register_emulated

        self.tcp = _free_port()
        self.log_path = emulated_log_path(self.port)     # QEMU logs what the guest prints, from its start
        cmd = qemu_command(self.elf, machine, self.tcp, self.log_path)
        cmd[0] = exe
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._err)
        track(self)
        deadline = time.monotonic() + timeout
        while not _listening(self.tcp, self.proc.pid):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self._err.seek(0)
                msg = self._err.read().decode("utf-8", "replace").strip()
                self.close()
                raise FlashError(f"qemu-system-arm did not start MicroPython: {msg or 'no output'}")
            time.sleep(0.02)
        register_emulated(self.port, pid=self.proc.pid, log=self.log_path, live=True, board=machine)
        from .package import render_text

        self.boot_script = render_text("ramdisk.py.j2", fs_bytes=fs_bytes)

    @property
    def port(self) -> str:
        return f"socket://127.0.0.1:{self.tcp}"

    def close(self, timeout: float = 3.0) -> None:
        from ..ports import unregister_emulated

        stop_process(self.proc, timeout)
        try:
            self._err.close()
        except OSError:
            pass
        unregister_emulated(self.port, pid=self.proc.pid)
        self.log_path.unlink(missing_ok=True)
        untrack(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_board(board, mpy_dir: os.PathLike | str | None = None):
    """Build (cached) and start the emulated MicroPython `board`; returns its handle."""
    spec = board.micropython
    if spec is None or spec.emulator is None:
        raise UsageError(f"board {board.id} is not an emulated MicroPython board",
                         hint="give the port of the board that runs MicroPython with --port")
    tree = mpbuild.micropython_tree(mpy_dir)
    if spec.emulator == "unix":
        return UnixMicroPython(mpbuild.unix_port(tree), heap_bytes=board.ram_bytes)
    return QemuMicroPython(mpbuild.qemu_port(spec.qemu_board, tree), board.flash.qemu_machine,
                           fs_bytes=spec.fs_bytes)
