"""A fault-injecting TCP proxy for link tests (a test tool, not a fake board).

    proxy = FaultProxy("socket://127.0.0.1:5555" or "/dev/pts/7", seed=1)
    Device(proxy.url)          # socket://127.0.0.1:<proxy port>

Bytes are forwarded in both directions between one TCP client (the host
session) and the upstream board (any pyserial URL: QEMU's socket, a pty).
Each direction is cut at 0x00 delimiters into segments (a frame, or text and
a frame); between segments the proxy injects random bytes or a text line, and
it flips one bit in a segment now and then.  Every injection is counted in
`.stats`.  `set_upstream(url)` switches to a restarted board; when the
upstream line drops, the proxy reopens it (with backoff) until it comes back.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter


class FaultProxy:
    def __init__(self, upstream: str, *, seed: int = 0, garbage_rate: float = 0.05, text_rate: float = 0.05,
                 flip_rate: float = 0.01, max_garbage: int = 40):
        self.upstream_url = upstream
        self.rnd = random.Random(seed)
        self.garbage_rate = garbage_rate
        self.text_rate = text_rate
        self.flip_rate = flip_rate
        self.max_garbage = max_garbage
        self.stats: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._up = None
        self._client: socket.socket | None = None
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(1)
        self._listen.settimeout(0.1)
        self.port = self._listen.getsockname()[1]
        self._pending = {"up": bytearray(), "down": bytearray()}
        self._open_upstream()
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True, name="proxy-client"),
                         threading.Thread(target=self._upstream_loop, daemon=True, name="proxy-upstream")]
        for t in self._threads:
            t.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    # --------------------------------------------------------------- faults

    def _mangle(self, direction: str, data: bytes) -> bytes:
        """Cut at 0x00, inject between segments, flip bits in a few."""
        buf = self._pending[direction]
        buf += data
        out = bytearray()
        while True:
            z = buf.find(0)
            if z < 0:
                break
            seg = bytearray(buf[: z + 1])
            del buf[: z + 1]
            with self._lock:
                if len(seg) > 1 and self.rnd.random() < self.flip_rate:
                    i = self.rnd.randrange(len(seg))
                    seg[i] ^= 1 << self.rnd.randrange(8)
                    self.stats[f"{direction}_flips"] += 1
                out += seg
                if self.rnd.random() < self.garbage_rate:
                    out += bytes(self.rnd.getrandbits(8) for _ in range(self.rnd.randint(1, self.max_garbage)))
                    self.stats[f"{direction}_garbage"] += 1
                if self.rnd.random() < self.text_rate:
                    out += b"[proxy] injected log line %d\r\n" % self.rnd.randint(0, 10**6)
                    self.stats[f"{direction}_text"] += 1
        # Text with no delimiter yet (the announcement, logs) goes on at once.
        if buf and 0 not in buf and buf.endswith(b"\n"):
            out += buf
            buf.clear()
        return bytes(out)

    # ------------------------------------------------------------- plumbing

    def _open_upstream(self) -> None:
        import serial

        delay = 0.05
        while not self._stop.is_set():
            try:
                self._up = serial.serial_for_url(self.upstream_url, baudrate=115200, timeout=0.02)
                sock = getattr(self._up, "_socket", None)
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.stats["upstream_opens"] += 1
                return
            except (serial.SerialException, OSError, ValueError):
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    def set_upstream(self, url: str) -> None:
        """Switch to another upstream (a restarted board on a new port)."""
        self.upstream_url = url
        up, self._up = self._up, None
        if up is not None:
            try:
                up.close()
            except Exception:  # noqa: BLE001
                pass

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listen.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(0.05)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            old, self._client = self._client, conn
            if old is not None:
                old.close()
            self._pending["up"].clear()
            while not self._stop.is_set() and self._client is conn:
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                out = self._mangle("up", data)
                up = self._up
                if up is not None and out:
                    try:
                        up.write(out)
                    except Exception:  # noqa: BLE001 - the board is restarting: the bytes are lost
                        self.stats["up_lost_writes"] += 1
            if self._client is conn:
                self._client = None
            conn.close()

    def _upstream_loop(self) -> None:
        while not self._stop.is_set():
            up = self._up
            if up is None:
                self._open_upstream()
                continue
            try:
                sock = getattr(up, "_socket", None)
                if sock is not None and hasattr(socket, "TCP_QUICKACK"):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)   # QEMU sends with Nagle on
                data = up.read(1)
                if data and up.in_waiting:
                    data += up.read(up.in_waiting)
            except Exception:  # noqa: BLE001 - board gone (restart): reopen
                self.stats["upstream_drops"] += 1
                try:
                    up.close()
                except Exception:  # noqa: BLE001
                    pass
                if self._up is up:
                    self._up = None
                time.sleep(0.05)
                continue
            if not data:
                continue
            out = self._mangle("down", data)
            c = self._client
            if c is not None and out:
                try:
                    c.sendall(out)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=2)
        for s in (self._client, self._listen):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass
        if self._up is not None:
            try:
                self._up.close()
            except Exception:  # noqa: BLE001
                pass

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
