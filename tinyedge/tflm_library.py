"""TensorFlow Lite Micro built once per core: the static library that tflm projects link.

A tflm Cortex-M project's `cmake/tflm.cmake` says everything that makes its
TFLM library what it is: the pinned sources, the kernels and the CMSIS-NN
folders.  Its toolchain file says the core's flags.  `library_for(project)`
builds that library once (a wrapper CMake project around the same
`tflm.cmake`, sources from `tinyedge.sources`) into
`$XDG_CACHE_HOME/tinyedge/tflm/<key>/libtflm.a`, the key a hash of those two
files (comments left out: they name the model), the source pins and the
compiler's version; later builds of any project with the same key, on the
same core, link it instead of compiling TFLM again.  A lock file keeps two
processes from building the same library at once; the library is renamed into
place, so an interrupted build leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import BuildError, ToolMissingError

log = logging.getLogger(__name__)

LIBRARY_FILE = "libtflm.a"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyedge" / "tflm"


@dataclass(frozen=True)
class TflmLibrary:
    path: Path          # the libtflm.a
    key: str
    built: bool         # True when this call compiled it (False: found in the cache)
    seconds: float = 0.0


def source_dirs() -> dict[str, Path]:
    """FetchContent name -> local tree of every pin the tflm project declares (tinyedge.sources)."""
    from .project import tflm_pins
    from .sources import source_tree

    return {p.cmake_name: source_tree(p.name) for p in tflm_pins()}


def cmake_source_args() -> list[str]:
    """-D arguments that point the project's FetchContent at local trees: nothing is fetched by CMake."""
    args = [f"-DFETCHCONTENT_SOURCE_DIR_{name.upper()}={path}" for name, path in source_dirs().items()]
    return [*args, "-DFETCHCONTENT_FULLY_DISCONNECTED=ON"]


def _code(text: str) -> str:
    """CMake text without its comment lines (the banner names the model; the library does not depend on it)."""
    return "\n".join(ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))


@cache
def _compiler_version(cxx: str) -> str:
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise ToolMissingError(cxx, "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi") from e


def library_key(tflm_cmake: Path, toolchain: Path, build_type: str = "Release") -> str:
    from .project import tflm_pins

    h = hashlib.sha256()
    h.update(_code(tflm_cmake.read_text("utf-8")).encode() + b"\0")
    h.update(_code(toolchain.read_text("utf-8")).encode() + b"\0")
    for p in tflm_pins():
        h.update(f"{p.name}={p.ref}\0".encode())
    h.update(_compiler_version("arm-none-eabi-g++").encode() + build_type.encode())
    return h.hexdigest()[:24]


def library_for(project: Path, *, jobs: int | None = None, log_path: Path | None = None) -> TflmLibrary:
    """The cached TFLM library for tflm project `project` (built now when the cache has none)."""
    import time

    project = Path(project)
    tflm_cmake = project / "cmake" / "tflm.cmake"
    toolchain = project / "cmake" / "arm-none-eabi.cmake"
    key = library_key(tflm_cmake, toolchain)
    root = cache_dir()
    lib = root / key / LIBRARY_FILE
    if lib.is_file():
        return TflmLibrary(lib, key, built=False)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building this very library
        if lib.is_file():
            return TflmLibrary(lib, key, built=False)
        t0 = time.monotonic()
        _build(project, tflm_cmake, toolchain, lib, jobs, log_path)
        return TflmLibrary(lib, key, built=True, seconds=time.monotonic() - t0)


def _build(project: Path, tflm_cmake: Path, toolchain: Path, lib: Path, jobs: int | None,
           log_path: Path | None) -> None:
    from .project import render_library_cmake

    cmake = shutil.which("cmake")
    if cmake is None:
        raise ToolMissingError("cmake", "sudo apt-get install cmake")
    log.info("building TensorFlow Lite Micro for %s (once per core; cached in %s)", project.name, lib.parent)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=lib.parent.parent))
    try:
        shutil.copyfile(tflm_cmake, work / "tflm.cmake")
        shutil.copyfile(toolchain, work / "toolchain.cmake")
        (work / "CMakeLists.txt").write_text(render_library_cmake(), "utf-8")
        build = work / "build"
        cmds = [[cmake, "-S", str(work), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 f"-DCMAKE_TOOLCHAIN_FILE={work / 'toolchain.cmake'}", *cmake_source_args()],
                [cmake, "--build", str(build), "--target", "tflm", "-j", str(jobs or os.cpu_count() or 1)]]
        out = []
        env = dict(os.environ, LC_ALL="C")
        for cmd in cmds:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=env)
            out.append("$ " + " ".join(cmd) + "\n" + p.stdout + p.stderr)
            if p.returncode != 0:
                text = "".join(out)
                if log_path is not None:
                    log_path.write_text(text, "utf-8")
                errors = [ln for ln in text.splitlines() if "error" in ln.lower()] or text.splitlines()[-1:]
                raise BuildError(f"building TensorFlow Lite Micro failed (exit {p.returncode}): "
                                 f"{errors[0].strip() if errors else 'no output'}",
                                 hint=f"the full output is in {log_path or 'the build log'}")
        staged = lib.parent.parent / f".{lib.parent.name}.tmp"
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        shutil.copyfile(build / LIBRARY_FILE, staged / LIBRARY_FILE)
        (staged / "build.log").write_text("".join(out), "utf-8")
        if lib.parent.exists():  # a stale folder with no library in it
            shutil.rmtree(lib.parent)
        os.rename(staged, lib.parent)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)


__all__ = ["TflmLibrary", "library_for", "library_key", "cmake_source_args", "source_dirs", "cache_dir"]
