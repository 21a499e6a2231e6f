"""COBS and CRC-32/MPEG-2 on the host: the libraries tinyedge uses against a pure-Python reference.

The host side once had its own COBS loop and CRC-32/MPEG-2 (the RP2040 boot2
checksum of the UF2 path); they were replaced by the `cobs` (a C extension)
and `crc` libraries.  This prints, for frame sizes of 64 B, 1 KB and 16 KB,
the time per encode and decode of each and the ratio reference / library
(>1: the library is faster), and the same for the 252-byte boot2 CRC.  The
reference implementations here exist only to be measured against.

    .venv/bin/python benchmarks/bench_cobs_crc.py
"""

from __future__ import annotations

import random
import timeit


def ref_cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    for piece in bytes(data).split(b"\x00"):
        while len(piece) >= 254:
            out.append(0xFF)
            out += piece[:254]
            piece = piece[254:]
        out.append(len(piece) + 1)
        out += piece
    return bytes(out)


def ref_cobs_decode(block: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(block)
    while i < n:
        code = block[i]
        end = i + code
        out += block[i + 1:end]
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def ref_crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def best(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number


def main() -> None:
    from tinyedge.flashers.uf2 import crc32_mpeg2
    from tinyedge.link.protocol import cobs_decode, cobs_encode

    rng = random.Random(17)
    print("COBS (seconds per call; ratio = pure Python / library)")
    for n in (64, 1024, 16384):
        data = bytes(rng.randrange(256) for _ in range(n))
        wire = cobs_encode(data)
        assert cobs_decode(wire) == data == ref_cobs_decode(wire) and ref_cobs_decode(ref_cobs_encode(data)) == data
        k = max(1, 40000 // n)
        e_ref = best(lambda data=data: ref_cobs_encode(data), k)
        e_lib = best(lambda data=data: cobs_encode(data), k)
        d_ref = best(lambda wire=wire: ref_cobs_decode(wire), k)
        d_lib = best(lambda wire=wire: cobs_decode(wire), k)
        print(f"  {n:6d} B  encode {e_ref * 1e6:8.1f} us -> {e_lib * 1e6:7.1f} us ({e_ref / e_lib:4.1f}x)  "
              f"decode {d_ref * 1e6:8.1f} us -> {d_lib * 1e6:7.1f} us ({d_ref / d_lib:4.1f}x)")
    data = bytes(rng.randrange(256) for _ in range(252))
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7 and crc32_mpeg2(data) == ref_crc32_mpeg2(data)
    c_ref, c_lib = best(lambda: ref_crc32_mpeg2(data), 200), best(lambda: crc32_mpeg2(data), 200)
    print(f"CRC-32/MPEG-2 of 252 B (once per UF2 image): {c_ref * 1e6:.0f} us -> {c_lib * 1e6:.0f} us "
          f"({c_ref / c_lib:.1f}x)")


if __name__ == "__main__":
    main()
