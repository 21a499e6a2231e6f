"""Run a built ELF on an emulated board under QEMU, its UART on a local TCP port.

    with start_qemu(elf, get_board("qemu-cortex-m4")) as q:
        link = serial.serial_for_url(q.url)      # socket://127.0.0.1:PORT

The board's `flash.qemu_system` picks the binary: qemu-system-arm (the
Cortex-M boards) or qemu-system-riscv32 (qemu-riscv32: the virt machine,
started with `-bios none` so the ELF's own entry runs in machine mode).
QEMU runs with `-icount shift=0` (one instruction per nanosecond of virtual
time, so the firmware's SysTick, or RISC-V's minstret, counts instructions) and
`-serial tcp:127.0.0.1:PORT,server=on,wait=on`: the guest does not start
until the first client connects, so nothing it prints (the announcement line)
is lost.  QEMU also logs every byte the guest prints to a file under the
runtime dir (its chardev `logfile`), and the board is registered there
(tinyedge.ports.register_emulated): `tinyedge monitor` shows its output from
the start, read-only, beside the session that holds the port.
`start_qemu` returns once QEMU listens; the caller must then
connect to `.url`.  The port is a free one picked by binding port 0 (unless
given).  `.close()` terminates QEMU, then kills it; an atexit hook closes any
QEMU still running when the Python process exits.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .errors import FlashError, InputFileError, ToolMissingError, UsageError
from .procutil import ChildProcess, die_with_parent, signals_held, stop_process, track, untrack

log = logging.getLogger(__name__)

QEMU = "qemu-system-arm"
QEMU_HOW = "sudo apt-get install qemu-system-arm"
# flash.qemu_system -> (binary, how to get it)
QEMU_SYSTEMS = {
    "arm": (QEMU, QEMU_HOW),
    "riscv32": ("qemu-system-riscv32", "sudo apt-get install qemu-system-misc"),
}
# Machine -> arguments it always needs: virt would otherwise boot OpenSBI first.
_MACHINE_ARGS = {"virt": ["-bios", "none"]}


def qemu_binary(board) -> tuple[str, str]:
    """(binary name, how to install it) of the QEMU that emulates `board`."""
    return QEMU_SYSTEMS.get(board.flash.qemu_system, QEMU_SYSTEMS["arm"])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local_sockets(port: int) -> list[tuple[str, int, str]]:
    """(state, remote port, inode) of every IPv4 TCP socket bound to 127.0.0.1:`port`, from /proc
    (state 0A: listening, 01: established; [] where /proc cannot be read)."""
    want = f"0100007F:{port:04X}"
    found = []
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[1] == want:
                    found.append((parts[3], int(parts[2].rsplit(":", 1)[1], 16), parts[9]))
    except (OSError, ValueError):
        return []
    return found


def _listening(port: int, pid: int | None = None) -> bool:
    """True when a socket listens on 127.0.0.1:port (read from /proc, without connecting: a
    connection would become QEMU's one serial client) and, with `pid`, that process holds it.

    The owner matters: two processes (pytest-xdist workers) can be handed the same free port;
    the QEMU that loses the bind exits, but until it does its caller would see the other's
    listener, connect to the wrong board and start it, and its output would go to that caller."""
    inodes = {inode for state, _, inode in _local_sockets(port) if state == "0A"}  # 0A = LISTEN
    if not inodes or pid is None:
        return bool(inodes)
    fd_dir = f"/proc/{pid}/fd"
    try:
        for fd in os.listdir(fd_dir):
            try:
                link = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    except OSError:
        return False
    return False


def accepted_clients(port: int) -> set[int]:
    """The client ports of the connections a listener on 127.0.0.1:`port` has accepted (from /proc).

    A connection the kernel completed but the server has not accepted yet (still in the backlog)
    is ESTABLISHED too, but its socket has no inode until accept(): those are left out."""
    return {remote for state, remote, inode in _local_sockets(port) if state == "01" and inode != "0"}


class PortTaken(FlashError):
    """Another program connected to QEMU's UART port first, so the guest's output goes to it."""


def serial_args(port: int, log: os.PathLike | str | None = None) -> list[str]:
    """QEMU's first UART as a TCP server on 127.0.0.1:`port` that holds the guest until the first
    client connects; with `log`, QEMU also writes every byte the guest prints to that file (the
    chardev's logfile: the board's output from its start, whoever is connected, or nobody)."""
    if log is None:
        return ["-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"]
    path = str(log).replace(",", ",,")      # QEMU's option syntax: a comma in a value is doubled
    return ["-chardev", f"socket,id=te_uart,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on,"
                        f"logfile={path},logappend=off", "-serial", "chardev:te_uart"]


def qemu_command(elf: os.PathLike | str, board, port: int, log: os.PathLike | str | None = None) -> list[str]:
    """The QEMU argument list for `elf` on `board` with the UART on `port` (logged to `log`)."""
    machine = board.flash.qemu_machine
    if not machine:
        raise UsageError(f"board {board.id} is not emulated by QEMU", hint="pick a qemu-* board")
    cmd = [qemu_binary(board)[0], "-M", machine, *_MACHINE_ARGS.get(machine, [])]
    if board.flash.qemu_cpu:
        cmd += ["-cpu", board.flash.qemu_cpu]
    if board.family == "cortex-m":  # the fault handler stops QEMU with a semihosting SYS_EXIT
        cmd += ["-semihosting-config", "enable=on,target=native"]
    return cmd + ["-nographic", "-icount", "shift=0", "-kernel", str(elf), *serial_args(port, log),
                  "-monitor", "none"]


class QemuProcess(ChildProcess):
    """A running QEMU; `.url` is the emulated UART as a pyserial URL."""

    def __init__(self, proc: subprocess.Popen, port: int, cmd: list[str], stderr_file, log: Path | None = None):
        self.proc = proc
        self.port = port
        self.cmd = cmd
        self._stderr = stderr_file
        self.log_path = log          # every byte the guest printed, from its start (QEMU writes it)
        self._registered = False
        track(self)

    def register(self, board_id: str = "") -> None:
        """Tell other processes (`tinyedge monitor`) that this board serves `.url` and where its output is."""
        if self.log_path is not None:
            from .ports import register_emulated

            register_emulated(self.url, pid=self.proc.pid, log=self.log_path, live=True, board=board_id)
            self._registered = True

    def output(self) -> bytes:
        """Everything the guest has printed so far (b"" when it is not logged)."""
        try:
            return self.log_path.read_bytes() if self.log_path is not None else b""
        except OSError:
            return b""

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float | None:
        """CPU time QEMU has used so far (user + system, from /proc), or None where that cannot be read."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            return None

    def check_first_client(self, transport) -> None:
        """Raise PortTaken when QEMU's one UART client is not `transport` (a Transport on `.url`).

        QEMU serves the first client that connects (wait=on) and leaves later ones waiting; a
        program still retrying an older board's port that a new QEMU was given would get the
        guest's output, and this connection nothing at all."""
        mine = transport.local_port() if transport is not None else None
        clients = accepted_clients(self.port)
        if mine is not None and clients and mine not in clients:
            raise PortTaken(f"{self.url}: another program connected to the emulator's UART first "
                            f"(from 127.0.0.1:{min(clients)})",
                            hint="stop the other program using the port ('tinyedge ports' lists them), or retry")

    def wait_for_announcement(self, device, budget: float = 20.0) -> dict:
        """The firmware's `tinyedge ready ...` fields, read through `device` (a Device on `.url`).

        The wait is measured in the work QEMU did, not in wall seconds: it gives up once QEMU has
        used `budget` seconds of CPU without the line (a firmware that computes forever), once it
        exits, or after a wall-clock limit scaled with the machine's load (a guest that sleeps).
        On a loaded machine QEMU gets less of the CPU, and the wait grows with it."""
        from .errors import DeviceTimeout, LinkError

        start_cpu = self.cpu_seconds()
        start = time.monotonic()
        while True:
            try:
                return device.wait_for_announcement(min(1.0, budget))
            except DeviceTimeout as e:
                last = e
                if not device.log_lines:
                    self.check_first_client(device.transport)
                ann = self._announcement_lost_on_the_line(device)
                if ann is not None:
                    return ann
            except LinkError as e:   # the line closed: QEMU stopped (a fault handler exits it)
                last = e
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    raise e from None
            if not self.alive():
                err = self.stderr_text().strip()
                fault = device.fault_line()
                if fault:
                    raise FlashError(f"the firmware faulted before it announced itself: {fault}",
                                     hint="rebuild the project ('tinyedge build'); if it persists, report it "
                                          "with this line")
                raise FlashError(f"{Path(self.cmd[0]).name} exited (status {self.proc.returncode}) before the "
                                 f"firmware announced itself{': ' + err if err else ''}",
                                 hint="run again with --verbose; check the ELF was built for this board")
            wall = time.monotonic() - start
            cpu = self.cpu_seconds()
            used = (cpu - start_cpu) if cpu is not None and start_cpu is not None else wall
            if used >= budget or wall >= wall_limit(budget):
                seen = (f"last line seen: {device.log_lines[-1]!r}" if device.log_lines
                        else "nothing was printed")
                raise DeviceTimeout(
                    f"{self.url}: no 'tinyedge ready' line after {wall:.0f} s ({used:.1f} s of QEMU CPU time); "
                    f"{seen}", hint="rebuild the project ('tinyedge build'); if it persists, run with --verbose "
                                    "and report it") from last

    def _announcement_lost_on_the_line(self, device) -> dict | None:
        """The announcement from QEMU's log of the UART when the session has received every byte up
        to the end of that line but did not decode it (then a warning quotes what the session got).

        QEMU writes each guest byte to the log and to the one connected client, so the session's
        byte count says whether the line has reached it.  A line that has not arrived yet is waited
        for as before; this only saves a run from a decoding slip, and says so."""
        import re

        m = re.search(rb"tinyedge ready [^\n]*\n", self.output())
        if m is None or device.bytes_received < m.end():
            return None
        line = m.group(0).decode("ascii", "replace").strip()
        if not device.take_announcement(line):
            return None
        log.warning("%s: the session received the boot line but did not decode it (QEMU's log has %r; "
                    "the last bytes received were %r): please report this", self.url, line,
                    device.seen_bytes()[-200:])
        return device.announcement

    def stderr_text(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def close(self, timeout: float = 3.0) -> None:
        """Terminate QEMU (then kill it if it does not stop)."""
        stop_process(self.proc, timeout)
        try:
            self._stderr.close()
        except OSError:
            pass
        if self._registered:
            from .ports import unregister_emulated

            unregister_emulated(self.url, pid=self.proc.pid)
            self._registered = False
        if self.log_path is not None:
            try:
                self.log_path.unlink()
            except OSError:
                pass
        untrack(self)

    def __enter__(self) -> QemuProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"QemuProcess(pid={self.proc.pid}, url={self.url!r})"


def wall_limit(budget: float) -> float:
    """Wall seconds to allow for `budget` seconds of work: 3x, times the load per core when above 1."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        load = 1.0
    return budget * 3 * max(1.0, load)


def start_qemu(elf: os.PathLike | str, board, *, port: int | None = None,
               timeout: float = 10.0) -> QemuProcess:
    """Start QEMU for `elf` on emulated `board`; return once its UART port listens.

    Everything the guest prints goes to `.log_path` too (from its first byte), and the board is
    registered for other processes, so `tinyedge monitor --port URL` shows its output from the
    start and mirrors a running session without taking the port."""
    from .ports import emulated_log_path

    name, how = qemu_binary(board)
    exe = shutil.which(name)
    if exe is None:
        raise ToolMissingError(name, how)
    elf = Path(elf).expanduser().resolve()
    if not elf.is_file():
        raise InputFileError(f"{elf} does not exist", path=elf, hint="build the project first (tinyedge build)")
    last_err = ""
    for _attempt in range(3):
        p = port or _free_port()
        log_path = emulated_log_path(f"socket://127.0.0.1:{p}")
        cmd = qemu_command(elf, board, p, log_path)
        cmd[0] = exe
        err = tempfile.TemporaryFile()
        log.info("starting %s", " ".join(cmd))
        # Linux ties PR_SET_PDEATHSIG to the parent *thread*: a QEMU started from a worker thread
        # (a restart from a timer, a pytest-timeout thread) would be killed when that thread ends.
        main = threading.current_thread() is threading.main_thread()
        with signals_held():  # a SIGTERM now finds QEMU not started, or tracked (closed at exit)
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    preexec_fn=die_with_parent if main else None)  # noqa: PLW1509
            q = QemuProcess(proc, p, cmd, err, log_path)
        deadline = time.monotonic() + timeout
        can_see = os.path.exists("/proc/net/tcp")  # elsewhere: give QEMU a moment instead
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _listening(p, proc.pid) if can_see else time.monotonic() > deadline - timeout + 0.5:
                q.register(board.id)
                return q
            time.sleep(0.02)
        last_err = q.stderr_text().strip()
        q.close()
        if port is not None or "Address already in use" not in last_err:
            break
    raise FlashError(f"{name} did not start for {board.id}: {last_err or 'no output'}",
                     hint="run the command with --verbose to see it")
