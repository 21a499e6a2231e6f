"""A session with a board: `Device(url).info()`, `.infer(x) -> (y, count)`.

Written against the protocol only (tinyedge/link/protocol.py); the bytes go
through a Transport, so real boards, QEMU's socket and the host board's pty
are all the same to it.  Every wait has a deadline; a request is retried with
the same sequence number a bounded number of times; replies to other
sequence numbers are dropped.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import DeviceTimeout, LinkError, ProtocolError, UsageError
from . import protocol as p
from .transport import Transport

log = logging.getLogger(__name__)

_SEEN_KEEP = 160

_ANNOUNCE = re.compile(r"tinyedge ready ((?:\w+=\S+\s*)+)$")


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    stale_replies: int = 0
    frames_in: int = 0


class Device:
    """A protocol session over any pyserial URL.

    `timeout` bounds every wait for a reply (an inference included);
    `retries` is how many times one request may be resent before
    DeviceTimeout is raised."""

    HELLO_TIMEOUT = 20.0   # seconds the first hello may take in all (a board that is not there fails in it)
    HELLO_NOTICE = 1.0     # after this long without a hello reply, `on_status` says what is being waited for

    def __init__(self, url: str, *, timeout: float = 10.0, retries: int = 5, baud: int = 115200,
                 window: int = p.DEFAULT_WINDOW, transport: Transport | None = None, process=None,
                 hello_timeout: float | None = None, on_status=None):
        if timeout <= 0 or retries < 0:
            raise UsageError("timeout must be > 0 and retries >= 0")
        self.url = url
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.window = int(window)
        self.hello_timeout = (float(hello_timeout) if hello_timeout
                              else min(self.HELLO_TIMEOUT, self.timeout * (self.retries + 1)))
        self.on_status = on_status        # a callable(str) shown to the user while a wait is long, or None
        self._seen = bytearray()          # the last bytes the port sent (quoted when the board never answers)
        self._seen_total = 0
        self.transport = transport or Transport(url, baud=baud)
        self.process = process            # an emulator handle (close() stops it) or None
        self._decoder = p.FrameDecoder()
        self._frames: deque[p.Frame] = deque()
        self.log_lines: list[str] = []
        self._log_seen = 0
        self.announcement: dict[str, str] | None = None
        self._info: p.DeviceInfo | None = None
        self._seq = random.randrange(0x10000)
        self.stats = LinkStats()

    @classmethod
    def from_flash(cls, result, **kw) -> Device:
        """A session on a board a flasher returned; the session owns the emulator process
        (closing it stops QEMU or the host board)."""
        if not result.port:
            raise UsageError("the flasher gave no port", hint="pass the board's port with --port")
        dev = cls(result.port, process=result.process, **kw)
        result.process = None
        return dev

    # ------------------------------------------------------------ plumbing

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.process is not None:
            self.process.close()
            self.process = None

    def _pump(self, deadline: float) -> None:
        if self.transport is None:
            raise LinkError("the session is closed")
        try:
            data = self.transport.read(max(0.0, deadline - time.monotonic()))
        except LinkError:
            fault = self.fault_line()
            if fault is not None:   # the board said why it stopped: that is the error
                raise LinkError(f"{self.url}: the board faulted and stopped: {fault}",
                                hint="the firmware crashed; rebuild it ('tinyedge build'), and report the line "
                                     "if it persists") from None
            raise
        if not data:
            return
        self._seen_total += len(data)
        self._seen += data
        del self._seen[:-_SEEN_KEEP]
        for ev in self._decoder.feed(data):
            if isinstance(ev, p.Frame):
                self.stats.frames_in += 1
                self._frames.append(ev)
            elif isinstance(ev, p.TextLine):
                log.debug("board: %s", ev.text)
                self.log_lines.append(ev.text)
                self.take_announcement(ev.text)
            else:
                log.debug("dropped %d bytes of garbage", len(ev.data))

    def take_announcement(self, line: str) -> bool:
        """Record `line` as the board's boot announcement if it is one (`tinyedge ready k=v ...`)."""
        m = _ANNOUNCE.search(line)
        if m:
            self.announcement = dict(kv.split("=", 1) for kv in m.group(1).split())
            self._info = None     # the board restarted: ask again
        return m is not None

    @property
    def bytes_received(self) -> int:
        """Bytes the port has delivered to this session so far."""
        return self._seen_total

    def seen_bytes(self) -> bytes:
        """The last bytes the port delivered (at most a few KB), for a diagnosis."""
        return bytes(self._seen)

    def fault_line(self) -> str | None:
        """The last `tinyedge fault: ...` line the board printed (a board layer's fault handler), or None."""
        from .faults import explain

        line = next((ln for ln in reversed(self.log_lines) if ln.startswith("tinyedge fault:")), None)
        return explain(line) if line is not None else None

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFF
        return self._seq

    def _send(self, msg_type: int, seq: int, body: bytes = b"") -> None:
        if self.transport is None:
            raise LinkError("the session is closed")
        self.transport.write(p.encode_frame(msg_type, seq, body, lead=True))

    def _wait_reply(self, seq: int, timeout: float) -> p.Frame | None:
        """The next reply frame with sequence number `seq`, or None at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            while self._frames:
                f = self._frames.popleft()
                if f.type < 0x80:
                    continue                    # a request echoed back (loop://)
                if f.seq != seq:
                    self.stats.stale_replies += 1
                    log.debug("dropped a %s for seq %d while waiting for %d", f.name, f.seq, seq)
                    continue
                return f
            if time.monotonic() >= deadline:
                return None
            self._pump(deadline)

    def _timeout_error(self, what: str, tries: int) -> DeviceTimeout:
        fault = self.fault_line()
        if fault is not None:   # a board without an exit device reports the fault and stops answering
            return DeviceTimeout(f"{self.url}: the board faulted during {what} and stopped answering: {fault}",
                                 hint="the firmware crashed; reset the board, rebuild the firmware ('tinyedge "
                                      "build'), and report the line if it persists")
        partial = len(self._decoder._buf) if self._decoder._binary else 0
        if partial:
            return DeviceTimeout(
                f"{self.url}: the board stopped in the middle of a frame ({partial} bytes) during {what}, "
                f"{tries} tries of {self.timeout:g} s", hint="the board reset or the cable dropped; check it and retry")
        return DeviceTimeout(
            f"{self.url}: no answer to {what} after {tries} tries of {self.timeout:g} s",
            hint="check that the board runs tinyedge firmware (reflash it) and that port and baud rate are right")

    def _check_error(self, f: p.Frame, what: str) -> None:
        if f.type != p.ERROR:
            return
        status, version = p.decode_error(f.body)
        if version != p.VERSION:
            raise ProtocolError(f"{self.url}: the board speaks protocol {version}, this tinyedge speaks {p.VERSION}",
                                hint="reflash the board with firmware from this tinyedge, or update tinyedge")
        raise LinkError(f"{self.url}: the board refused {what}: {p.status_name(status)}",
                        hint="reflash the board; if it persists, report it with the board's log")

    # ---------------------------------------------------------------- API

    def wait_for_announcement(self, timeout: float = 10.0) -> dict[str, str]:
        """Wait for the boot line `tinyedge ready ...`; returns its fields (board, runtime, model, proto, unit)."""
        deadline = time.monotonic() + timeout
        while self.announcement is None:
            if time.monotonic() >= deadline:
                seen = f"; last line seen: {self.log_lines[-1]!r}" if self.log_lines else "; nothing was printed"
                raise DeviceTimeout(f"{self.url}: no 'tinyedge ready' line within {timeout:g} s{seen}",
                                    hint="reset the board, and check that it runs tinyedge firmware at this baud rate")
            self._pump(deadline)
        return dict(self.announcement)

    def info(self, *, refresh: bool = False) -> p.DeviceInfo:
        """The board's hello reply (cached until the board restarts).

        The hello is resent every couple of seconds for at most `hello_timeout`
        seconds in all; after `HELLO_NOTICE` s without a reply, `on_status`
        is told what is being waited for.  A port that never answers fails
        with an error quoting what it sent."""
        if self._info is not None and not refresh:
            return self._info
        seq = self._next_seq()
        self.stats.requests += 1
        start = time.monotonic()
        deadline = start + self.hello_timeout
        interval = min(self.timeout, 2.0)
        tries, noticed = 0, False
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if tries:
                self.stats.retries += 1
            tries += 1
            self._send(p.HELLO, seq)
            wait = min(interval, deadline - now)
            if not noticed:
                wait = min(wait, max(0.05, start + self.HELLO_NOTICE - now))
            f = self._wait_reply(seq, wait)
            if f is None:
                if not noticed and time.monotonic() - start >= self.HELLO_NOTICE * 0.99:
                    noticed = True
                    if self.on_status is not None:
                        self.on_status(f"waiting for the board's hello on {self.url} "
                                       f"(up to {self.hello_timeout:g} s)")
                continue
            self._check_error(f, "hello")
            if f.type != p.HELLO_REPLY:
                continue
            info = p.decode_hello(f.body)
            if info.proto_version != p.VERSION:
                raise ProtocolError(
                    f"{self.url}: the board speaks protocol {info.proto_version}, this tinyedge speaks {p.VERSION}",
                    hint="reflash the board with firmware from this tinyedge, or update tinyedge")
            self._info = info
            return info
        self.stats.timeouts += 1
        if self._decoder._binary and self._decoder._buf:
            raise self._timeout_error("hello", tries)
        raise DeviceTimeout(
            f"{self.url}: no answer to hello within {self.hello_timeout:g} s ({tries} tries); {self.heard()}",
            hint="check that the board runs tinyedge firmware (reflash it) and that port and baud rate are right")

    def heard(self) -> str:
        """What the port sent so far, for an error message: its last text, or its last bytes in hex."""
        if not self._seen_total:
            return "the port sent nothing"
        data = bytes(self._seen)
        text = data.decode("utf-8", "replace")
        printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
        more = f" (the last {len(data)} of {self._seen_total} bytes)" if self._seen_total > len(data) else ""
        if printable >= 0.9 * max(1, len(text)):
            shown = " | ".join(line.strip() for line in text.splitlines() if line.strip())
            return f"the port sent{more}: {shown[-120:]!r}"
        return f"the port sent {self._seen_total} bytes that are not tinyedge frames{more}: {data[-32:].hex(' ')}"

    def expect_model(self, sha256: str) -> p.DeviceInfo:
        """Raise LinkError when the board runs another model than `sha256` (hex, full or a prefix)."""
        info = self.info()
        want = sha256.lower()
        if not info.model_sha256.startswith(want[:64]) or len(want) < 8:
            raise LinkError(f"{self.url}: the board runs model {info.model_sha256}, expected {want}",
                            hint="flash the firmware built from this model ('tinyedge flash DIR') and retry")
        return info

    def infer(self, x) -> tuple[np.ndarray | tuple[np.ndarray, ...], int]:
        """Run one inference: `x` int8 (an array, or a list of arrays for several inputs).

        Returns (y, count): y the output (a tuple for several outputs) shaped
        as the board says, count the counter delta in `info().unit`."""
        info, f, _ = self._inference(x)
        if f.type != p.RESULT:
            raise ProtocolError(f"{self.url}: a {f.name} reply to a plain inference (the board profiles it)",
                                hint="call set_profile(False) first")
        status, count, out = p.decode_result(f.body, info.output_bytes)
        if status != p.TE_OK:
            raise LinkError(f"{self.url}: inference failed on the board: {p.status_name(status)}",
                            hint="the firmware's runtime reported an error; check the build report")
        return self._outputs(out, info), count

    def set_profile(self, enabled: bool, dump_op: int | None = None, crc: bool = True) -> None:
        """Profile the inferences that follow (firmware built with the profiler only), CRC every op's
        output (`crc`; a run without CRCs leaves the caches as a plain one does), and stream op
        `dump_op`'s whole output during each; `set_profile(False)` goes back to plain inferences.
        LinkError when the firmware has no profiler."""
        seq = self._next_seq()
        self.stats.requests += 1
        for tries in range(1, self.retries + 2):
            if tries > 1:
                self.stats.retries += 1
            self._send(p.PROFILE, seq, p.encode_profile(enabled, dump_op, crc))
            f = self._wait_reply(seq, self.timeout)
            if f is None:
                self.stats.timeouts += 1
                continue
            if f.type == p.ERROR:
                status, version = p.decode_error(f.body)
                if status == p.TE_ERR_UNSUPPORTED and version == p.VERSION:
                    raise LinkError(f"{self.url}: the board's firmware was built without the per-op profiler",
                                    hint="build it with the profiler: 'tinyedge profile MODEL --board B' "
                                         "or 'tinyedge deploy --per-layer'")
                self._check_error(f, "the profile request")
            if f.type == p.ACK:
                return
            raise ProtocolError(f"{self.url}: unexpected {f.name} reply to a profile request")
        raise self._timeout_error("the profile request", self.retries + 1)

    def infer_profiled(self, x) -> tuple[p.ProfileResult, dict[int, bytes]]:
        """One profiled inference (after `set_profile(True, ...)`): the board's per-op record, and the
        whole outputs of the dump op it streamed ({op index: bytes})."""
        info, f, dumps = self._inference(x)
        if f.type != p.PROFILE_RESULT:
            raise ProtocolError(f"{self.url}: a {f.name} reply to a profiled inference",
                                hint="call set_profile(True) first")
        r = p.decode_profile_result(f.body, info.output_bytes)
        if r.status != p.TE_OK:
            raise LinkError(f"{self.url}: inference failed on the board: {p.status_name(r.status)}",
                            hint="the firmware's runtime reported an error; check the build report")
        return r, dumps

    def _inference(self, x) -> tuple[p.DeviceInfo, p.Frame, dict[int, bytes]]:
        """Stream `x` and run it: (info, the RESULT or PROFILE_RESULT frame, tensors dumped on the way)."""
        info = self.info()
        if info.init_status != p.TE_OK:
            raise LinkError(f"{self.url}: the board's runtime did not start: {p.status_name(info.init_status)}",
                            hint="the model does not fit or is not supported by this firmware; check the build report")
        dumps: dict[int, bytes] = {}
        data = self._input_bytes(x, info)
        total = len(data)
        seq = self._next_seq()
        self.stats.requests += 1
        pos, failures = 0, 0
        while True:
            plan = p.chunk_plan(total, info.max_frame, self.window, start=pos)
            for off, n, flags in plan:
                self._send(p.INPUT, seq, p.encode_input(flags, off, data[off:off + n]))
                if flags:
                    break
            f = self._wait_reply(seq, self.timeout)
            if f is None:
                self.stats.timeouts += 1
                failures += 1
                if failures > self.retries:
                    raise self._timeout_error(f"inference (seq {seq})", failures)
                self.stats.retries += 1
                continue
            self._check_error(f, "the inference")
            if f.type == p.ACK:
                status, nxt = p.decode_ack(f.body)
                if nxt > total:
                    raise ProtocolError(f"{self.url}: the board acknowledged byte {nxt} of a {total}-byte input")
                if nxt <= pos:
                    failures += 1
                    if failures > self.retries:
                        raise LinkError(f"{self.url}: the input did not get through after {failures} tries "
                                        f"(the board holds {nxt} of {total} bytes)",
                                        hint="the line loses data; lower the baud rate or check the cable")
                    self.stats.retries += 1
                pos = nxt
                continue
            if f.type == p.TENSOR:
                op, blob = p.decode_tensor_dump(f.body)
                dumps[op] = dumps.get(op, b"") + blob     # an op with several outputs sends each
                continue
            if f.type in (p.RESULT, p.PROFILE_RESULT):
                return info, f, dumps
            raise ProtocolError(f"{self.url}: unexpected {f.name} reply to an inference")

    @staticmethod
    def _input_bytes(x, info: p.DeviceInfo) -> bytes:
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(info.inputs):
            raise UsageError(f"the model has {len(info.inputs)} inputs, got {len(xs)} arrays")
        parts = []
        for i, (a, spec) in enumerate(zip(xs, info.inputs, strict=True)):
            a = np.asarray(a)
            if a.dtype != np.dtype(spec.dtype):
                raise UsageError(f"input {i} must be {spec.dtype} (quantize it first), got {a.dtype}")
            if a.nbytes != spec.nbytes:
                raise UsageError(f"input {i} has {a.size} values, the board's model takes shape {list(spec.shape)}")
            parts.append(np.ascontiguousarray(a).tobytes())
        return b"".join(parts)

    @staticmethod
    def _outputs(out: bytes, info: p.DeviceInfo):
        ys, pos = [], 0
        for spec in info.outputs:
            a = np.frombuffer(out[pos:pos + spec.nbytes], dtype=np.dtype(spec.dtype)).copy()
            ys.append(a.reshape(spec.shape) if spec.shape and int(np.prod(spec.shape)) == a.size else a)
            pos += spec.nbytes
        return ys[0] if len(ys) == 1 else tuple(ys)
