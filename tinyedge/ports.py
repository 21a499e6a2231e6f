"""Finding the serial port of an attached board.

`list_ports()` gives every serial port with its USB vendor and product id and
a guess of what sits behind it (an ESP32's USB-UART bridge, an ST-Link's
virtual COM port, a Pico ...), from a table of well-known USB ids and from
the `flash.usb_ids` of the board files.  `pick_port(board)` returns the port
when exactly one likely board is attached, and otherwise raises an error that
lists the candidates or says to plug the board in.

Who holds a port: `PortLock.take(url)` (every Transport takes it) refuses a
second session with `PortBusy`, naming the holder's pid and command; the
emulated boards tinyedge starts record where their output goes from the
first byte (`register_emulated` / `find_emulated`), which `tinyedge monitor`
mirrors read-only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError

log = logging.getLogger("tinyedge.ports")

# (vid, pid or None for any pid) -> (what it is, board family it usually means).
# Sorted by (vid, pid); a test checks this.
KNOWN_USB: dict[tuple[int, int | None], tuple[str, str]] = {
    (0x0403, 0x6001): ("FTDI FT232R USB-UART", "usb-uart"),
    (0x0403, 0x6010): ("FTDI FT2232 USB-UART/JTAG", "usb-uart"),
    (0x0403, 0x6014): ("FTDI FT232H USB-UART", "usb-uart"),
    (0x0403, 0x6015): ("FTDI FT231X USB-UART", "usb-uart"),
    (0x0483, 0x374B): ("ST-Link/V2-1 virtual COM port", "cortex-m"),
    (0x0483, 0x374E): ("ST-Link/V3 virtual COM port", "cortex-m"),
    (0x0483, 0x374F): ("ST-Link/V3 virtual COM port", "cortex-m"),
    (0x0483, 0x3752): ("ST-Link/V2-1 virtual COM port", "cortex-m"),
    (0x0483, 0x3753): ("ST-Link/V3 virtual COM port", "cortex-m"),
    (0x0D28, 0x0204): ("Arm DAPLink CMSIS-DAP", "cortex-m"),
    (0x10C4, 0xEA60): ("Silicon Labs CP210x USB-UART", "esp32"),
    (0x1366, None): ("SEGGER J-Link", "cortex-m"),
    (0x1A86, 0x55D4): ("WCH CH9102 USB-UART", "esp32"),
    (0x1A86, 0x7523): ("WCH CH340 USB-UART", "esp32"),
    (0x2E8A, 0x0003): ("Raspberry Pi RP2040 BOOTSEL", "cortex-m"),
    (0x2E8A, 0x000A): ("Raspberry Pi Pico (USB CDC)", "cortex-m"),
    (0x2E8A, 0x000C): ("Raspberry Pi Debug Probe (CMSIS-DAP)", "cortex-m"),
    (0x303A, 0x1001): ("Espressif USB-JTAG/serial", "esp32"),
    (0x303A, None): ("Espressif USB", "esp32"),
}


class NoPortFound(UsageError):
    """No attached serial port looks like the board (a deploy then builds and stops)."""


@dataclass
class PortInfo:
    device: str
    vid: int | None = None
    pid: int | None = None
    description: str = ""
    serial_number: str | None = None
    kind: str | None = None          # what the USB id says it is, e.g. "Silicon Labs CP210x USB-UART"
    family: str | None = None        # board family guess: esp32, cortex-m, usb-uart
    boards: list[str] = field(default_factory=list)  # board ids whose usb_ids list this id

    @property
    def usb_id(self) -> str | None:
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def likely_board(self) -> bool:
        """A port that looks like a development board (not a modem or a plain tty)."""
        return self.kind is not None or bool(self.boards)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["usb_id"] = self.usb_id
        return d

    def label(self) -> str:
        what = self.kind or self.description or "serial port"
        return f"{self.device} ({self.usb_id + ' ' if self.usb_id else ''}{what})"


def parse_usb_id(text: str) -> tuple[int, int]:
    """'10c4:ea60' -> (0x10c4, 0xea60)."""
    vid, _, pid = text.partition(":")
    return int(vid, 16), int(pid, 16)


def _board_ids_by_usb(boards: Iterable | None) -> dict[tuple[int, int], list[str]]:
    if boards is None:
        from .boards import all_boards

        boards = all_boards().values()
    table: dict[tuple[int, int], list[str]] = {}
    for b in boards:
        for uid in b.flash.usb_ids:
            try:
                table.setdefault(parse_usb_id(uid), []).append(b.id)
            except ValueError:
                log.warning("board %s: bad usb id %r (want VID:PID in hex)", b.id, uid)
    return table


def _clean(text) -> str:
    return "" if text in (None, "n/a") else str(text)


def describe(record, boards: Iterable | None = None, *, _table=None) -> PortInfo:
    """A PortInfo from one pyserial ListPortInfo record (or anything with its fields)."""
    vid = getattr(record, "vid", None)
    pid = getattr(record, "pid", None)
    info = PortInfo(device=record.device, vid=vid, pid=pid,
                    description=_clean(getattr(record, "description", "")),
                    serial_number=getattr(record, "serial_number", None))
    if vid is not None and pid is not None:
        known = KNOWN_USB.get((vid, pid)) or KNOWN_USB.get((vid, None))
        if known:
            info.kind, info.family = known
        table = _table if _table is not None else _board_ids_by_usb(boards)
        info.boards = sorted(table.get((vid, pid), []))
    return info


def list_ports(records: Iterable | None = None, boards: Iterable | None = None) -> list[PortInfo]:
    """Every serial port (from pyserial unless `records` is given), with its guess."""
    if records is None:
        from serial.tools import list_ports as lp

        records = lp.comports()
    table = _board_ids_by_usb(boards)
    ports = [describe(r, _table=table) for r in records]
    ports.sort(key=lambda p: (not p.likely_board, p.device))
    return ports


def pick_port(board=None, records: Iterable | None = None, boards: Iterable | None = None) -> str:
    """The one attached board's port, for `--port` left out.

    With a board given, ports whose USB id is in its `flash.usb_ids` come
    first; failing those, any port that looks like a development board.
    Exactly one candidate -> its device; several -> UsageError listing them;
    none -> UsageError saying to plug the board in or pass --port.
    """
    ports = list_ports(records, boards)
    candidates: list[PortInfo] = []
    if board is not None:
        ids = set()
        for u in board.flash.usb_ids:
            try:
                ids.add(parse_usb_id(u))
            except ValueError:
                continue
        candidates = [p for p in ports if (p.vid, p.pid) in ids]
        if not candidates:
            candidates = [p for p in ports if p.kind is not None
                          and (p.family in (board.family, "usb-uart"))]
    else:
        candidates = [p for p in ports if p.likely_board]
    if len(candidates) == 1:
        log.info("using serial port %s", candidates[0].label())
        return candidates[0].device
    what = f"board {board.id}" if board is not None else "a board"
    if not candidates:
        seen = f" (serial ports seen: {', '.join(p.device for p in ports)})" if ports else ""
        raise NoPortFound(f"no serial port found for {what}{seen}",
                         hint="plug the board in (and check the USB cable carries data), or pass --port")
    raise UsageError(f"several serial ports could be {what}: "
                     + "; ".join(p.label() for p in candidates),
                     hint="pass --port with the one to use")


# ------------------------------------------------------------ who holds a port
#
# Two readers on one serial line corrupt each other's session: each gets some of the bytes.  A
# session (Transport) takes the port's lock first: an flock on a file under the runtime dir, keyed
# by the port (the real path of a device or pty, host:port of a socket://), holding the pid and
# command of its owner, so the second reader is told who holds it.  The kernel drops the flock when
# its process dies, so a crash leaves no stale lock.  Devices and ptys are flocked too (pyserial's
# exclusive=True), which also keeps out other programs that lock (mpremote, esptool, pyserial).
#
# Emulated boards that tinyedge starts record where their output goes from the board's first byte
# (QEMU's chardev log, the host board's output relay), so `monitor` can show a board's output from
# its start and mirror a running session read-only instead of competing for the port.


class PortBusy(UsageError):
    """The port is held by another session (a second reader would corrupt it)."""

    def __init__(self, url: str, holder: str):
        super().__init__(f"{url} is in use by {holder}; two readers would corrupt its session",
                         hint="stop the other one first, or watch an emulated board with 'tinyedge monitor' "
                              "(it mirrors the board read-only)")
        self.url = url
        self.holder = holder


def runtime_dir() -> Path:
    """Where tinyedge keeps port locks and emulated-board records: $TINYEDGE_RUNTIME_DIR, else
    $XDG_RUNTIME_DIR/tinyedge, else <tmp>/tinyedge-<uid>; made with mode 0700 and checked to be ours."""
    env = os.environ.get("TINYEDGE_RUNTIME_DIR")
    if env:
        d = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        d = Path(os.environ["XDG_RUNTIME_DIR"]) / "tinyedge"
    else:
        uid = os.getuid() if hasattr(os, "getuid") else 0
        d = Path(tempfile.gettempdir()) / f"tinyedge-{uid}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if hasattr(os, "getuid") and d.stat().st_uid != os.getuid():
        raise UsageError(f"{d} belongs to another user", hint="set TINYEDGE_RUNTIME_DIR to a folder of your own")
    return d


_WARNED = False


def _subdir(name: str) -> Path | None:
    """`<runtime dir>/<name>`, or None (said once) where it cannot be made: then ports are opened
    without tinyedge's lock (a device's flock still holds) and emulated boards are not recorded."""
    global _WARNED
    try:
        d = runtime_dir() / name
        d.mkdir(mode=0o700, exist_ok=True)
        return d
    except (OSError, UsageError) as e:
        if not _WARNED:
            _WARNED = True
            log.warning("no folder for port locks and emulated-board records (%s): a second reader of a "
                        "socket:// port is not refused, and monitor cannot show an emulated board's start", e)
        return None


def port_key(url: str) -> str | None:
    """One name per port however it is spelled: the real path of a device (by-id links resolved),
    `socket://127.0.0.1:4321` for any spelling of a local socket; None for ports nobody shares (loop://)."""
    if "://" not in url:
        return os.path.realpath(url)
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in ("socket", "rfc2217"):
        return None
    hostport = rest.split("?", 1)[0].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]").lower()
    if host in ("", "localhost", "::1", "0.0.0.0"):
        host = "127.0.0.1"
    return f"{scheme}://{host}:{port}"


