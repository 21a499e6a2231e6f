"""Where the boards of a test run are, and who may use them.

A `Target` is one board: emulated here (a new QEMU or host process per
deployment, one per pytest-xdist worker since each worker is a process), a
real board at a pyserial URL (`--tinyedge-port`), an entry of an inventory
file, or a labgrid place.  Real boards are locked across processes with a
file lock per board URL, held while a worker has firmware deployed on it,
so two workers never share one; a worker waits for a busy board, and a test
that wants a board nobody has is skipped with the reason.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import Board, get_board
from ..errors import InputFileError, TinyedgeError, UsageError

log = logging.getLogger(__name__)


class BoardUnavailable(TinyedgeError):
    """No board of the wanted id can be had (the test skips with this reason)."""


@dataclass(frozen=True)
class InventoryEntry:
    name: str
    board: str
    url: str
    tags: tuple[str, ...] = ()


def load_inventory(path: os.PathLike | str) -> list[InventoryEntry]:
    """Read an inventory TOML: `[[board]]` tables with name, board (a board id), url, tags."""
    path = Path(path).expanduser().resolve()
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"inventory {path} does not exist", path=path, hint="check the path") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputFileError(f"inventory {path} is not valid TOML: {e}", path=path,
                             hint="see the README's 'Hardware-in-the-loop tests' for the format") from None
    entries, seen = [], set()
    for i, t in enumerate(doc.get("board", [])):
        where = f"{path.name}: board #{i + 1}"
        if not isinstance(t, dict):
            raise InputFileError(f"{where} is not a table", path=path, hint="write [[board]] tables")
        missing = [k for k in ("name", "board", "url") if not isinstance(t.get(k), str) or not t.get(k)]
        if missing:
            raise InputFileError(f"{where} lacks {', '.join(missing)}", path=path,
                                 hint='each [[board]] needs name = "...", board = "<board id>", url = "<pyserial URL>"')
        if t["name"] in seen:
            raise InputFileError(f"{where}: the name {t['name']!r} is used twice", path=path,
                                 hint="give every board its own name")
        seen.add(t["name"])
        get_board(t["board"])     # an unknown id is an error now, not in the middle of the run
        tags = t.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
            raise InputFileError(f"{where}: tags must be a list of strings", path=path, hint='tags = ["bench"]')
        entries.append(InventoryEntry(t["name"], t["board"], t["url"], tuple(tags)))
    return entries


@dataclass(eq=False)
class Target:
    """One board.  `kind`: emulated, port, inventory or labgrid."""

    name: str
    board: Board
    kind: str
    url: str | None = None
    tags: tuple[str, ...] = ()
    broken: str | None = None          # why later tests on it skip
    restarts: int = 0
    users: int = 0                     # tests using it now
    deployments: list = field(default_factory=list)   # open Deployment objects on it
    current: object = None             # the Deployment whose firmware it runs
    _lock_fh: object = None
    place: object = None               # a labgrid place handle

    @property
    def emulated(self) -> bool:
        return self.kind == "emulated"

    @property
    def lock_key(self) -> str:
        """What the cross-process lock is named after: the URL, or the labgrid place."""
        if self.place is not None:
            return f"labgrid:{self.place.coordinator}/{self.place.name}"
        return self.url or self.name

    @property
    def can_flash(self) -> bool:
        """A board reached over a URL whose board id is emulated (QEMU published by labgrid,
        say) runs what it was started with; tinyedge cannot flash it from here."""
        return self.emulated or not self.board.emulated

    def describe(self) -> str:
        where = f" at {self.url}" if self.url and not self.emulated else ""
        return f"{self.board.id} ({self.kind} {self.name}){where}"


def lock_dir() -> Path:
    return Path(os.environ.get("TINYEDGE_LOCK_DIR") or Path(tempfile.gettempdir()) / "tinyedge-board-locks")


class BoardPool:
    """The run's boards: `get(board_id)` picks (and locks) one; `release_idle()` lets go of
    boards no test and no deployment uses."""

    def __init__(self, *, ports: dict[str, list[str]] | None = None, inventory: list[InventoryEntry] = (),
                 labgrid: list[Target] = (), lock_wait: float = 600.0, worker: str = "main"):
        self.worker = worker
        self.lock_wait = lock_wait
        self._emulated: dict[str, Target] = {}
        self._real: list[Target] = []
        for board_id, urls in (ports or {}).items():
            for i, url in enumerate(urls):
                self._real.append(Target(f"port{i}", get_board(board_id), "port", url))
        for e in inventory:
            self._real.append(Target(e.name, get_board(e.board), "inventory", e.url, e.tags))
        self._real.extend(labgrid)

    def targets(self) -> list[Target]:
        return [*self._real, *self._emulated.values()]

    def real_board_ids(self) -> list[str]:
        return list(dict.fromkeys(t.board.id for t in self._real))

    def get(self, board_id: str) -> Target:
        b = get_board(board_id)
        candidates = [t for t in self._real if t.board.id == b.id]
        if candidates:
            return self._lock_one(b, candidates)
        if b.emulated:
            t = self._emulated.get(b.id)
            if t is None:
                t = self._emulated[b.id] = Target(f"{self.worker}", b, "emulated")
            return t
        raise BoardUnavailable(
            f"no {b.id} board: it is a real board and none was given",
            hint=f"pass --tinyedge-port URL with --tinyedge-board {b.id}, or list it in --tinyedge-inventory")

    def _lock_one(self, b: Board, candidates: list[Target]) -> Target:
        for t in candidates:          # one this process holds already
            if t._lock_fh is not None and t.broken is None:
                return t
        usable = [t for t in candidates if t.broken is None]
        if not usable:
            raise BoardUnavailable(f"every {b.id} board is broken: " + "; ".join(f"{t.name}: {t.broken}"
                                                                                for t in candidates))
        d = lock_dir()
        d.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_wait
        delay = 0.05
        while True:
            for t in usable:
                fh = open(d / (hashlib.sha256(t.lock_key.encode()).hexdigest()[:20] + ".lock"), "a+")  # noqa: SIM115
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    fh.close()
                    continue
                fh.seek(0)
                fh.truncate()
                fh.write(f"{os.getpid()} {self.worker} {t.name}\n")
                fh.flush()
                t._lock_fh = fh
                if t.place is not None:          # a labgrid place: acquire it while we hold it
                    try:
                        t.place.acquire()
                        t.url = t.place.serial_url()
                    except BaseException:
                        self.release(t)
                        raise
                log.info("locked %s", t.describe())
                return t
            if time.monotonic() >= deadline:
                raise BoardUnavailable(
                    f"every {b.id} board ({', '.join(t.name for t in usable)}) stayed in use by other "
                    f"processes for {self.lock_wait:g} s",
                    hint="add boards to the inventory, run fewer workers, or raise --tinyedge-lock-wait")
            time.sleep(delay)
            delay = min(1.0, delay * 2)

    def release(self, t: Target) -> None:
        if t.place is not None:
            t.place.release()
        if t._lock_fh is not None:
            fcntl.flock(t._lock_fh, fcntl.LOCK_UN)
            t._lock_fh.close()
            t._lock_fh = None
            log.info("released %s", t.describe())

    def release_idle(self) -> None:
        for t in self._real:
            if t.users == 0 and not t.deployments:
                self.release(t)

    def close(self) -> None:
        for t in self.targets():
            for d in list(t.deployments):
                d.close()
            self.release(t)


def parse_ports(boards: list[str], ports: list[str]) -> dict[str, list[str]]:
    """Pair each --tinyedge-port with a real board of --tinyedge-board, in order
    (the last real board takes any ports left)."""
    if not ports:
        return {}
    # real boards first; an emulated id with a port is an emulator already running there
    real = [b for b in boards if not get_board(b).emulated] or list(boards)
    if not real:
        raise UsageError("--tinyedge-port needs the board's id",
                         hint="add --tinyedge-board ID (see 'tinyedge boards')")
    out: dict[str, list[str]] = {}
    for i, url in enumerate(ports):
        out.setdefault(get_board(real[min(i, len(real) - 1)]).id, []).append(url)
    return out
