"""MicroPython built from source, once, cached: mpy-cross, the unix port, the QEMU port.

The source tree is the user's checkout (`--micropython-dir DIR` or `MPY_DIR`)
or the pinned release through `tinyedge.sources.source_tree("micropython")`
(TINYEDGE_SOURCES_DIR archive, cache, or upstream download).  Each build goes
to `~/.cache/tinyedge/micropython/<what>-<key>/`, keyed by the tree's identity
and every flag, built in a temporary folder and renamed into place under a
file lock, so parallel test workers build it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import BuildError, ToolMissingError, UsageError

log = logging.getLogger(__name__)

ENV_VAR = "MPY_DIR"

# Flags of the builds (also part of the cache key).
UNIX_FLAGS = ("VARIANT=standard", "FROZEN_MANIFEST=", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0",
              "MICROPY_PY_SSL=0")
# The QEMU port with a FAT filesystem driver (a board's flash filesystem is mounted on a RAM
# block device at boot by tinyedge) and a bigger heap: mps2 boards have 4 MB of RAM.
QEMU_HEAP_BYTES = 2621440
QEMU_FLAGS = (
    "FROZEN_MANIFEST=", "MICROPY_VFS_FAT=1",
    "CFLAGS_EXTRA=-DMICROPY_FATFS_NORTC=1 -DMICROPY_FATFS_ENABLE_LFN=1 -DMICROPY_FATFS_RPATH=2 "
    "-DMICROPY_FATFS_LFN_CODE_PAGE=437",
    # the boards' own objects plus the time helpers the FAT driver needs
    "SRC_BOARD_O=shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o shared/timeutils/timeutils.o",
    f"MICROPY_HEAP_SIZE={QEMU_HEAP_BYTES}",
)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyedge" / "micropython"


def micropython_tree(mpy_dir: os.PathLike | str | None = None) -> Path:
    """The MicroPython source tree: `mpy_dir`, else $MPY_DIR, else the pinned release."""
    d = mpy_dir or os.environ.get(ENV_VAR)
    if d:
        p = Path(d).expanduser().resolve()
        if not (p / "py" / "dynruntime.mk").is_file() or not (p / "mpy-cross").is_dir():
            raise UsageError(f"{p} is not a MicroPython source tree (no py/dynruntime.mk)",
                             hint="pass the top folder of a MicroPython checkout as --micropython-dir or MPY_DIR")
        return p
    from ..sources import source_tree

    return source_tree("micropython")


def tree_version(tree: Path) -> str:
    """MicroPython's version as its py/mpconfig.h says, e.g. 1.28.0."""
    vals = {}
    for line in (tree / "py" / "mpconfig.h").read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define" and parts[1] in (
                "MICROPY_VERSION_MAJOR", "MICROPY_VERSION_MINOR", "MICROPY_VERSION_MICRO"):
            vals[parts[1]] = parts[2]
    return ".".join(vals.get(f"MICROPY_VERSION_{k}", "?") for k in ("MAJOR", "MINOR", "MICRO"))


def tree_key(tree: Path) -> str:
    """What identifies the tree's content: its path, version and git commit (when a checkout)."""
    h = hashlib.sha256(str(tree).encode())
    h.update(tree_version(tree).encode())
    head = tree / ".git" / "HEAD"
    if head.exists():
        try:
            r = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True,
                               timeout=20)
            h.update(r.stdout.encode())
            r = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "-uno"], capture_output=True,
                               text=True, timeout=20)
            h.update(r.stdout.encode())
        except (OSError, subprocess.SubprocessError):
            pass
    return h.hexdigest()[:16]


def _jobs() -> str:
    return f"-j{min(2, os.cpu_count() or 1)}"


def _cached_build(what: str, tree: Path, flags: tuple[str, ...], subdir: str, product: str,
                  extra_make: tuple[str, ...] = ()) -> Path:
    """Run `make -C tree/subdir BUILD=<tmp> flags` once per key; return the product's path."""
    if shutil.which("make") is None:
        raise ToolMissingError("make", "sudo apt-get install make")
    key = hashlib.sha256("\0".join((what, tree_key(tree), subdir, *flags, *extra_make)).encode()).hexdigest()[:16]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{what}-{tree_version(tree)}-{key}"
    if (final / product).is_file():
        return final / product
    with open(root / f".{what}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / product).is_file():
            return final / product
        tmp = Path(tempfile.mkdtemp(prefix=f".{what}-", dir=root))
        cmd = ["make", "-C", str(tree / subdir), _jobs(), f"BUILD={tmp}", *flags, *extra_make]
        log.info("building %s: %s", what, " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not (tmp / product).is_file():
            (root / f"{what}-build.log").write_text(r.stdout + r.stderr)
            shutil.rmtree(tmp, ignore_errors=True)
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise BuildError(f"building MicroPython's {what} failed: {' / '.join(tail)}",
                             hint=f"see {root / f'{what}-build.log'}")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    return final / product


def mpy_cross(tree: Path | None = None) -> Path:
    """mpy-cross built from `tree` (so its .mpy version is the tree's)."""
    tree = tree or micropython_tree()
    return _cached_build("mpy-cross", tree, (), "mpy-cross", "mpy-cross")


def unix_port(tree: Path | None = None) -> Path:
    """The unix port's `micropython` executable (x64 natmods and viper)."""
    tree = tree or micropython_tree()
    return _cached_build("unix", tree, UNIX_FLAGS, "ports/unix", "micropython")


def qemu_port(board: str = "MPS2_AN385", tree: Path | None = None) -> Path:
    """The QEMU port's firmware.elf for `board` (MPS2_AN385: Cortex-M3, MPS2_AN500: Cortex-M7)."""
    tree = tree or micropython_tree()
    if not (tree / "ports" / "qemu" / "boards" / board).is_dir():
        raise UsageError(f"MicroPython's QEMU port has no board {board!r}",
                         hint="see ports/qemu/boards in the MicroPython tree")
    if shutil.which("arm-none-eabi-gcc") is None:
        raise ToolMissingError("arm-none-eabi-gcc", "sudo apt-get install gcc-arm-none-eabi")
    return _cached_build(f"qemu-{board}", tree, (f"BOARD={board}", *QEMU_FLAGS), "ports/qemu", "firmware.elf")
