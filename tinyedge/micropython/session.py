"""A session with a board that runs MicroPython, through its raw REPL (mpremote's transport).

`MicroPythonDevice(url, board=..., name=...)` has the same `info()` and
`infer(x) -> (y, count)` as the C firmware's `tinyedge.link.Device`, so
`validate_device` cannot tell them apart.  Underneath:

- the port (any pyserial URL: tty, pty, `socket://`, `rfc2217://`) is opened
  with mpremote's `SerialTransport`; a probe first checks that MicroPython
  answers, and says what did answer when it does not;
- `install(pkg_dir)` copies the package in binary chunks to a temporary
  folder on the board, then renames it into place (a failed install leaves
  the old package, or nothing);
- inputs go as raw bytes in acknowledged chunks; each result comes back as
  one hex frame with a checksum, never parsed from free text;
- latency is counted with the board's `time.ticks_cpu()` or `ticks_us()` and
  reported in the board's unit (cycles, us, or instructions under QEMU).
"""

from __future__ import annotations

import logging
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DeviceTimeout, LinkError, ProtocolError, TinyedgeError

log = logging.getLogger(__name__)

RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n"
CHUNK = 256            # bytes per acknowledged chunk on a real board (its REPL's receive buffer)
CHUNK_EMULATED = 2048  # emulated boards never drop bytes: fewer round trips


class MicroPythonError(TinyedgeError):
    """The board's MicroPython refused or failed what tinyedge asked."""


@dataclass
class MpInfo:
    """What validation asks of a board (the fields of the protocol's DeviceInfo it reads)."""

    board: str
    runtime: str
    unit: str
    clock_hz: int | None
    model_sha256: str = ""
    backend: str = ""
    arch: str = ""
    implementation: str = ""
    mpy: int = 0
    heap_bytes: int = 0
    heap_free: int = 0
    input_bytes: int = 0
    output_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class MpStats:
    requests: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    stream_seconds: float = 0.0


