"""Host-emulated boards served on a pty: the same protocol as a real board.

- `HostBoard(exe)`: the firmware built for board `host` (generated C + te_app
  + the stdio board layer) runs as a child process whose stdin/stdout are the
  master side of a pty; `.port` is the slave path for any serial tool.
- `TflmBoard(tflite)`: a Python device server speaking the protocol on a pty
  and answering with the `tflite-micro` interpreter (latency unit `ns`).
- `emulate(model, runtime)`: the `tinyedge emulate` stage: build (aot) or load
  (tflm) and serve.

Every board started here is stopped by `.close()`, and by an atexit hook when
the Python process exits.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import threading
import time
import tty
from pathlib import Path

import numpy as np

from .errors import DeviceTimeout, FlashError, InputFileError
from .link import protocol as p
from .procutil import ChildProcess, stop_process, track, untrack

log = logging.getLogger(__name__)

def _open_pty() -> tuple[int, int, str]:
    if not hasattr(os, "openpty"):
        from .errors import UsageError

        raise UsageError("host-emulated boards need a POSIX pty (Linux or macOS)",
                         hint="use a qemu-* board instead (tinyedge flash DIR)")
    master, slave = os.openpty()
    tty.setraw(slave)          # raw bytes both ways: no echo, no CR/LF mapping, no line editing
    tty.setraw(master)
    return master, slave, os.ttyname(slave)


def read_announcement(fd: int, timeout: float, what: str) -> str:
    """Read from `fd` until a `tinyedge ready ...` line; return it."""
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        for line in buf.split(b"\n")[:-1]:
            if line.startswith(b"tinyedge ready"):
                return line.decode("ascii", "replace").strip()
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeviceTimeout(f"{what} printed no 'tinyedge ready' line within {timeout:g} s "
                                f"(got {buf[-200:]!r})", hint="the firmware did not start; check its build log")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError as e:
                raise FlashError(f"{what} stopped before it was ready: {e}") from e
            if not chunk:
                raise FlashError(f"{what} stopped before it was ready")
            buf += chunk


class OutputRelay:
    """Copies a board's output (a pipe from the child) into the pty's master side and into the
    board's log, so the log holds every byte the board printed from its start (`monitor` shows
    it, and mirrors the board read-only beside a session)."""

    def __init__(self, src: int, master: int, log_path: Path):
        self._src, self._master = src, master
        self.log_path = log_path
        self._log = open(log_path, "wb", buffering=0)  # noqa: SIM115 - closed by the thread
        self._thread = threading.Thread(target=self._run, name="tinyedge-board-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    data = os.read(self._src, 65536)      # blocks; EOF when the board exits
                except OSError:
                    return
                if not data:
                    return
                self._log.write(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(self._master, view):]
        except OSError:
            return
        finally:
            self._log.close()
            os.close(self._src)

    def join(self, drain: int, timeout: float) -> None:
        """Wait for the relay to end (after the board stopped), reading `drain` (the slave side) so a
        write into a full pty cannot hold it."""
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._thread.join(0.05)
            if self._thread.is_alive() and drain >= 0:
                r, _, _ = select.select([drain], [], [], 0)
                if r:
                    try:
                        os.read(drain, 65536)
                    except OSError:
                        return


class HostBoard(ChildProcess):
    """The host build of the firmware behind a pty.  `.port` is the pyserial URL (a pty path).

    The board reads the pty's master side directly; what it prints goes through an OutputRelay,
    into the pty and into `.log_path`, and the board is registered for `tinyedge monitor`."""

    def __init__(self, exe: os.PathLike | str, *, wait: bool = True, timeout: float = 10.0):
        from .ports import emulated_log_path, register_emulated, unregister_emulated

        exe = Path(exe).expanduser().resolve()
        if not exe.is_file() or not os.access(exe, os.X_OK):
            raise InputFileError(f"{exe} is not an executable", path=exe,
                                 hint="build the project for board host first (tinyedge build DIR)")
        self.exe = exe
        self._unregister = unregister_emulated
        self._master, self._slave, self.port = _open_pty()
        self.log_path = emulated_log_path(self.port)
        out_r, out_w = os.pipe()
        try:
            self.proc = subprocess.Popen([str(exe)], stdin=self._master, stdout=out_w,
                                         stderr=subprocess.DEVNULL, close_fds=True, start_new_session=True)
        except BaseException:
            for fd in (out_r, out_w, self._master, self._slave):
                os.close(fd)
            raise
        os.close(out_w)
        self._relay = OutputRelay(out_r, self._master, self.log_path)
        self.announcement: str | None = None
        track(self)
        register_emulated(self.port, pid=self.proc.pid, log=self.log_path, live=True, board="host")
        if wait:
            try:
                self.announcement = read_announcement(self._slave, timeout, f"{exe.name} (host board)")
            except BaseException:
                self.close()
                raise

    def close(self, timeout: float = 3.0) -> None:
        stop_process(self.proc, timeout)
        self._unregister(self.port, pid=self.proc.pid)
        self._relay.join(self._slave, timeout)
        for name in ("_master", "_slave"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        try:
            self.log_path.unlink()
        except OSError:
            pass
        untrack(self)

    def __enter__(self) -> HostBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------ Python device


class TflmBackend:
    """Runs a .tflite with the tflite-micro interpreter; describes it as a board would."""

    def __init__(self, tflite: os.PathLike | str):
        from tflite_micro.python.tflite_micro import runtime

        from .graph import load_tflite

        self.graph = load_tflite(tflite)
        data = Path(tflite).read_bytes()
        self.interp = runtime.Interpreter.from_bytes(data)
        self.inputs = tuple(self._spec(t) for t in self.graph.input_tensors)
        self.outputs = tuple(self._spec(t) for t in self.graph.output_tensors)

    @staticmethod
    def _spec(t) -> p.TensorSpec:
        scale = float(t.scale[0]) if t.scale is not None and len(t.scale) else 0.0
        zp = int(t.zero_point[0]) if t.zero_point is not None and len(t.zero_point) else 0
        return p.TensorSpec(t.dtype, tuple(int(d) for d in t.shape), t.nbytes, scale, zp)

    def info(self, max_frame: int) -> p.DeviceInfo:
        return p.DeviceInfo(p.VERSION, p.TE_OK, max_frame, 0, 0, self.graph.sha256, "host", "tflm", "ns",
                            self.inputs, self.outputs)

    def run(self, data: bytes) -> tuple[int, int, bytes]:
        pos = 0
        self.interp.reset()   # each inference from the zero state, as the boards do (recurrent models)
        for i, spec in enumerate(self.inputs):
            x = np.frombuffer(data[pos:pos + spec.nbytes], dtype=spec.dtype).reshape(spec.shape)
            self.interp.set_input(x, i)
            pos += spec.nbytes
        t0 = time.perf_counter_ns()
        self.interp.invoke()
        t1 = time.perf_counter_ns()
        out = b"".join(np.ascontiguousarray(self.interp.get_output(i)).tobytes() for i in range(len(self.outputs)))
        return p.TE_OK, t1 - t0, out


class ProtocolServer:
    """The device side of the protocol in Python (the same rules as firmware/app/te_app.c)."""

    def __init__(self, backend, *, max_frame: int = 16397):
        self.backend = backend
        self.info = backend.info(max_frame)
        self.total = self.info.input_bytes
        self.buf = bytearray(self.total)
        self.cur_seq: int | None = None
        self.next = 0
        self.decoder = p.FrameDecoder(max_chunk=max_frame * 2 + 16)

    def announcement(self) -> bytes:
        return (f"tinyedge ready board={self.info.board} runtime={self.info.runtime} "
                f"model={self.info.model_sha256[:16]} proto={p.VERSION} unit={self.info.unit}\n").encode()

    def feed(self, data: bytes) -> bytes:
        """Bytes from the host -> bytes to send back."""
        out = b""
        for ev in self.decoder.feed(data):
            if isinstance(ev, p.Frame) and ev.type < 0x80:
                out += self.handle(ev)
        return out

    def handle(self, f: p.Frame) -> bytes:
        if f.version != p.VERSION:
            return p.encode_frame(p.ERROR, f.seq, p.encode_error(p.TE_ERR_PROTOCOL))
        if f.type == p.HELLO:
            return p.encode_frame(p.HELLO_REPLY, f.seq, p.encode_hello(self.info))
        if f.type != p.INPUT:
            return p.encode_frame(p.ERROR, f.seq, p.encode_error(p.TE_ERR_UNSUPPORTED))
        if len(f.body) < p.INPUT_HEADER_BYTES:
            return p.encode_frame(p.ERROR, f.seq, p.encode_error(p.TE_ERR_PROTOCOL))
        flags, offset, data = p.decode_input(f.body)
        if f.seq != self.cur_seq:
            self.cur_seq, self.next = f.seq, 0
        if offset > self.total or len(data) > self.total - offset:
            return p.encode_frame(p.ERROR, f.seq, p.encode_error(p.TE_ERR_OVERFLOW))
        if offset <= self.next:
            self.buf[offset:offset + len(data)] = data
            self.next = offset + len(data)
        if flags & p.FLAG_LAST and self.next == self.total:
            status, count, y = self.backend.run(bytes(self.buf))
            self.next = 0
            return p.encode_frame(p.RESULT, f.seq, p.encode_result(status, count, y if status == p.TE_OK else b""))
        if flags & (p.FLAG_ACK | p.FLAG_LAST):
            return p.encode_frame(p.ACK, f.seq, p.encode_ack(p.TE_OK, self.next))
        return b""


class TflmBoard:
    """The host-emulated TFLM board: a ProtocolServer on a pty, served by a thread."""

    def __init__(self, tflite: os.PathLike | str, *, max_frame: int = 16397):
        from .ports import emulated_log_path, register_emulated

        self.server = ProtocolServer(TflmBackend(tflite), max_frame=max_frame)
        self._master, self._slave, self.port = _open_pty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tinyedge-tflm-board", daemon=True)
        self.announcement = self.server.announcement().decode().strip()
        # what this board prints, from its start, for `tinyedge monitor` (served by this process)
        self.log_path = emulated_log_path(self.port)
        self._log = open(self.log_path, "wb", buffering=0)  # noqa: SIM115 - closed by close()
        track(self)
        register_emulated(self.port, pid=os.getpid(), log=self.log_path, live=True, board="host")
        self._log.write(self.server.announcement())
        os.write(self._master, self.server.announcement())
        # the announcement waits in the pty until a client reads it; consume ours
        read_announcement(self._slave, 5.0, "the TFLM board")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self._master], [], [], 0.1)
            if not r:
                continue
            try:
                data = os.read(self._master, 65536)
            except OSError:
                return
            if not data:
                return
            reply = self.server.feed(data)
            if reply:
                try:
                    self._log.write(reply)
                except (OSError, ValueError):
                    pass
            view = memoryview(reply)
            while view:
                try:
                    n = os.write(self._master, view)
                except OSError:
                    return
                view = view[n:]

    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1
        if not self._log.closed:
            from .ports import unregister_emulated

            unregister_emulated(self.port, pid=os.getpid())
            self._log.close()
            try:
                self.log_path.unlink()
            except OSError:
                pass
        untrack(self)

    def __enter__(self) -> TflmBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_host_firmware(model: os.PathLike | str, out_dir: os.PathLike | str, *, force: bool = False) -> Path:
    """Generate and build the aot firmware for board `host`; return the executable."""
    from .builder import build_project, read_build
    from .project import generate_project

    proj = generate_project(model, "host", "aot", out_dir, force=force)
    build_project(proj)
    exe = read_build(proj)["artifacts"].get("exe")
    if not exe:
        raise FlashError(f"the host build of {model} made no executable", hint=f"see {proj}/build/build.log")
    return Path(exe)


def aot_host_board(model: Path, work_dir: os.PathLike | str | None, force: bool) -> HostBoard:
    """Runtime aot's host-emulated board: the generated C built for this computer."""
    out = Path(work_dir) if work_dir else Path("build") / f"{model.stem}-host"
    return HostBoard(build_host_firmware(model, out, force=force))


def tflm_host_board(model: Path, work_dir: os.PathLike | str | None, force: bool) -> TflmBoard:
    """Runtime tflm's host-emulated board: the tflite-micro interpreter behind a pty."""
    return TflmBoard(model)


def emulate(model: os.PathLike | str, *, runtime: str = "aot", work_dir: os.PathLike | str | None = None,
            force: bool = False):
    """Start a host-emulated board for `model`; returns a handle with `.port` and `.close()`."""
    from .runtimes import RUNTIMES, get_runtime

    model = Path(model).expanduser().resolve()
    if not model.is_file():
        raise InputFileError(f"{model} does not exist", path=model, hint="give the path of a .tflite model")
    start = get_runtime(runtime).resolve("host_board")
    if start is None:
        from .errors import UsageError

        served = [r.name for r in RUNTIMES.values() if r.host_board]
        raise UsageError(f"runtime {runtime!r} has no host-emulated board",
                         hint=f"use --runtime {' or '.join(served)}")
    return start(model, work_dir, force)
