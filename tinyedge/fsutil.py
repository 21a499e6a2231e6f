"""Safe file output: atomic writes and folders that are never overwritten by surprise.

Every file tinyedge writes goes to a temporary name beside its target and is
renamed into place, so a crash or Ctrl-C never leaves half a file.  A folder
that tinyedge made carries a marker file; a non-empty folder without the
marker is never written into unless the caller passes `force=True`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputExistsError, UsageError

MARKER = ".tinyedge"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: os.PathLike | str, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename.

    The file gets the mode a plain `open(path, "w")` would give it (0666 less the umask), or the
    mode of the file it replaces, not the 0600 of a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: os.PathLike | str, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: os.PathLike | str, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextmanager
def _suppress():
    try:
        yield
    except OSError:
        pass


def is_ours(folder: os.PathLike | str) -> bool:
    """True when `folder` carries tinyedge's marker file."""
    return (Path(folder) / MARKER).is_file()


def check_output_dir(folder: os.PathLike | str, *, force: bool = False) -> Path:
    """Resolve `folder` and refuse it when it is a non-empty folder tinyedge did not make.

    Returns the resolved path.  Raises OutputExistsError (exit status 2) when
    the folder would be overwritten without `force`.
    """
    path = Path(folder).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a folder", hint="choose another output path with -o")
    if path.is_dir() and any(path.iterdir()) and not is_ours(path) and not force:
        raise OutputExistsError(
            f"{path} is not empty and was not made by tinyedge",
            hint="choose another folder with -o, or pass --force to write into it",
        )
    return path


def check_output_file(path: os.PathLike | str, *, force: bool = False, source=None) -> Path:
    """Resolve `path` and refuse it when a file is already there (unless `force`), or when it is a folder,
    or the input file itself."""
    p = Path(path).expanduser().resolve()
    if p.is_dir():
        raise UsageError(f"{p} is a folder", hint="give a file name with -o")
    if source is not None and p == Path(source).expanduser().resolve():
        raise UsageError(f"{p} is the input file", hint="choose another output file with -o")
    if p.exists() and not force:
        raise OutputExistsError(f"{p} already exists",
                                hint="choose another output file with -o, or pass --force to overwrite it")
    return p


def mark_ours(folder: os.PathLike | str, what: str) -> None:
    """Put tinyedge's marker file into `folder` (which must exist)."""
    atomic_write_text(Path(folder) / MARKER, f"made by tinyedge: {what}\n")


@contextmanager
def made_dir(folder: os.PathLike | str, what: str):
    """Make (or reuse) `folder` and mark it as tinyedge's for the `with` block.

    When the block fails and the folder did not exist before it, and nothing
    but the marker was written into it, the folder is removed again: a failed
    run leaves no empty `build/<model>-<board>/` behind.
    """
    path = Path(folder).expanduser().resolve()
    made = []                                   # the folders this call creates, innermost first
    p = path
    while not p.exists():
        made.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    mark_ours(path, what)
    try:
        yield path
    except BaseException:
        if made and all(p.name == MARKER for p in path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)
            for parent in made[1:]:             # e.g. build/ when this run made it
                try:
                    parent.rmdir()
                except OSError:
                    break
        raise


@contextmanager
def staged_dir(folder: os.PathLike | str, *, force: bool = False, what: str = "output"):
    """Build a folder's contents in a temporary sibling, then swap it into place.

    Yields the staging path.  On success the old folder (if any, and only if
    allowed by `check_output_dir`) is replaced in one rename; on failure the
    staging folder is removed and the old folder is untouched.
    """
    final = check_output_dir(folder, force=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(stage, 0o777 & ~_umask())          # a folder's usual mode, not mkdtemp's 0700
    try:
        yield stage
        mark_ours(stage, what)
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
            os.replace(stage, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
