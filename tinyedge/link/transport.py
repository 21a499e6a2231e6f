"""The byte layer of the link: any pyserial URL, opened with `serial.serial_for_url`.

`/dev/ttyUSB0`, a pty path, `socket://127.0.0.1:4321`, `rfc2217://host:port`
and `loop://` all work.  Every read has a deadline; errors from pyserial
become LinkError with a message that says what to check.
"""

from __future__ import annotations

import logging
import time

from ..errors import LinkError

log = logging.getLogger(__name__)


class Transport:
    """A serial line: `read(max_wait)` returns what arrived (b"" on timeout), `write(bytes)`."""

    def __init__(self, url: str, *, baud: int = 115200):
        import serial

        from ..ports import PortBusy, PortLock, flock_holder

        self.url = url
        self.bytes_in = 0
        self.bytes_out = 0
        # One session per port: the port's lock names its holder to a second reader (PortBusy, exit 2).
        self._lock = PortLock.take(url)
        try:
            # exclusive: a device or pty is locked (flock) while open, so a second reader (a monitor
            # beside a validate) is refused instead of stealing half the bytes of a session.
            try:
                self._ser = serial.serial_for_url(url, baudrate=baud, timeout=0.05, write_timeout=10,
                                                  exclusive=True)
            except NotImplementedError:
                # rfc2217:// (ser2net, labgrid's exported serial ports) has no write timeout in pyserial
                self._ser = serial.serial_for_url(url, baudrate=baud, timeout=0.05, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            if self._lock is not None:
                self._lock.release()
            if "exclusively lock" in str(e):     # a program that is not tinyedge holds its flock
                raise PortBusy(url, flock_holder(url) or "another program") from e
            raise LinkError(f"cannot open {url}: {e}",
                            hint="check the port with 'tinyedge ports' (and that no other program holds it)") from e
        # socket:// : our small frames must not wait for Nagle, and our ACKs must not be
        # delayed, or a peer that sends byte by byte with Nagle on (QEMU's tcp chardev
        # without nodelay=on) stalls ~40 ms on every reply.
        self._sock = getattr(self._ser, "_socket", None)
        self._quickack = getattr(__import__("socket"), "TCP_QUICKACK", None)
        if self._sock is not None:
            import socket

            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                log.debug("TCP_NODELAY not set on %s", url)

    def local_port(self) -> int | None:
        """This end's TCP port for a socket:// line (None for other lines)."""
        try:
            return self._sock.getsockname()[1] if self._sock is not None else None
        except OSError:
            return None

    def read(self, max_wait: float) -> bytes:
        import serial

        try:
            if self._sock is not None and self._quickack is not None:
                import socket

                self._sock.setsockopt(socket.IPPROTO_TCP, self._quickack, 1)   # Linux resets it: set per read
            self._ser.timeout = max(0.001, min(max_wait, 0.2))
            data = self._ser.read(1)
            if data:
                waiting = self._ser.in_waiting
                if waiting:
                    data += self._ser.read(waiting)
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"the line to {self.url} was closed: {e}",
                            hint="the board was reset, unplugged or its emulator stopped; reconnect and retry") from e
        self.bytes_in += len(data)
        return data

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._ser.write(data)
            self._ser.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot write to {self.url}: {e}",
                            hint="the board was reset, unplugged or its emulator stopped; reconnect and retry") from e
        self.bytes_out += len(data)

    def reset_input(self) -> None:
        try:
            self._ser.reset_input_buffer()
        except Exception:  # noqa: BLE001 - not every URL handler supports it
            log.debug("reset_input_buffer not supported on %s", self.url)

    def close(self) -> None:
        try:
            self._ser.close()
        except Exception:  # noqa: BLE001
            log.debug("closing %s failed", self.url, exc_info=True)
        if self._lock is not None:
            self._lock.release()


def open_with_backoff(url: str, *, baud: int = 115200, attempts: int | None = None, first: float = 0.2,
                      cap: float = 2.0, stop=lambda: False) -> Transport:
    """Open `url`, retrying with exponential backoff (a USB port that comes back after a reset).

    `attempts=None` retries until `stop()` returns True."""
    delay = first
    n = 0
    while True:
        try:
            return Transport(url, baud=baud)
        except LinkError:
            n += 1
            if (attempts is not None and n >= attempts) or stop():
                raise
            time.sleep(delay)
            delay = min(cap, delay * 2)
