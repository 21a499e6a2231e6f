"""Build a generated project with its board's own tools; record the artifacts and the memory report.

`build_project(dir)` reads `tinyedge-project.json`, runs the project's build
system (make, cmake or idf.py; argument lists, never a shell), keeps the
tools' output in `DIR/build/build.log`, reads the memory report from the ELF
and checks it against the board (a firmware that does not fit is a
BuildError with the numbers, before anything is flashed), and records it all
in `DIR/build/tinyedge-build.json`.  A missing toolchain is a
ToolMissingError saying how to get it; the project is left in place.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .boards import Board, get_board
from .errors import BuildError, ToolMissingError
from .fsutil import atomic_write_json, atomic_write_text
from .memory import MemoryReport, check_fits, memory_report
from .project import content_hash, read_project

log = logging.getLogger(__name__)

BUILD_FILE = "tinyedge-build.json"
_WARNING = re.compile(r"\bwarning:", re.IGNORECASE)
_ERROR = re.compile(r"\b(?:fatal )?error:|undefined reference|No rule to make target|CMake Error")
_OVERFLOW = re.compile(r"region `?'?(\w+)'? overflowed by (\d+) bytes")

_ARM_HOW = "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi (or Arm GNU Toolchain from developer.arm.com)"
_IDF_HOW = ("install ESP-IDF v5.x (https://docs.espressif.com/projects/esp-idf/en/stable/esp32/get-started/) "
            "and run '. $IDF_PATH/export.sh' so idf.py is on PATH, then run 'tinyedge build' again; "
            "the project is left in place")


@dataclass
class BuildResult:
    project: Path
    board: str
    runtime: str
    artifacts: dict[str, Path]
    memory: MemoryReport | None
    warnings: list[str] = field(default_factory=list)
    log: Path | None = None
    seconds: float = 0.0

    @property
    def elf(self) -> Path | None:
        return self.artifacts.get("elf")

    def to_dict(self) -> dict:
        return {
            "project": str(self.project), "board": self.board, "runtime": self.runtime,
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
            "memory": self.memory.to_dict() if self.memory else None,
            "warnings": self.warnings, "log": str(self.log) if self.log else None,
            "seconds": round(self.seconds, 3), "tinyedge_version": __version__,
        }


def _need(tool: str, how: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissingError(tool, how)
    return path


def _run(cmds: list[list[str]], cwd: Path, log_path: Path, what: str) -> str:
    """Run each command in turn; all output goes to `log_path`; BuildError on failure."""
    text = []
    env = dict(os.environ, LC_ALL="C")
    for cmd in cmds:
        log.info("running %s", " ".join(cmd))
        text.append("$ " + " ".join(cmd) + "\n")
        try:
            p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors="replace", env=env)
        except OSError as e:
            raise ToolMissingError(cmd[0], f"could not run it ({e.strerror})") from None
        text.append(p.stdout + p.stderr)
        if p.returncode != 0:
            atomic_write_text(log_path, "".join(text))
            over = _OVERFLOW.findall(p.stdout + p.stderr)
            if over:
                detail = "; ".join(f"{region} overflowed by {int(n):,} bytes" for region, n in over)
                raise BuildError(f"the firmware does not fit the board's memory: {detail} (linker; see {log_path})",
                                 hint="pick a board with more memory, or a smaller model "
                                      "(tinyedge inspect shows the plan)")
            errors = [ln for ln in (p.stdout + p.stderr).splitlines() if _ERROR.search(ln)]
            lines = errors or (p.stdout + p.stderr).strip().splitlines()[-1:] or ["no output"]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise BuildError(f"{what} failed (exit {p.returncode}): {lines[0].strip()}{more}",
                             hint=f"the full output is in {log_path}")
    out = "".join(text)
    atomic_write_text(log_path, out)
    return out


def _jobs(jobs: int | None) -> str:
    return str(jobs or max(1, min(os.cpu_count() or 1, 8)))


def _build_make(proj: Path, board: Board, jobs: int | None, log_path: Path) -> str:
    make = _need("make", "sudo apt-get install make")
    if board.toolchain is not None:
        _need(board.toolchain.cross + "gcc", board.toolchain.how)
    else:
        _need("cc", "sudo apt-get install gcc (or any C99 compiler as cc)")
    return _run([[make, "-C", str(proj), f"-j{_jobs(jobs)}", "all"]], proj, log_path, "make")


def _build_cmake(proj: Path, board: Board, jobs: int | None, log_path: Path) -> str:
    """A tflm Cortex-M project: TFLM from the per-core library cache (built once, from the pinned
    sources of tinyedge.sources: local with TINYEDGE_SOURCES_DIR, else fetched once), then the firmware."""
    from .tflm_library import cmake_source_args, library_for

    cmake = _need("cmake", "sudo apt-get install cmake")
    _need("arm-none-eabi-gcc", _ARM_HOW)
    build = proj / "build"
    extra: list[str] = []
    if (proj / "cmake" / "tflm.cmake").is_file():
        lib = library_for(proj, jobs=int(_jobs(jobs)), log_path=log_path)
        extra = [*cmake_source_args(), f"-DTE_TFLM_LIBRARY={lib.path}"]
    return _run([
        [cmake, "-S", str(proj), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_TOOLCHAIN_FILE={proj / 'cmake' / 'arm-none-eabi.cmake'}", *extra],
        [cmake, "--build", str(build), "-j", _jobs(jobs)],
    ], proj, log_path, "cmake")


def _build_idf(proj: Path, board: Board, jobs: int | None, log_path: Path) -> str:
    idf = _need("idf.py", _IDF_HOW)
    target = board.flash.esptool_chip or board.id
    # set-target once (it rewrites sdkconfig from sdkconfig.defaults); later builds are incremental.
    cmds = [] if (proj / "sdkconfig").is_file() else [[idf, "set-target", target]]
    return _run([*cmds, [idf, "build"]], proj, log_path, "idf.py build")


# Build system name (tinyedge-project.json "build_system") -> builder.
BUILDERS = {"make": _build_make, "cmake": _build_cmake, "idf": _build_idf}


def build_project(folder: os.PathLike | str, *, jobs: int | None = None, check_fit: bool = True
                  ) -> BuildResult:
    """Build the project in `folder`; return its artifacts and memory report."""
    proj = Path(folder).expanduser().resolve()
    meta = read_project(proj)
    board = get_board(meta["board"])
    builder = BUILDERS.get(meta["build_system"])
    if builder is None:
        raise BuildError(f"unknown build system {meta['build_system']!r} in {proj}",
                         hint="generate the project again")
    (proj / "build").mkdir(exist_ok=True)
    log_path = proj / "build" / "build.log"
    t0 = time.monotonic()
    output = builder(proj, board, jobs, log_path)
    seconds = time.monotonic() - t0
    warnings = [ln.strip() for ln in output.splitlines() if _WARNING.search(ln)]
    artifacts = {}
    for key, rel in meta.get("artifacts", {}).items():
        p = proj / rel
        if p.exists():
            artifacts[key] = p
    elf = artifacts.get("elf")
    if meta["build_system"] != "idf" and board.family != "host" and elf is None:
        raise BuildError(f"the build finished but made no ELF ({meta['artifacts'].get('elf')})",
                         hint=f"see {log_path}")
    report = memory_report(elf, board) if elf is not None else None
    result = BuildResult(project=proj, board=board.id, runtime=meta["runtime"], artifacts=artifacts,
                         memory=report, warnings=warnings, log=log_path, seconds=seconds)
    record = result.to_dict()
    record["project_hash"] = content_hash(proj)
    record["artifacts"] = {k: str(v.relative_to(proj)) for k, v in artifacts.items()}
    atomic_write_json(proj / "build" / BUILD_FILE, record)
    if report is not None:
        log.info("memory: %s", report.summary())
        if check_fit:
            check_fits(report, board.id)
    return result


def read_build(folder: os.PathLike | str) -> dict:
    """The tinyedge-build.json of a built project (artifact paths made absolute)."""
    import json

    from .errors import InputFileError

    proj = Path(folder).expanduser().resolve()
    f = proj / "build" / BUILD_FILE
    if not f.is_file():
        raise InputFileError(f"{proj} has not been built (no build/{BUILD_FILE})", path=proj,
                             hint=f"run 'tinyedge build {folder}' first")
    try:
        data = json.loads(f.read_text("utf-8"))
        arts = data.get("artifacts", {})
        data["artifacts"] = {k: str(proj / v) for k, v in arts.items() if isinstance(v, str)}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise InputFileError(f"{f} is unreadable ({e})", path=f,
                             hint=f"build again with 'tinyedge build {folder}'") from None
    return data


def recorded_artifacts(folder: os.PathLike | str) -> dict[str, Path]:
    """Artifact name -> absolute path from the project's build record; {} when it was not built."""
    proj = Path(folder).expanduser().resolve()
    if not (proj / "build" / BUILD_FILE).is_file():
        return {}
    return {k: Path(v) for k, v in read_build(proj)["artifacts"].items()}
