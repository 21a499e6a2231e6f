"""The device side of the protocol (firmware/proto, C99) against the host side.

The C decoder is built for the host with AddressSanitizer and UBSan (any
report aborts the harness) and fed the same seeded corpus of garbage, text,
truncated, bit-flipped and interleaved frames as the Python decoder; both must
find exactly the same frames.  The C encoder must produce the Python
encoder's bytes.  The firmware sources must compile with -Werror for the host
and for Cortex-M.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from tinyedge.link import protocol as p

REPO = Path(__file__).resolve().parent.parent
FW = REPO / "firmware"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-O1"]
SAN = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no host C compiler (gcc); install build-essential")
    out = tmp_path_factory.mktemp("proto_c") / "proto_harness"
    subprocess.run([cc, *CFLAGS, *SAN, f"-I{FW / 'include'}", f"-I{FW / 'proto'}",
                    str(REPO / "tests" / "c" / "proto_harness.c"), str(FW / "proto" / "te_proto.c"),
                    "-o", str(out)], check=True, capture_output=True, text=True)
    return out


def make_corpus(seed: int, n: int) -> list[bytes]:
    rnd = random.Random(seed)
    streams = []
    for _ in range(n):
        s = bytearray()
        for _ in range(rnd.randint(1, 6)):
            kind = rnd.random()
            if kind < 0.25:
                s += bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 200)))
            elif kind < 0.35:
                s += b"log: value=%d\r\n" % rnd.randint(0, 10**6)
            else:
                body = bytes(rnd.getrandbits(8) if rnd.random() < 0.8 else 0 for _ in range(rnd.randint(0, 600)))
                wire = bytearray(p.encode_frame(rnd.choice([p.HELLO, p.INPUT, p.ACK, p.RESULT]),
                                                rnd.getrandbits(16), body, lead=rnd.random() < 0.5))
                r = rnd.random()
                if r < 0.15:
                    wire = wire[: rnd.randint(0, len(wire) - 1)]
                elif r < 0.3:
                    for _ in range(rnd.randint(1, 3)):
                        i = rnd.randrange(len(wire))
                        wire[i] ^= 1 << rnd.randrange(8)
                s += wire
        streams.append(bytes(s))
    return streams


def python_frames(stream: bytes) -> list[tuple]:
    d = p.FrameDecoder()
    out = []
    for i in range(0, len(stream), 97):
        for e in d.feed(stream[i:i + 97]):
            if isinstance(e, p.Frame):
                out.append((e.type, e.seq, e.version, len(e.body), zlib.crc32(e.body)))
    return out


def test_c_decoder_matches_python_under_asan(harness, tmp_path):
    corpus = make_corpus(seed=6, n=400)
    paths = []
    for i, s in enumerate(corpus):
        f = tmp_path / f"s{i:04d}.bin"
        f.write_bytes(s)
        paths.append(f)
    res = subprocess.run([str(harness), "decode", *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "runtime error" not in res.stderr and "AddressSanitizer" not in res.stderr, res.stderr[-3000:]
    c_found: dict[str, list] = {}
    cur = None
    for line in res.stdout.splitlines():
        if line.startswith("FILE "):
            cur = line[5:]
            c_found[cur] = []
        else:
            _, t, seq, ver, n, crc = line.split()
            c_found[cur].append((int(t), int(seq), int(ver), int(n), int(crc, 16)))
    total = 0
    for path, s in zip(paths, corpus, strict=True):
        py = python_frames(s)
        total += len(py)
        assert c_found[str(path)] == py, f"{path.name}: C {c_found[str(path)]} != Python {py}"
    assert total > 500        # the corpus really holds frames


@pytest.mark.parametrize("body_len", [0, 1, 253, 254, 255, 600, 2000])
def test_c_encoder_matches_python(harness, tmp_path, body_len):
    rnd = random.Random(body_len)
    body = bytes(rnd.getrandbits(8) if rnd.random() < 0.9 else 0 for _ in range(body_len))
    if body_len == 254:
        body = bytes(range(1, 255))       # exactly one full COBS block
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    res = subprocess.run([str(harness), "encode", str(p.RESULT), "4660", str(f)], capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout == p.encode_frame(p.RESULT, 4660, body)


def test_firmware_compiles_for_cortex_m(tmp_path):
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.fail("arm-none-eabi-gcc is not installed; `make test` installs it")
    for cpu in ("cortex-m0", "cortex-m4", "cortex-m7"):
        for src in (FW / "proto" / "te_proto.c", FW / "app" / "te_app.c"):
            subprocess.run([gcc, f"-mcpu={cpu}", "-mthumb", "-Os", *CFLAGS, f"-I{FW / 'include'}",
                            f"-I{FW / 'proto'}", f"-I{FW / 'app'}", "-c", str(src), "-o", str(tmp_path / "x.o")],
                           check=True, capture_output=True, text=True)


def _c_frames(harness, path) -> list[tuple]:
    res = subprocess.run([str(harness), "decode", str(path)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and not res.stderr, res.stderr[-3000:]
    out = []
    for line in res.stdout.splitlines()[1:]:
        _, t, seq, ver, n, crc = line.split()
        out.append((int(t), int(seq), int(ver), int(n), int(crc, 16)))
    return out


def test_c_decoder_on_the_hypothesis_corpus(harness, tmp_path):
    """The hypothesis streams of tests/test_protocol.py, fed to the C decoder under ASan/UBSan."""
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st
    from test_protocol import frame_st

    path = tmp_path / "stream.bin"

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.binary(max_size=60), frame_st, st.sampled_from(["intact", "trunc", "flip"]),
                              st.integers(0, 10_000)), min_size=1, max_size=6))
    def check(items):
        stream = bytearray()
        for garbage, (t, s, b), kind, r in items:
            stream += garbage
            wire = bytearray(p.encode_frame(t, s, b))
            if kind == "trunc":
                wire = wire[: r % (len(wire) - 1)]
            elif kind == "flip":
                bit = r % ((len(wire) - 1) * 8)
                wire[bit // 8] ^= 1 << (bit % 8)
            stream += wire
        # a chunk longer than the device's receive buffer is dropped whole by design
        assume(max(len(c) for c in bytes(stream).split(b"\0")) <= 2000)
        path.write_bytes(bytes(stream))
        assert _c_frames(harness, path) == python_frames(bytes(stream))

    check()