def _key_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def _this_command() -> str:
    argv = list(sys.argv)
    if not argv or argv[0] in ("", "-c"):       # python -c ...: what the kernel says is clearer
        return _cmdline(os.getpid()) or "python"
    if argv:
        argv[0] = os.path.basename(argv[0])
        if argv[0] == "__main__.py":             # python -m PACKAGE
            spec = getattr(sys.modules.get("__main__"), "__spec__", None)
            name = (spec.name if spec else "").removesuffix(".__main__")
            argv[0] = f"python -m {name}" if name and name != "tinyedge" else "tinyedge"
    text = " ".join(" ".join(argv).split()) or "python"
    return text if len(text) <= 120 else text[:117] + "..."


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            parts = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return ""
    if parts:
        parts[0] = os.path.basename(parts[0])
    text = " ".join(" ".join(parts).split())     # one line, whatever the arguments hold
    return text if len(text) <= 120 else text[:117] + "..."


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc), to tell a pid reused from the one recorded."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: int | None = None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start is None or _start_time(pid) in (None, start)


def flock_holder(path: str) -> str | None:
    """'pid 1234 (minicom -D /dev/ttyUSB0)' for the process holding an flock on `path`, from /proc/locks."""
    try:
        st = os.stat(path)
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        parts = line.split()
        if "->" in parts:          # a waiter, not a holder
            continue
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want:
            pid = int(parts[4])
            cmd = _cmdline(pid)
            return f"pid {pid}" + (f" ({cmd})" if cmd else "")
    return None


