"""The tinyedge serial protocol, host side: framing and messages (docs/protocol.md).

A frame on the wire is ``COBS(header | body | crc32) 0x00`` where the header
is ``0xA0 | version, type, seq (u16 LE)`` and the CRC-32 (zlib's) covers
header and body, little-endian.  Requests from the host are preceded by one
extra ``0x00`` so that garbage on the line never swallows them.  The board's
own text output (lines ending in ``\\n``) shares the line between frames.

`FrameDecoder.feed(bytes)` turns a byte stream into `Frame`, `TextLine` and
`Garbage` events; it never raises for any input and keeps no more than
`max_chunk` bytes.  The same rules are implemented in C in
firmware/proto/te_proto.c; tests feed both the same corpus.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

from cobs import cobs as _cobs

from ..errors import ProtocolError

VERSION = 1
MAGIC = 0xA0
HEADER_BYTES = 4
CRC_BYTES = 4
INPUT_HEADER_BYTES = 5          # flags u8, offset u32
DEFAULT_WINDOW = 4096           # bytes sent between two turnarounds (at least)

# message types (requests < 0x80 <= replies)
HELLO = 0x01
INPUT = 0x02
HELLO_REPLY = 0x81
ACK = 0x82
RESULT = 0x83
ERROR = 0xFF
# per-op profiling (firmware built with the profiler: tinyedge profile, deploy --per-layer);
# firmware without it answers PROFILE with ERROR(TE_ERR_UNSUPPORTED), so version 1 stays
PROFILE = 0x03
PROFILE_RESULT = 0x84
TENSOR = 0x85
NO_DUMP = 0xFFFF

MSG_NAMES = {HELLO: "HELLO", INPUT: "INPUT", HELLO_REPLY: "HELLO_REPLY", ACK: "ACK",
             RESULT: "RESULT", ERROR: "ERROR", PROFILE: "PROFILE", PROFILE_RESULT: "PROFILE_RESULT",
             TENSOR: "TENSOR"}

# INPUT flags
FLAG_ACK = 0x01
FLAG_LAST = 0x02

# te_status_t (firmware/include/te_status.h)
STATUS_NAMES = {
    0: "TE_OK", 1: "TE_ERR_ARG", 2: "TE_ERR_UNSUPPORTED", 3: "TE_ERR_ARENA", 4: "TE_ERR_NOT_READY",
    5: "TE_ERR_PROTOCOL", 6: "TE_ERR_CRC", 7: "TE_ERR_OVERFLOW", 8: "TE_ERR_INTERNAL",
}
TE_OK = 0
TE_ERR_NOT_READY = 4
TE_ERR_PROTOCOL = 5
TE_ERR_OVERFLOW = 7
TE_ERR_UNSUPPORTED = 2

# TFLite TensorType codes (te_dtype_t)
DTYPE_NAMES = {9: "int8", 7: "int16", 2: "int32", 3: "uint8", 0: "float32", 4: "int64"}
DTYPE_CODES = {v: k for k, v in DTYPE_NAMES.items()}


def status_name(code: int) -> str:
    return STATUS_NAMES.get(code, f"status {code}")


class FrameError(ProtocolError):
    """A byte string that is not a valid COBS block or frame."""


# ---------------------------------------------------------------- COBS + CRC


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data` (no delimiter), with the `cobs` library (a C extension): about 2x faster than
    the pure-Python loop it replaced (benchmarks/bench_cobs_crc.py).  A final run of 254 non-zero
    bytes ends with its 0xFF block (the firmware's encoder adds an empty block; both decode the same)."""
    return _cobs.encode(bytes(data))


def cobs_decode(block: bytes) -> bytes:
    """Decode a COBS block (without its 0x00 delimiter); FrameError when malformed."""
    try:
        return _cobs.decode(bytes(block))
    except _cobs.DecodeError as e:
        raise FrameError(f"malformed COBS block: {e}") from None


# ------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    body: bytes
    version: int = VERSION
    skipped: int = 0        # garbage bytes before the frame in its chunk

    @property
    def name(self) -> str:
        return MSG_NAMES.get(self.type, f"0x{self.type:02x}")


