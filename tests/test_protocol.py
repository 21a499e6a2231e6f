"""The host side of the serial protocol: COBS, CRC, frames, the stream decoder, messages.

The decoder is fuzzed with hypothesis: random bytes, truncated, bit-flipped
and interleaved frames never raise anything but ProtocolError, never hang,
and every intact frame that follows garbage is found.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyedge.errors import ProtocolError
from tinyedge.link import protocol as p


def test_crc32_matches_the_check_value():
    assert p.crc32(b"123456789") == 0xCBF43926


@pytest.mark.parametrize("data, wire", [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x00\x00", b"\x02\x11\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
])
def test_cobs_known_vectors(data, wire):
    assert p.cobs_encode(data) == wire
    assert p.cobs_decode(wire) == data


def test_cobs_decodes_the_firmwares_form_of_a_final_full_block():
    # The firmware's encoder ends a final 254-byte run with an empty block; the host's (the cobs
    # library) does not.  Both are valid COBS and decode the same.
    data = bytes(range(1, 255))
    assert p.cobs_decode(b"\xff" + data + b"\x01") == data == p.cobs_decode(p.cobs_encode(data))


@given(st.binary(max_size=2000))
def test_cobs_roundtrip_and_no_zero(data):
    enc = p.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert p.cobs_decode(enc) == data


def test_cobs_malformed_raises_frame_error():
    with pytest.raises(p.FrameError):
        p.cobs_decode(b"\x05\x11")
    with pytest.raises(p.FrameError):
        p.cobs_decode(b"\x03\x11\x00")
    assert issubclass(p.FrameError, ProtocolError)


def test_frame_layout():
    wire = p.encode_frame(p.RESULT, 0x1234, b"\x00\x01\x02")
    assert wire.endswith(b"\x00") and wire.count(0) == 1
    payload = p.cobs_decode(wire[:-1])
    assert payload[:4] == bytes([0xA1, 0x83, 0x34, 0x12])
    assert payload[4:-4] == b"\x00\x01\x02"
    assert struct.unpack("<I", payload[-4:])[0] == zlib.crc32(payload[:-4])
    assert p.encode_frame(p.HELLO, 1, lead=True)[0] == 0


def _frames(events):
    return [e for e in events if isinstance(e, p.Frame)]


def test_decoder_text_and_frames_share_the_line():
    d = p.FrameDecoder()
    stream = (b"boot...\r\ntinyedge ready board=x runtime=aot model=0123456789abcdef proto=1 unit=cycles\n"
              + p.encode_frame(p.ACK, 7, p.encode_ack(0, 42)) + b"log line\n"
              + p.encode_frame(p.RESULT, 8, p.encode_result(0, 99, b"\x01\x02")))
    events = []
    for i in range(0, len(stream), 5):         # split anywhere
        events += d.feed(stream[i:i + 5])
    texts = [e.text for e in events if isinstance(e, p.TextLine)]
    assert texts == ["boot...", "tinyedge ready board=x runtime=aot model=0123456789abcdef proto=1 unit=cycles",
                     "log line"]
    frames = _frames(events)
    assert [(f.type, f.seq) for f in frames] == [(p.ACK, 7), (p.RESULT, 8)]
    assert p.decode_ack(frames[0].body) == (0, 42)
    assert p.decode_result(frames[1].body, 2) == (0, 99, b"\x01\x02")


def test_text_line_is_reported_before_any_delimiter():
    d = p.FrameDecoder()
    assert d.feed(b"tinyedge ready board=a\n") == [p.TextLine("tinyedge ready board=a")]


def test_frame_after_garbage_without_delimiter_is_found():
    d = p.FrameDecoder()
    f = p.encode_frame(p.RESULT, 3, b"abc")
    ev = d.feed(b"\xa1\x99\x13garbage\xff" + f)
    assert [(x.type, x.seq, x.body) for x in _frames(ev)] == [(p.RESULT, 3, b"abc")]
    assert any(isinstance(x, p.Garbage) for x in ev)


def test_status_line_after_line_noise_is_found_once():
    """A stray byte at reset turns the chunk binary until the next 0x00; the board then prints its
    boot line and waits for the host, so the line must come out without a delimiter."""
    d = p.FrameDecoder()
    ev = d.feed(b"\xf8\x80boot noise tinyedge ready board=a ")
    assert not [x for x in ev if isinstance(x, p.TextLine)]     # not complete yet
    ev += d.feed(b"proto=1 unit=us\r\nother\n") + d.feed(b"more\n")
    assert [x.text for x in ev if isinstance(x, p.TextLine)] == ["tinyedge ready board=a proto=1 unit=us"]
    f = p.encode_frame(p.RESULT, 3, b"abc")
    ev = d.feed(f + b"tinyedge fault: HardFault at pc=0x1\n")
    assert [(x.type, x.body) for x in _frames(ev)] == [(p.RESULT, b"abc")]
    assert [x.text for x in ev if isinstance(x, p.TextLine)] == ["tinyedge fault: HardFault at pc=0x1"]


def test_frame_holding_status_text_is_still_a_frame():
    body = b"\x01tinyedge ready board=x\n"
    d = p.FrameDecoder()
    ev = d.feed(b"\x00" + p.encode_frame(p.RESULT, 9, body))
    assert [x.body for x in _frames(ev)] == [body]


def test_frame_whose_code_byte_is_a_newline():
    # the first zero of the payload at index 9 makes the COBS code byte 0x0A
    body = b"\x01\x02\x03\x04\x05\x00"
    wire = p.encode_frame(p.RESULT, 0x0101, body)
    assert wire[0] == 0x0A
    d = p.FrameDecoder()
    ev = d.feed(b"text\n" + wire) + d.feed(b"more text\n" + wire)
    assert [x.body for x in _frames(ev)] == [body, body]
    assert [x.text for x in ev if isinstance(x, p.TextLine)] == ["text", "more text"]


def test_decoder_memory_is_bounded():
    d = p.FrameDecoder(max_chunk=1000)
    d.feed(b"\xff" * 5000)
    assert len(d._buf) <= 1000
    ev = d.feed(b"\x00" + p.encode_frame(p.ACK, 1, p.encode_ack(0, 0)))
    assert len(_frames(ev)) == 1


def test_hello_roundtrip():
    info = p.DeviceInfo(1, 0, 2064, 25_000_000, 12345, "ab" * 32, "qemu-cortex-m4", "aot", "instructions",
                        (p.TensorSpec("int8", (1, 49, 10, 1), 490, 0.5, -3),),
                        (p.TensorSpec("int8", (1, 12), 12, 0.00390625, -128),))
    assert p.decode_hello(p.encode_hello(info)) == info
    with pytest.raises(ProtocolError):
        p.decode_hello(p.encode_hello(info)[:-3])


def test_chunk_plan_one_turnaround_per_4k():
    for total in (0, 1, 100, 1024, 2051, 2052, 10240, 27648, 100_000):
        plan = p.chunk_plan(total, 2064)
        assert sum(n for _, n, _ in plan) == total
        assert [o for o, _, _ in plan] == [sum(n for _, n, _ in plan[:i]) for i in range(len(plan))]
        assert plan[-1][2] == p.FLAG_LAST and all(f != p.FLAG_LAST for _, _, f in plan[:-1])
        turnarounds = sum(1 for _, _, f in plan if f)
        assert turnarounds <= max(1, -(-total // 4096))
        assert all(n <= 2064 - 13 for _, n, _ in plan)


@pytest.mark.parametrize("size", [1024, 10 * 1024, 27 * 1024])
def test_wire_efficiency_target(size):
    cost = p.wire_cost(size, 2, 2064)
    assert cost["efficiency"] >= 0.95, cost
    assert cost["round_trips"] <= -(-size // 4096)


# ------------------------------------------------------------------ fuzzing

frame_st = st.builds(
    lambda t, s, b: (t, s, b),
    st.sampled_from([p.HELLO_REPLY, p.ACK, p.RESULT, p.ERROR]),
    st.integers(0, 0xFFFF),
    st.binary(max_size=600),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_fuzz_random_bytes_never_raise(data, step):
    d = p.FrameDecoder(max_chunk=4096)
    for i in range(0, len(data), step):
        for e in d.feed(data[i:i + step]):
            assert isinstance(e, (p.Frame, p.TextLine, p.Garbage))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.binary(max_size=80), frame_st, st.sampled_from(["intact", "trunc", "flip"]),
                          st.integers(0, 10_000)), min_size=1, max_size=8),
       st.integers(1, 300))
def test_fuzz_garbage_truncated_flipped_and_interleaved(items, step):
    stream = bytearray()
    expected = []
    for garbage, (t, s, b), kind, r in items:
        stream += garbage
        wire = bytearray(p.encode_frame(t, s, b))
        if kind == "trunc":
            wire = wire[: r % (len(wire) - 1)]            # lost its tail (and delimiter)
        elif kind == "flip":
            bit = r % ((len(wire) - 1) * 8)
            wire[bit // 8] ^= 1 << (bit % 8)
        stream += wire
        if kind == "intact":
            expected.append((t, s, b))
    d = p.FrameDecoder()
    found = []
    for i in range(0, len(stream), step):
        found += [(f.type, f.seq, f.body) for f in _frames(d.feed(bytes(stream[i:i + step])))]
    # Every intact frame is found, in order.  A damaged frame may (with CRC-32,
    # astronomically rarely) not be rejected, so extra frames are allowed only
    # if they are not ones we corrupted into a different valid frame.
    it = iter(found)
    assert all(any(x == e for x in it) for e in expected), (expected, found)
    assert len(found) == len(expected)