class PortLock:
    """The lock of one port, taken for a session's whole life: `PortLock.take(url)` or raises PortBusy.

    The lock is an flock on `<runtime dir>/locks/<key>.lock`, whose text names the holder (pid,
    command, since when).  `release()` removes the file while still holding it; `take` checks the file
    it locked is still the one at the path, so two processes can never both hold a port."""

    def __init__(self, url: str, key: str, path: Path, fd: int):
        self.url, self.key, self.path, self._fd = url, key, path, fd

    @classmethod
    def take(cls, url: str) -> PortLock | None:
        import fcntl

        key = port_key(url)
        d = _subdir("locks") if key is not None else None
        if d is None:
            return None
        path = d / f"{_key_name(key)}.lock"
        for _ in range(20):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as e:
                log.warning("cannot lock %s (%s): opened without tinyedge's lock", url, e)
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise PortBusy(url, holder) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:                 # released (and removed) between our open and our flock: again
                os.close(fd)
                continue
            rec = {"port": url, "pid": os.getpid(), "command": _this_command(),
                   "since": time.strftime("%H:%M:%S")}
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(rec).encode())
            return cls(url, key, path, fd)
        raise PortBusy(url, "another process (its lock file keeps changing)")

    def release(self) -> None:
        if self._fd < 0:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1

    def __del__(self):
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        rec = json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        rec = {}
    pid = rec.get("pid")
    if not pid:
        return "another process"
    return f"pid {pid} ({rec.get('command', '?')}, since {rec.get('since', '?')})"