@dataclass(frozen=True)
class TextLine:
    text: str


@dataclass(frozen=True)
class Garbage:
    data: bytes


def frame_payload(msg_type: int, seq: int, body: bytes = b"", *, version: int = VERSION) -> bytes:
    """Header + body + CRC: the bytes that COBS encodes."""
    head = bytes([MAGIC | (version & 0x0F), msg_type & 0xFF, seq & 0xFF, (seq >> 8) & 0xFF]) + bytes(body)
    return head + struct.pack("<I", crc32(head))


def encode_frame(msg_type: int, seq: int, body: bytes = b"", *, version: int = VERSION,
                 lead: bool = False) -> bytes:
    """The wire bytes of one frame: COBS(payload) 0x00, with a leading 0x00 when `lead`."""
    wire = cobs_encode(frame_payload(msg_type, seq, body, version=version)) + b"\x00"
    return b"\x00" + wire if lead else wire


_MAGIC_RE = re.compile(rb"[\xa0-\xaf]")


def parse_chunk(chunk: bytes) -> Frame | None:
    """The frame ending a chunk (bytes between two 0x00), or None.

    Tries every start s where chunk[s+1] carries the magic nibble, in order
    (the first valid one wins), as te_proto_parse_chunk does."""
    for m in _MAGIC_RE.finditer(chunk, 1):
        s = m.start() - 1
        try:
            payload = cobs_decode(chunk[s:])
        except FrameError:
            continue
        if len(payload) < HEADER_BYTES + CRC_BYTES or (payload[0] & 0xF0) != MAGIC:
            continue
        if struct.unpack_from("<I", payload, len(payload) - 4)[0] != crc32(payload[:-4]):
            continue
        return Frame(type=payload[1], seq=payload[2] | (payload[3] << 8), body=bytes(payload[4:-4]),
                     version=payload[0] & 0x0F, skipped=s)
    return None


_NON_TEXT = re.compile(rb"[^\t\n\r\x20-\x7e]")
# tinyedge's own status lines (the boot announcement, a fault report), found even after line noise
_STATUS_LINE = re.compile(rb"tinyedge (?:ready|fault:) [\t\x20-\x7e]*(?=\r?\n)")


class FrameDecoder:
    """Byte stream -> events (Frame, TextLine, Garbage).  Never raises, bounded memory.

    A chunk is the bytes between two 0x00.  While a chunk holds only text
    bytes, each '\\n' ends a text line (the '\\n' is kept as the possible COBS
    code byte of a frame that follows).  At a 0x00 the chunk is searched for a
    frame; what precedes it is reported as text or garbage.
    """

    def __init__(self, max_chunk: int = 1 << 20):
        self.max_chunk = max_chunk
        self._buf = bytearray()
        self._binary = False
        self._overflow = False
        self._scanned = 0         # bytes of a binary chunk already searched for status lines
        self.frames = 0
        self.dropped = 0

    def feed(self, data: bytes) -> list:
        events: list = []
        data = bytes(data)
        start = 0
        while True:
            z = data.find(0, start)
            self._add(data[start:] if z < 0 else data[start:z], events)
            if z < 0:
                return events
            self._end_chunk(events)
            start = z + 1

    def _add(self, seg: bytes, events: list) -> None:
        if not seg:
            return
        if self._overflow:
            return
        if not self._binary:
            m = _NON_TEXT.search(seg)
            text = seg if m is None else seg[:m.start()]
            nl = text.rfind(b"\n")
            if nl >= 0:
                lines = (bytes(self._buf) + text[:nl]).split(b"\n")
                for line in lines:
                    line = line.strip(b"\r")
                    if line:
                        events.append(TextLine(line.decode("ascii")))
                self._buf = bytearray(b"\n")
                seg = seg[nl + 1:]
            if m is not None:
                self._binary = True
        self._buf += seg
        if self._binary and b"\n" in seg:
            # Noise (a stray byte at reset, a baud-rate glitch) makes the rest of the chunk binary
            # until the next 0x00, and the board then prints its status line and waits: find it.
            for m in _STATUS_LINE.finditer(self._buf, self._scanned):
                events.append(TextLine(m.group(0).decode("ascii").strip("\r")))
            self._scanned = self._buf.rfind(b"\n") + 1
        if len(self._buf) > self.max_chunk:
            events.append(Garbage(bytes(self._buf[: self.max_chunk])))
            self._buf = bytearray()
            self._scanned = 0
            self._overflow = True
            self.dropped += 1

    def _end_chunk(self, events: list) -> None:
        chunk = bytes(self._buf)
        overflow = self._overflow
        self._buf = bytearray()
        self._binary = False
        self._overflow = False
        self._scanned = 0
        if overflow or not chunk:
            return
        frame = parse_chunk(chunk)
        rest = chunk if frame is None else chunk[: frame.skipped]
        if rest and rest != b"\n":
            if _NON_TEXT.search(rest) is None:
                text = rest.strip(b"\r\n")
                if text:
                    events.append(TextLine(text.decode("ascii")))
            else:
                events.append(Garbage(rest))
                if frame is None:
                    self.dropped += 1
        if frame is not None:
            self.frames += 1
            events.append(frame)


