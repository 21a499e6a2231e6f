"""Firmware built once per content, in a cache shared by test runs and pytest-xdist workers.

The key is everything that changes the firmware: the .tflite bytes, the
board, the runtime, the protocol variant, and every file of tinyedge that
writes or builds projects (templates, firmware sources, board files, the
aot code generator).  A build holds a file lock on its key, so two workers
that want the same firmware build it once; the second one waits and reuses.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from ..boards import Board
from ..resources import data_dir

log = logging.getLogger(__name__)

_PKG = Path(__file__).resolve().parent.parent
# tinyedge modules whose code decides what a project holds or how it builds
_CODE_MODULES = ("project.py", "builder.py", "memory.py", "boards.py", "planner.py", "runtimes.py",
                 "graph.py", "mlperf.py")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyedge" / "hil"


@cache
def code_hash() -> str:
    """sha256 over the tinyedge files that shape a firmware build."""
    h = hashlib.sha256()
    files: list[tuple[str, Path]] = []
    for name in ("templates", "firmware", "boards"):
        root = data_dir(name)
        files += [(f"{name}/{p.relative_to(root).as_posix()}", p) for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]
    aot = _PKG / "aot"
    files += [(f"aot/{p.relative_to(aot).as_posix()}", p) for p in aot.rglob("*.py")]
    files += [(m, _PKG / m) for m in _CODE_MODULES if (_PKG / m).is_file()]
    for rel, p in sorted(files):
        h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


KEEP_BUILDS = 40          # cached builds kept (each change of tinyedge's sources makes new keys)
KEEP_FRESH_S = 3600.0    # a build used within the last hour is never dropped (another run may use it)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class PreparedFirmware:
    """A generated and built project, ready to flash."""

    board: Board
    runtime: str
    protocol: str
    tflite: Path                  # the model the firmware was built from
    model_sha256: str
    project: Path
    artifacts: dict[str, str]
    memory: dict = field(default_factory=dict)
    firmware_sha256: str = ""     # of the flashed artifact (ELF, or the host executable)
    built: bool = True            # False: taken from the cache


class FirmwareCache:
    """`prepare(model, board, runtime)`: the built firmware, from the cache when it is there."""

    def __init__(self, root: os.PathLike | str | None = None, *, jobs: int = 2):
        self.root = Path(root).expanduser().resolve() if root else default_cache_dir()
        self.jobs = jobs

    @contextmanager
    def _locked(self, key: str):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _prune(self) -> None:
        """Drop the oldest cached builds beyond KEEP_BUILDS (never a recently used one)."""
        import shutil
        import time

        dirs = [p for p in self.root.iterdir() if p.is_dir() and p.name != "models"] if self.root.is_dir() else []
        dirs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        now = time.time()
        for old in dirs[KEEP_BUILDS:]:
            if now - old.stat().st_mtime > KEEP_FRESH_S:
                shutil.rmtree(old, ignore_errors=True)

    def tflite_for(self, model: os.PathLike | str, calib: os.PathLike | str | None = None) -> Path:
        """The full-int8 .tflite of `model`: itself when it is one, else converted once (cached)."""
        from ..graph import is_tflite_bytes

        path = Path(model).expanduser().resolve()
        if path.is_file():
            with path.open("rb") as f:
                if is_tflite_bytes(f.read(8)):
                    return path
        from ..pipeline import _sha256_path

        key = _sha256(f"{_sha256_path(path)}\0{_sha256_path(Path(calib)) if calib else ''}".encode())[:24]
        out = self.root / "models" / f"{path.stem}-{key}.tflite"
        with self._locked(f"model-{key}"):
            if not out.is_file():
                from ..conversion import convert

                out.parent.mkdir(parents=True, exist_ok=True)
                convert(path, out=out, calib=calib)
        return out

    def prepare(self, tflite: os.PathLike | str, board: Board, runtime: str = "aot",
                protocol: str = "tinyedge") -> PreparedFirmware:
        from ..builder import build_project, read_build
        from ..project import generate_project

        tflite = Path(tflite)
        data = tflite.read_bytes()
        model_sha = _sha256(data)
        key = _sha256(f"{model_sha}\0{board.id}\0{runtime}\0{protocol}\0{code_hash()}".encode())[:24]
        folder = self.root / f"{tflite.stem}-{board.id}-{runtime}-{protocol}-{key}"
        built = False
        with self._locked(key):
            record = folder / "build" / "tinyedge-build.json"
            ok = record.is_file()
            if ok:
                rec = read_build(folder)
                ok = all(Path(p).exists() for p in rec["artifacts"].values())
                if ok:
                    os.utime(folder)          # recently used: kept by _prune
            if not ok:
                self._prune()
                log.info("building %s for %s (%s, %s)", tflite.name, board.id, runtime, protocol)
                kw = {"protocol": protocol} if protocol != "tinyedge" else {}
                generate_project(tflite, board, runtime, folder, force=True, **kw)
                build_project(folder, jobs=self.jobs)
                built = True
            rec = read_build(folder)
        arts = rec["artifacts"]
        main = arts.get("elf") or arts.get("exe") or next(iter(arts.values()), None)
        fw_sha = _sha256(Path(main).read_bytes()) if main else ""
        mem = rec.get("memory") or {}
        return PreparedFirmware(board=board, runtime=runtime, protocol=protocol, tflite=tflite,
                                model_sha256=model_sha, project=folder, artifacts=arts,
                                memory=mem if isinstance(mem, dict) else {}, firmware_sha256=fw_sha,
                                built=built)

