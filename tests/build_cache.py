"""Firmware builds for the tests, cached by content so reruns skip the compiler.

`cached_build(model, board, runtime)` generates the project and builds it
once per content key (model bytes, board, runtime, and every file of
templates/, firmware/ and the Python that writes or builds projects); later
calls, in this run or the next, return the same built project.  The cache is
$TINYEDGE_TEST_CACHE/fw (default ~/.cache/tinyedge/fw).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("TINYEDGE_TEST_CACHE", Path(base) / "tinyedge")) / "fw"


@cache
def _code_hash() -> str:
    h = hashlib.sha256()
    roots = [REPO / "templates", REPO / "firmware", REPO / "tinyedge" / "aot"]
    files = [REPO / "tinyedge" / n for n in ("project.py", "builder.py", "memory.py", "boards.py", "planner.py",
                                                 "tflm_support.py", "tflm_library.py", "sources.py")]
    for r in roots:
        files += [p for p in r.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    files += sorted((REPO / "boards").glob("*.toml"))
    for p in sorted(files):
        h.update(p.relative_to(REPO).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def build_key(model: Path, board: str, runtime: str, weights: str = "auto", schedule: str = "auto") -> str:
    h = hashlib.sha256()
    h.update(Path(model).read_bytes())
    h.update(f"\0{board}\0{runtime}\0{_code_hash()}".encode())
    if weights != "auto":
        h.update(f"\0weights={weights}".encode())
    if schedule != "auto":
        h.update(f"\0schedule={schedule}".encode())
    return h.hexdigest()[:24]


def cached_build(model: Path, board: str, runtime: str = "aot", weights: str = "auto",
                 schedule: str = "auto") -> tuple[Path, dict]:
    """(project folder, tinyedge-build.json as read by tinyedge.builder.read_build)."""
    from tinyedge.builder import build_project, read_build
    from tinyedge.project import generate_project

    folder = cache_root() / f"{Path(model).stem}-{board}-{runtime}-{build_key(model, board, runtime, weights, schedule)}"
    record = folder / "build" / "tinyedge-build.json"
    folder.parent.mkdir(parents=True, exist_ok=True)
    # One builder per folder: two xdist workers (or two worktrees) asking for the same build at
    # once would otherwise remove and rebuild it under each other.
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.is_file():
            data = read_build(folder)
            if all(Path(p).exists() for p in data["artifacts"].values()):
                os.utime(folder)  # recently used: _prune keeps it
                return folder, data
        if folder.exists():
            shutil.rmtree(folder)
        _prune(keep=40)
        generate_project(model, board, runtime, folder, weights=weights, schedule=schedule)
        build_project(folder, jobs=2)
        return folder, read_build(folder)


def faulty_copy(model: Path, board: str, dest: Path, body: str, *, prelude: str = "",
                drop_define: str | None = None) -> Path:
    """A copy of `model`'s cached aot build for `board` at `dest` whose te_runtime_invoke runs the C
    `body` first (`prelude` goes before the function), rebuilt (only what changed); `drop_define`
    removes that macro from te_board.h (a board without its exit device, say)."""
    from tinyedge.builder import build_project

    src, _ = cached_build(model, board)
    shutil.copytree(src, dest, symlinks=True)
    rt = dest / "firmware" / "runtime" / "te_runtime_aot.c"
    text = rt.read_text()
    hook = "te_status_t te_runtime_invoke(void)\n{\n"
    assert hook in text
    rt.write_text(text.replace(hook, prelude + hook + body))
    if drop_define:
        h = dest / "src" / "te_board.h"
        lines = h.read_text().splitlines(keepends=True)
        assert any(drop_define in ln for ln in lines)
        h.write_text("".join(ln for ln in lines if drop_define not in ln))
    build_project(dest, jobs=2)
    return dest


def _prune(keep: int) -> None:
    """Drop the oldest cached builds beyond `keep` (each code change makes new keys)."""
    root = cache_root()
    if not root.is_dir():
        return
    entries = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