# ------------------------------------------------------------ emulated boards and their output


@dataclass
class EmulatedBoard:
    """What an emulated board tinyedge started leaves for other processes: where its output goes.

    `log` holds every byte the board printed from its start; `live` says it keeps growing with
    everything the board prints (QEMU's chardev log, the host board's relay), so a reader can mirror
    the board without opening its port; otherwise it holds the boot output only."""

    port: str
    pid: int                      # the emulator's process (or the serving process for an in-process board)
    log: str
    live: bool
    board: str = ""
    owner: int = 0                # the tinyedge process that started it
    owner_command: str = ""
    start: int | None = None      # the emulator's start time (/proc), against pid reuse

    def alive(self) -> bool:
        return _alive(self.pid, self.start)


def _board_dir() -> Path | None:
    return _subdir("boards")


def emulated_log_path(port: str) -> Path:
    """A new file name for the output of an emulated board about to serve `port` (unique: two
    starts handed one free port must not write one log); the board removes it when it stops."""
    name = f"{_key_name(port_key(port) or port)}-{os.getpid()}-{secrets.token_hex(4)}.log"
    d = _board_dir()
    if d is None:
        d = Path(tempfile.gettempdir())
        name = "tinyedge-board-" + name
    return d / name


def register_emulated(port: str, *, pid: int, log: os.PathLike | str, live: bool, board: str = "") -> Path | None:
    """Record the emulated board now serving `port`; returns the record's path (unregister_emulated removes it)."""
    rec = EmulatedBoard(port=port, pid=pid, log=str(log), live=live, board=board, owner=os.getpid(),
                        owner_command=_this_command(), start=_start_time(pid))
    d = _board_dir()
    if d is None:
        return None
    path = d / f"{_key_name(port_key(port) or port)}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(asdict(rec)))
        os.replace(tmp, path)
    except OSError as e:
        logging.getLogger(__name__).warning("cannot record the emulated board on %s (%s)", port, e)
        return None
    return path


def unregister_emulated(port: str, *, pid: int | None = None) -> None:
    """Remove the record of `port` (only if it is still the one of `pid`, when given); the board
    removes its log itself."""
    d = _board_dir()
    if d is None:
        return
    path = d / f"{_key_name(port_key(port) or port)}.json"
    rec = _read_record(path)
    if rec is None or (pid is not None and rec.pid != pid):
        return
    try:
        path.unlink()
    except OSError:
        pass


def _read_record(path: Path) -> EmulatedBoard | None:
    try:
        return EmulatedBoard(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def find_emulated(port: str) -> EmulatedBoard | None:
    """The running emulated board tinyedge started on `port`, or None (a stale record is removed)."""
    key = port_key(port)
    d = _board_dir() if key is not None else None
    if d is None:
        return None
    path = d / f"{_key_name(key)}.json"
    rec = _read_record(path)
    if rec is None:
        return None
    if not rec.alive():                      # its owner was killed before it could clean up
        unregister_emulated(port, pid=rec.pid)
        try:
            Path(rec.log).unlink()
        except OSError:
            pass
        return None
    return rec
