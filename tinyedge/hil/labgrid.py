"""A labgrid place as a tinyedge board: acquired for as long as a test run uses it.

labgrid shares boards across machines: a coordinator, exporters that
publish serial ports (a `NetworkSerialPort`: ser2net in front of a USB
serial device, or any TCP serial server), and places that a client acquires.
Here a place becomes a `Target` whose URL is the place's serial port
(`rfc2217://host:port`, or `socket://host:port` for raw TCP).  The place is
acquired with labgrid's own client (`labgrid-client acquire`) when a worker
locks the target and released when it lets go; the board id comes from the
place's `board` tag (`labgrid-client -p PLACE set-tags board=nucleo-l4r5zi`)
or from --tinyedge-board.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..boards import get_board
from ..errors import InputFileError, ToolMissingError, UsageError
from .targets import BoardUnavailable, Target

log = logging.getLogger(__name__)

DEFAULT_COORDINATOR = "127.0.0.1:20408"
HOW = "pip install labgrid"


def _client_exe() -> str:
    here = Path(sys.executable).parent / "labgrid-client"
    exe = str(here) if here.exists() else shutil.which("labgrid-client")
    if not exe:
        raise ToolMissingError("labgrid-client", HOW)
    return exe


def read_env(path: os.PathLike | str) -> tuple[str, str | None]:
    """(place name, coordinator address or None) from a labgrid environment YAML with a RemotePlace."""
    import yaml

    path = Path(path).expanduser().resolve()
    try:
        doc = yaml.safe_load(path.read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise InputFileError(f"cannot read the labgrid environment {path}: {e}", path=path,
                             hint="give a labgrid environment YAML (targets: main: resources: RemotePlace: name: ...)") from None
    coord = (doc.get("options") or {}).get("coordinator_address")
    for target in (doc.get("targets") or {}).values():
        res = (target or {}).get("resources") or {}
        items = res if isinstance(res, list) else [{k: v} for k, v in res.items()]
        for item in items:
            rp = item.get("RemotePlace") if isinstance(item, dict) else None
            if isinstance(rp, dict) and rp.get("name"):
                return str(rp["name"]), coord
    raise InputFileError(f"{path} has no RemotePlace resource", path=path,
                         hint="add 'RemotePlace: {name: PLACE}' to a target's resources")


class LabgridPlace:
    """One place on a coordinator: `tags()`, `acquire()`, `serial_url()`, `release()`."""

    def __init__(self, name: str, coordinator: str):
        self.name = name
        self.coordinator = coordinator
        self.acquired = False

    def _session(self):
        try:
            from labgrid.remote.client import start_session
        except ImportError as e:
            raise ToolMissingError("labgrid", HOW) from e
        try:
            return start_session(self.coordinator)
        except Exception as e:  # noqa: BLE001 - grpc/connection errors vary
            raise BoardUnavailable(f"cannot reach the labgrid coordinator at {self.coordinator}: {e}",
                                   hint="start labgrid-coordinator, or pass --tinyedge-labgrid-coordinator") from None

    def _with_session(self, fn):
        s = self._session()
        try:
            try:
                place = s.get_place(self.name)
            except Exception as e:  # noqa: BLE001 - labgrid's UserError for unknown places
                raise BoardUnavailable(f"labgrid place {self.name!r}: {e}",
                                       hint="see 'labgrid-client places'") from None
            return fn(s, place)
        finally:
            try:
                s.loop.run_until_complete(s.stop())
            except Exception:  # noqa: BLE001
                log.debug("closing the labgrid session failed", exc_info=True)

    def tags(self) -> dict[str, str]:
        return self._with_session(lambda s, p: dict(p.tags))

    def _client(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([_client_exe(), "-x", self.coordinator, "-p", self.name, *args],
                              capture_output=True, text=True, timeout=60)

    def acquire(self) -> None:
        r = self._client("acquire")
        if r.returncode != 0:
            why = (r.stderr or r.stdout).strip().splitlines()
            raise BoardUnavailable(f"labgrid place {self.name!r} could not be acquired: "
                                   f"{why[-1] if why else 'labgrid-client acquire failed'}",
                                   hint="wait for it, or see 'labgrid-client -p PLACE show'")
        self.acquired = True
        log.info("acquired labgrid place %s", self.name)

    def release(self) -> None:
        if not self.acquired:
            return
        r = self._client("release")
        if r.returncode != 0:
            log.warning("labgrid-client release of %s failed: %s", self.name, (r.stderr or r.stdout).strip())
        self.acquired = False
        log.info("released labgrid place %s", self.name)

    def serial_url(self) -> str:
        def find(s, place):
            for (name, _cls), e in s.get_target_resources(place).items():
                if e.cls in ("NetworkSerialPort", "RawSerialPort", "USBSerialPort"):
                    a = e.args
                    if not e.avail:
                        raise BoardUnavailable(f"labgrid place {self.name!r}: its serial port {name} is offline",
                                               hint="check the exporter")
                    if "host" not in a or "port" not in a:
                        continue
                    if a.get("protocol") == "raw":
                        return f"socket://{a['host']}:{a['port']}"
                    # ser2net answers no SET_CONTROL; labgrid's own serial driver ignores it too
                    return f"rfc2217://{a['host']}:{a['port']}?ign_set_control"
            raise BoardUnavailable(f"labgrid place {self.name!r} has no network serial port",
                                   hint="add a match for an exported NetworkSerialPort (or a USB serial port "
                                        "exported through ser2net)")

        url = self._with_session(find)
        _wait_listening(url, timeout=15.0)
        return url


def _wait_listening(url: str, timeout: float) -> None:
    """The exporter starts ser2net when the place is acquired: wait until its port takes connections."""
    import socket
    import time
    from urllib.parse import urlsplit

    u = urlsplit(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((u.hostname, u.port), timeout=2.0):
                return
        except OSError as e:
            if time.monotonic() >= deadline:
                raise BoardUnavailable(f"the serial port of the labgrid place ({url}) does not accept "
                                       f"connections: {e}", hint="check the exporter and its ser2net") from None
            time.sleep(0.1)


def labgrid_target(*, place: str | None = None, env: str | None = None, coordinator: str | None = None,
                   board: str | None = None) -> Target:
    """The Target for a labgrid place (given by name, or by a labgrid environment's RemotePlace)."""
    env_coord = None
    if env:
        env_place, env_coord = read_env(env)
        place = place or env_place
    if not place:
        raise UsageError("a labgrid place is needed", hint="pass --tinyedge-labgrid-place PLACE")
    coord = coordinator or env_coord or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR
    handle = LabgridPlace(place, coord)
    board_id = board or handle.tags().get("board")
    if not board_id:
        raise UsageError(f"labgrid place {place!r} does not say which board it holds",
                         hint=f"labgrid-client -p {place} set-tags board=ID, or pass --tinyedge-board ID")
    t = Target(place, get_board(board_id), "labgrid", url=None)
    t.place = handle
    return t