def _summary(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    if "tinyedge ready" in text:
        line = next(ln for ln in text.splitlines() if "tinyedge ready" in ln)
        return f"tinyedge's C firmware ({line.strip()[:80]})"
    if not data:
        return "nothing"
    return repr(data[:60])


class MicroPythonDevice:
    """A raw-REPL session; `info()`, `infer()`, `install()`, `close()`."""

    def __init__(self, url: str, *, board, name: str, timeout: float = 10.0, baud: int = 115200,
                 probe_timeout: float = 3.0, boot_script: str | None = None, process=None):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.url, self.board, self.name, self.timeout = url, board, name, float(timeout)
        self.process = process
        self.stats = MpStats()
        self._model_open = False
        self._loop = False
        self._seq = 0
        self.chunk = CHUNK_EMULATED if board.emulated else CHUNK
        from ..ports import PortBusy, PortLock, flock_holder

        self._lock = PortLock.take(url)      # one session per port (names the holder to a second one)
        try:
            # blocking reads for mpremote's own code (as its command line opens ports); tinyedge's
            # reads below set a short timeout of their own
            self.t = SerialTransport(url, baudrate=baud, timeout=None)
        except (TransportError, OSError) as e:
            if self._lock is not None:
                self._lock.release()
            if "exclusively lock" in str(e):
                raise PortBusy(url, flock_holder(url) or "another program") from None
            raise LinkError(f"cannot open {url}: {e}", hint="check the port (tinyedge ports)") from None
        self.ser = self.t.serial
        try:
            self._probe(probe_timeout)
            self.implementation = self.eval("sys.implementation", "import sys")
            if boot_script:
                self.exec(boot_script)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ REPL plumbing

    def _polling(self, on: bool) -> None:
        self.ser.timeout = 0.2 if on else None

    def _probe(self, timeout: float) -> None:
        """Interrupt whatever runs, enter the raw REPL; an error naming what answered if not MicroPython."""
        self._polling(True)
        try:
            self._probe_raw(timeout)
        finally:
            self._polling(False)
        self.t.enter_raw_repl(soft_reset=False, timeout_overall=timeout)   # ... and back, cleanly

    def _probe_raw(self, timeout: float) -> None:
        self.ser.write(b"\r\x03\x03")
        time.sleep(0.05)
        seen = bytearray()
        self.ser.write(b"\r\x01")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = self.ser.read(self.ser.in_waiting or 1)
            if chunk:
                seen += chunk
                if RAW_PROMPT in seen:
                    # drop the rest of the prompt ('>') so that exec finds it
                    self.t.in_raw_repl = True
                    self.ser.write(b"")
                    break
        else:
            what = self._tinyedge_firmware() or _summary(bytes(seen))
            raise LinkError(f"no MicroPython answered on {self.url} within {timeout:g} s; {what} answered",
                            hint="flash MicroPython (1.23 or newer) on the board, or pick its port")
        # the prompt's '>' may still be in flight; exec_raw_no_follow waits for it
        self.t.serial.write(b"\r\x02")     # friendly REPL ...
        self.t.in_raw_repl = False

    def _tinyedge_firmware(self) -> str | None:
        """Ask in tinyedge's own protocol: a C firmware board answers hello with its board and runtime."""
        from ..link import protocol as p

        try:
            self.ser.write(p.encode_frame(p.HELLO, 1, b"", lead=True))
            dec = p.FrameDecoder()
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                data = self.ser.read(self.ser.in_waiting or 1)
                for ev in dec.feed(data) if data else ():
                    if isinstance(ev, p.Frame) and ev.type == p.HELLO_REPLY:
                        info = p.decode_hello(ev.body)
                        return (f"tinyedge's C firmware (board {info.board}, runtime {info.runtime}, "
                                f"model {info.model_sha256[:16]})")
        except Exception as e:  # noqa: BLE001 - only a better error message is at stake
            log.debug("hello probe: %s", e)
        return None

    def exec(self, code: str, timeout: float | None = None) -> bytes:
        from mpremote.transport import TransportError

        try:
            out, err = self.t.exec_raw(code, timeout=timeout or self.timeout)
        except TransportError as e:
            raise DeviceTimeout(f"the board did not finish a command within {timeout or self.timeout:g} s ({e})",
                                hint="raise --timeout, or check that the board still runs MicroPython") from None
        if err:
            text = err.decode("utf-8", "replace").strip()
            if "MemoryError" in text:
                raise MicroPythonError(f"the board ran out of heap: {text.splitlines()[-1]}")
            raise MicroPythonError(f"the board's MicroPython raised: {text.splitlines()[-1] if text else '?'}")
        return out

    def eval(self, expr: str, setup: str = ""):
        import ast

        out = self.exec((setup + "\n" if setup else "") + f"print(repr({expr}))")
        text = out.decode("utf-8", "replace").strip()
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text

    def _status(self, out: bytes) -> list[str]:
        self.board_notes = []
        for line in out.decode("utf-8", "replace").splitlines():
            if line.startswith("TE!note "):
                self.board_notes.append(line[8:].strip())
            elif line.startswith("TE!"):
                return line[3:].split()
        raise ProtocolError(f"the board gave no status line (got {out[-120:]!r})")

    def _helpers(self) -> None:
        if getattr(self, "_helpers_ok", False):
            return
        from .package import render_text

        spec = self.board.micropython
        self.exec(render_text("session.py.j2", ticks=spec.ticks if spec else "ticks_us"))
        self._helpers_ok = True

    def _wait_ack(self, deadline: float) -> None:
        self._polling(True)
        try:
            self._wait_ack1(deadline)
        finally:
            self._polling(False)

    def _wait_ack1(self, deadline: float) -> None:
        while True:
            b = self.ser.read(1)
            if b == b"\x06":
                return
            if b:
                raise ProtocolError(f"unexpected byte {b!r} from the board while sending data")
            if time.monotonic() > deadline:
                raise DeviceTimeout(f"the board did not acknowledge data within {self.timeout:g} s")

    def _send_chunked(self, data: bytes, chunk: int) -> None:
        view = memoryview(data)
        for i in range(0, len(view), chunk):
            self.ser.write(view[i:i + chunk])
            self._wait_ack(time.monotonic() + self.timeout)
            self._sent = i + len(view[i:i + chunk])
        self.stats.bytes_out += len(data)

    # ------------------------------------------------------------ install

    def free_bytes(self) -> int:
        self._helpers()
        return int(self.eval("_te_free()"))

    def install(self, pkg_root: Path, name: str) -> int:
        """Copy `pkg_root/name/` to the board's working folder as `name/`; return the bytes installed.

        Files go to `.te-<name>-new/` first, then the folders are renamed, so a
        failure (a full filesystem) leaves the old package or nothing."""
        src = Path(pkg_root) / name
        files = sorted(p for p in src.rglob("*") if p.is_file())
        total = sum(p.stat().st_size for p in files)
        self._helpers()
        tmp, old = f".te-{name}-new", f".te-{name}-old"
        self.exec(f"_te_rmtree({tmp!r}); _te_rmtree({old!r})")
        free = int(self.eval("_te_free()"))
        if 0 <= free < total:
            raise MicroPythonError(f"the board's filesystem is full: the package needs {total:,} bytes, "
                                   f"{free:,} are free", hint="delete files on the board (mpremote rm) and retry")
        try:
            self.exec(f"import os; os.mkdir({tmp!r})")
            for p in files:
                rel = p.relative_to(src).as_posix()
                for d in list(reversed(p.relative_to(src).parents))[1:]:
                    self.exec(f"import os\ntry:\n os.mkdir({(tmp + '/' + d.as_posix())!r})\nexcept OSError:\n pass")
                data = p.read_bytes()
                self.t.exec_raw_no_follow(f"_te_recv({(tmp + '/' + rel)!r}, {len(data)}, {self.chunk})")
                self._send_chunked(data, self.chunk)
                out, err = self.t.follow(self.timeout)
                if err:
                    raise MicroPythonError(f"writing {rel} on the board failed: {err.decode(errors='replace')[-200:]}")
                st = self._status(out)
                if st[0] != "ok":
                    free = int(self.eval("_te_free()"))
                    raise MicroPythonError(
                        f"the board's filesystem is full: writing {rel} failed (OSError {st[1]}); the package "
                        f"needs {total:,} bytes, {max(free, 0):,} were free",
                        hint="delete files on the board (mpremote rm) and retry")
            self.exec(f"import os\ntry:\n os.rename({name!r}, {old!r})\nexcept OSError:\n pass\n"
                      f"os.rename({tmp!r}, {name!r})\n_te_rmtree({old!r})")
        except BaseException:
            try:
                self.exec(f"_te_rmtree({tmp!r})")
            except TinyedgeError:
                pass
            raise
        return total

    # ------------------------------------------------------------ the model

    def open_model(self) -> MpInfo:
        self._helpers()
        out = self.exec(f"import sys\nsys.modules.pop({self.name!r}, None)\n_te_m = _te_open({self.name!r})",
                        timeout=max(self.timeout, 60.0))
        st = self._status(out)
        if st[0] == "mem":
            f0 = int(st[1])
            raise MicroPythonError(
                f"the model does not fit the board's heap: importing it needs more than the {f0:,} bytes free "
                f"(package {self._pkg_bytes:,} bytes of code and constants, plus its arena)",
                hint="use a smaller model, free heap on the board, or a board with more RAM")
        if st[0] == "import":
            raise MicroPythonError(f"the board cannot import the package: {' '.join(st[1:])}",
                                   hint="generate it for this board's MicroPython (--board)")
        if st[0] != "ok":
            raise ProtocolError(f"unexpected status {' '.join(st)!r}")
        unit, _ = self._unit()
        impl = self.implementation if isinstance(self.implementation, str) else str(self.implementation)
        mpy = re.search(r"_mpy=(\d+)", impl)
        self._info = MpInfo(board=self.board.id, runtime="micropython", unit=unit, clock_hz=self.board.clock_hz,
                            model_sha256=st[6], backend=st[1], arch=st[7], implementation=impl,
                            mpy=int(mpy.group(1)) if mpy else 0, heap_bytes=int(st[2]), heap_free=int(st[3]),
                            input_bytes=int(st[4]), output_bytes=int(st[5]), notes=list(self.board_notes))
        self._model_open = True
        return self._info

    _pkg_bytes = 0

    def _unit(self) -> tuple[str, int]:
        spec = self.board.micropython
        if self.board.cycle_counter == "qemu-icount":
            return "instructions", spec.unit_per_tick if spec else 1000
        if spec and spec.ticks == "ticks_cpu":
            return "cycles", 1
        return "us", 1

    def info(self) -> MpInfo:
        if not self._model_open:
            return self.open_model()
        return self._info

    def _start_loop(self) -> None:
        if not self._loop:
            self.t.exec_raw_no_follow(f"_te_loop(_te_m, {self.chunk})")
            self._loop = True

    def infer(self, x) -> tuple[np.ndarray, int]:
        info = self.info()
        data = np.ascontiguousarray(x, dtype=np.int8).tobytes()
        if len(data) != info.input_bytes:
            raise ProtocolError(f"input is {len(data)} bytes; the model takes {info.input_bytes}")
        self._start_loop()
        self._seq = (self._seq + 1) & 0xFFFF
        t0 = time.perf_counter()
        self._sent = 0
        self._inflight = True
        self.ser.write(bytes([0x53, self._seq >> 8, self._seq & 0xFF]))
        self._send_chunked(data, self.chunk)
        frame = self._read_frame(time.monotonic() + self.timeout)
        self._inflight = False
        self.stats.stream_seconds += time.perf_counter() - t0
        self.stats.requests += 1
        st, seq, ticks, y = frame
        if seq != self._seq:
            raise ProtocolError(f"result for sample {seq}, expected {self._seq}")
        if st == 2:
            raise MicroPythonError("the board ran out of heap during inference")
        if st != 0:
            raise MicroPythonError("the model raised an exception on the board")
        _, per = self._unit()
        return np.frombuffer(y, dtype=np.int8).copy(), ticks * per

    def _read_frame(self, deadline: float):
        self._polling(True)
        try:
            return self._read_frame1(deadline)
        finally:
            self._polling(False)

    def _read_frame1(self, deadline: float):
        buf = bytearray()
        while True:
            b = self.ser.read(max(1, self.ser.in_waiting))
            if b:
                buf += b
                start = buf.find(b"\x02R")
                if start >= 0:
                    end = buf.find(b"\n", start)
                    if end >= 0:
                        return self._decode(bytes(buf[start + 2:end]).strip())
                if b"\x04" in buf:
                    raise MicroPythonError(f"the session on the board stopped: {bytes(buf)[-200:]!r}")
            elif time.monotonic() > deadline:
                raise DeviceTimeout(f"no result from the board within {self.timeout:g} s",
                                    hint="raise --timeout (a big model under viper is slow)")

    def _decode(self, text: bytes):
        try:
            raw = bytes.fromhex(text[:-4].decode())
            chk = int(text[-4:], 16)
        except ValueError:
            raise ProtocolError(f"garbled result frame {text[:60]!r}") from None
        if sum(raw) & 0xFFFF != chk or len(raw) < 7:
            raise ProtocolError("result frame failed its checksum")
        self.stats.bytes_in += len(text)
        st, seq, ticks = raw[0], (raw[1] << 8) | raw[2], int.from_bytes(raw[3:7], "big")
        return st, seq, ticks, raw[7:]

    # ------------------------------------------------------------ the per-op profiler

    _profile = (False, None, True)

    def profile_counter(self) -> tuple[str, int]:
        """What times the ops (for the report): its description, and its resolution in the unit."""
        spec = self.board.micropython
        ticks = spec.ticks if spec else "ticks_us"
        unit, per = self._unit()
        return (f"time.{ticks}() of the board's MicroPython, one tick = {per:,} {unit}"
                + (" (-icount shift=0: 1 ns of virtual time per instruction)" if unit == "instructions" else ""),
                per)

    def set_profile(self, enabled: bool, dump_op: int | None = None, crc: bool = True) -> None:
        """As `tinyedge.link.Device.set_profile`: the profiled inferences that follow time every op,
        CRC every op's output (`crc`) and send op `dump_op`'s whole output.  Nothing goes to the
        board: each `infer_profiled` carries these."""
        self._profile = (bool(enabled), dump_op, bool(crc))

    def infer_profiled(self, x):
        """One profiled inference (templates/micropython/profile.py.j2): the board's per-op record as
        the C firmware's (`tinyedge.link.protocol.ProfileResult`, counts in the board's unit), and
        the dump op's whole output ({op index: bytes})."""
        import binascii

        from ..link import protocol as p

        info = self.info()
        data = np.ascontiguousarray(x, dtype=np.int8).tobytes()
        if len(data) != info.input_bytes:
            raise ProtocolError(f"input is {len(data)} bytes; the model takes {info.input_bytes}")
        enabled, dump_op, crc = self._profile
        if not enabled:
            raise ProtocolError("a profiled inference without set_profile(True)", hint="call set_profile(True) first")
        self.stop_loop()
        if not getattr(self, "_prof_ok", False):
            from .package import render_text

            spec = self.board.micropython
            self.exec(render_text("profile.py.j2", ticks=spec.ticks if spec else "ticks_us"))
            self._prof_ok = True
        mode = 1 | (2 if crc else 0)
        dump = -1 if dump_op is None else int(dump_op)
        out = self.exec(f"_te_prof(_te_m, binascii.unhexlify({data.hex()!r}), {mode}, {dump})",
                        timeout=max(self.timeout, 60.0))
        self.stats.requests += 1
        st = self._status(out)
        if st[0] == "noprof":
            raise LinkError(f"{self.url}: the package's native module was built without the per-op profiler",
                            hint="install a profile package: 'tinyedge profile MODEL --board B' (or --backend viper)")
        if st[0] != "prof" or len(st) != 9:
            raise ProtocolError(f"unexpected profile status {' '.join(st)[:80]!r}")
        _, per = self._unit()
        whole, plain, cal, pairs, over = (int(v) for v in st[2:7])
        self.last_plain_count = plain * per
        rec = binascii.unhexlify(st[7])
        ops = tuple(p.OpRecord(raw * per, crc_, nb) for raw, crc_, nb in
                    (struct.unpack_from("<III", rec, k) for k in range(0, len(rec), 12)))
        y = binascii.unhexlify(st[8])
        dumps: dict[int, bytes] = {}
        for line in out.decode("utf-8", "replace").splitlines():
            if line.startswith("TE!dump "):
                _, op, blob = line.split()
                dumps[int(op)] = binascii.unhexlify(blob)
        return p.ProfileResult(p.TE_OK, whole * per, cal * per, pairs, bool(over), ops, y), dumps

    def stop_loop(self) -> None:
        """End the streaming loop on the board (also after Ctrl-C mid-sample)."""
        if not self._loop:
            return
        self._loop = False
        try:
            if getattr(self, "_inflight", False):
                # interrupted inside a sample: finish it (zeros) and drop its result
                n = self._info.input_bytes
                self._send_chunked(bytes(n - self._sent), self.chunk)
                self._read_frame(time.monotonic() + self.timeout)
                self._inflight = False
            self.ser.write(b"QQQ")
            self.t.follow(min(self.timeout, 5.0))
        except Exception as e:  # noqa: BLE001 - best effort: the session ends anyway
            log.debug("ending the loop: %s", e)

    def close(self) -> None:
        try:
            self.stop_loop()
        finally:
            try:
                self.t.close()
            except Exception:  # noqa: BLE001
                pass
            if self._lock is not None:
                self._lock.release()
            if self.process is not None:
                self.process.close()
                self.process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
