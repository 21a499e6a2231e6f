"""Where the shipped data lives: templates, firmware sources, board files.

In a source checkout they are the top-level `templates/`, `firmware/` and
`boards/` folders; in an installed wheel they are package data under
`tinyedge/_templates`, `tinyedge/_firmware` and `tinyedge/_boards`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PKG = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """Return the folder of shipped data `name` (templates, firmware, boards)."""
    if name not in ("templates", "firmware", "boards"):
        raise ValueError(f"unknown data folder {name!r}")
    installed = _PKG / f"_{name}"
    if installed.is_dir():
        return installed
    source = _PKG.parent / name
    if source.is_dir():
        return source
    raise FileNotFoundError(f"tinyedge data folder {name!r} not found (looked in {installed} and {source})")


def templates_dir() -> Path:
    return data_dir("templates")


def firmware_dir() -> Path:
    return data_dir("firmware")


def boards_dir() -> Path:
    return data_dir("boards")