# ----------------------------------------------------------------- messages


@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    scale: float
    zero_point: int

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape), "bytes": self.nbytes,
                "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class DeviceInfo:
    """What the board says about itself in the hello reply."""

    proto_version: int
    init_status: int
    max_frame: int
    clock_hz: int
    arena_bytes: int
    model_sha256: str
    board: str
    runtime: str
    unit: str
    inputs: tuple[TensorSpec, ...] = field(default_factory=tuple)
    outputs: tuple[TensorSpec, ...] = field(default_factory=tuple)

    @property
    def input_bytes(self) -> int:
        return sum(t.nbytes for t in self.inputs)

    @property
    def output_bytes(self) -> int:
        return sum(t.nbytes for t in self.outputs)

    @property
    def chunk_bytes(self) -> int:
        """Input bytes that fit in one INPUT frame on this device."""
        return self.max_frame - HEADER_BYTES - INPUT_HEADER_BYTES - CRC_BYTES

    def to_dict(self) -> dict:
        return {
            "proto_version": self.proto_version, "init_status": status_name(self.init_status),
            "board": self.board, "runtime": self.runtime, "unit": self.unit,
            "model_sha256": self.model_sha256, "arena_bytes": self.arena_bytes, "clock_hz": self.clock_hz,
            "max_frame": self.max_frame, "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ProtocolError("hello reply is truncated", hint="the board's firmware and tinyedge disagree on the protocol; reflash it")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def string(self) -> str:
        (n,) = self.unpack("<B")
        return self.take(n).decode("utf-8", "replace")


def encode_tensor(t: TensorSpec) -> bytes:
    return (struct.pack("<BB", DTYPE_CODES.get(t.dtype, 9), len(t.shape))
            + b"".join(struct.pack("<i", d) for d in t.shape)
            + struct.pack("<Ifi", t.nbytes, t.scale, t.zero_point))


def _decode_tensor(r: _Reader) -> TensorSpec:
    code, rank = r.unpack("<BB")
    shape = tuple(r.unpack(f"<{rank}i")) if rank else ()
    nbytes, scale, zp = r.unpack("<Ifi")
    return TensorSpec(DTYPE_NAMES.get(code, f"type{code}"), shape, nbytes, float(scale), zp)


def _str(s: str) -> bytes:
    b = s.encode("utf-8")[:255]
    return bytes([len(b)]) + b


def encode_hello(info: DeviceInfo) -> bytes:
    """The HELLO_REPLY body (used by the Python device server and tests)."""
    return (struct.pack("<BBIII", info.proto_version, info.init_status, info.max_frame, info.clock_hz,
                        info.arena_bytes)
            + bytes.fromhex(info.model_sha256)
            + _str(info.board) + _str(info.runtime) + _str(info.unit)
            + struct.pack("<BB", len(info.inputs), len(info.outputs))
            + b"".join(encode_tensor(t) for t in (*info.inputs, *info.outputs)))


def decode_hello(body: bytes) -> DeviceInfo:
    r = _Reader(body)
    ver, init_status, max_frame, clock, arena = r.unpack("<BBIII")
    sha = r.take(32).hex()
    board, runtime, unit = r.string(), r.string(), r.string()
    n_in, n_out = r.unpack("<BB")
    inputs = tuple(_decode_tensor(r) for _ in range(n_in))
    outputs = tuple(_decode_tensor(r) for _ in range(n_out))
    return DeviceInfo(ver, init_status, max_frame, clock, arena, sha, board, runtime, unit, inputs, outputs)


def encode_input(flags: int, offset: int, data: bytes) -> bytes:
    return struct.pack("<BI", flags, offset) + bytes(data)


def decode_input(body: bytes) -> tuple[int, int, bytes]:
    if len(body) < INPUT_HEADER_BYTES:
        raise ProtocolError("INPUT frame shorter than its header")
    flags, offset = struct.unpack_from("<BI", body)
    return flags, offset, body[INPUT_HEADER_BYTES:]


def encode_ack(status: int, next_offset: int) -> bytes:
    return struct.pack("<BI", status, next_offset)


def decode_ack(body: bytes) -> tuple[int, int]:
    if len(body) != 5:
        raise ProtocolError(f"ACK body of {len(body)} bytes, expected 5")
    return struct.unpack("<BI", body)


def encode_result(status: int, count: int, outputs: bytes = b"") -> bytes:
    return struct.pack("<BQ", status, count & 0xFFFFFFFFFFFFFFFF) + bytes(outputs)


def decode_result(body: bytes, output_bytes: int) -> tuple[int, int, bytes]:
    """(status, counter delta, output bytes); outputs are present only when status is TE_OK."""
    if len(body) < 9:
        raise ProtocolError(f"RESULT body of {len(body)} bytes is shorter than 9")
    status, count = struct.unpack_from("<BQ", body)
    out = body[9:]
    if status == TE_OK and len(out) != output_bytes:
        raise ProtocolError(f"RESULT carries {len(out)} output bytes, the model has {output_bytes}",
                            hint="the board runs another model or firmware; reflash it")
    return status, count, out


PROFILE_ON = 0x01      # profile the inferences that follow
PROFILE_CRC = 0x02     # and CRC every op's output (outside the timed spans)


def encode_profile(enabled: bool, dump_op: int | None = None, crc: bool = True) -> bytes:
    """The PROFILE request body: profile the inferences that follow (or stop), CRC every op's output
    (`crc`), and stream op `dump_op`'s whole output during them."""
    mode = (PROFILE_ON | (PROFILE_CRC if crc else 0)) if enabled else 0
    return struct.pack("<BH", mode, NO_DUMP if dump_op is None else int(dump_op))


@dataclass(frozen=True)
class OpRecord:
    raw: int        # counter delta across the op, the profiler's own cost included
    crc: int        # CRC-32 of the op's first output
    nbytes: int     # its size


@dataclass(frozen=True)
class ProfileResult:
    status: int
    count: int              # the whole profiled inference (hooks included)
    cal_sum: int            # counter total of `cal_pairs` empty begin/end pairs, measured first
    cal_pairs: int
    overflow: bool          # the model has more ops than the firmware's table
    ops: tuple[OpRecord, ...]
    outputs: bytes

    @property
    def overhead(self) -> float:
        """The cost of one empty begin/end pair, in the counter's unit."""
        return self.cal_sum / self.cal_pairs if self.cal_pairs else 0.0


_OP_RECORD = struct.Struct("<QII")


def encode_profile_result(r: ProfileResult) -> bytes:
    return (struct.pack("<BQQHHB", r.status, r.count, r.cal_sum, r.cal_pairs, len(r.ops), int(r.overflow))
            + b"".join(_OP_RECORD.pack(o.raw, o.crc, o.nbytes) for o in r.ops) + r.outputs)


def decode_profile_result(body: bytes, output_bytes: int) -> ProfileResult:
    head = struct.calcsize("<BQQHHB")
    if len(body) < head:
        raise ProtocolError(f"PROFILE_RESULT body of {len(body)} bytes is shorter than {head}")
    status, count, cal_sum, pairs, n, flags = struct.unpack_from("<BQQHHB", body)
    end = head + n * _OP_RECORD.size
    if len(body) < end:
        raise ProtocolError(f"PROFILE_RESULT names {n} ops but carries {len(body) - head} bytes of them")
    ops = tuple(OpRecord(*_OP_RECORD.unpack_from(body, head + i * _OP_RECORD.size)) for i in range(n))
    out = body[end:]
    if status == TE_OK and len(out) != output_bytes:
        raise ProtocolError(f"PROFILE_RESULT carries {len(out)} output bytes, the model has {output_bytes}",
                            hint="the board runs another model or firmware; reflash it")
    return ProfileResult(status, count, cal_sum, pairs, bool(flags & 1), ops, out)


def encode_tensor_dump(op: int, data: bytes) -> bytes:
    return struct.pack("<HI", op, len(data)) + bytes(data)


def decode_tensor_dump(body: bytes) -> tuple[int, bytes]:
    if len(body) < 6:
        raise ProtocolError("TENSOR frame shorter than 6 bytes")
    op, n = struct.unpack_from("<HI", body)
    if len(body) != 6 + n:
        raise ProtocolError(f"TENSOR frame of op {op} says {n} bytes, carries {len(body) - 6}")
    return op, body[6:]


def encode_error(status: int, version: int = VERSION) -> bytes:
    return struct.pack("<BB", status, version)


def decode_error(body: bytes) -> tuple[int, int]:
    if len(body) < 2:
        raise ProtocolError("ERROR frame shorter than 2 bytes")
    return body[0], body[1]


# ---------------------------------------------------------------- chunking


def chunk_plan(total: int, max_frame: int, window: int = DEFAULT_WINDOW, start: int = 0):
    """Split input bytes [start, total) into INPUT chunks.

    Returns a list of (offset, length, flags).  Chunks fill the device's frame;
    every ceil(window / chunk) chunks (so at least `window` bytes) the last
    asks for an ACK, and the final chunk carries FLAG_LAST.  A zero-byte input
    is one empty LAST chunk."""
    chunk = max_frame - HEADER_BYTES - INPUT_HEADER_BYTES - CRC_BYTES
    if chunk <= 0:
        raise ProtocolError(f"device frame limit {max_frame} leaves no room for data")
    per_window = max(1, -(-window // chunk))
    plan = []
    off = start
    k = 0
    while True:
        n = min(chunk, total - off)
        k += 1
        last = off + n >= total
        flags = FLAG_LAST if last else (FLAG_ACK if k % per_window == 0 else 0)
        plan.append((off, n, flags))
        off += n
        if last:
            return plan


def wire_cost(input_bytes: int, output_bytes: int, max_frame: int, window: int = DEFAULT_WINDOW,
              seed: int = 0) -> dict:
    """Bytes on the wire and turnarounds for one inference, by encoding the real frames
    (random tensor data, so COBS overhead is typical)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, input_bytes, dtype=np.int16).astype(np.int8).tobytes()
    y = rng.integers(-128, 128, output_bytes, dtype=np.int16).astype(np.int8).tobytes()
    up = down = turns = 0
    for off, n, flags in chunk_plan(input_bytes, max_frame, window):
        up += len(encode_frame(INPUT, 1, encode_input(flags, off, x[off:off + n]), lead=True))
        if flags & FLAG_ACK:
            down += len(encode_frame(ACK, 1, encode_ack(TE_OK, off + n)))
            turns += 1
    down += len(encode_frame(RESULT, 1, encode_result(TE_OK, 123456, y)))
    turns += 1
    total = up + down
    return {"input_bytes": input_bytes, "output_bytes": output_bytes, "wire_up": up, "wire_down": down,
            "wire_bytes": total, "efficiency": (input_bytes + output_bytes) / total,
            "round_trips": turns}
