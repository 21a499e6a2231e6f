"""Terminal output for the CLI only; library code never prints.

Human-readable text goes to stderr through rich so that stdout stays clean
for `--json`.
"""

from __future__ import annotations

import json
import sys

from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def emit_json(obj) -> None:
    """Print `obj` as JSON on stdout (the only thing on stdout with --json)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def _default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if hasattr(o, "__fspath__"):
        return str(o)
    raise TypeError(f"cannot serialise {type(o).__name__}")


def warn(message: str) -> None:
    err.print(f"[bold yellow]warning:[/] {message}")


def info(message: str) -> None:
    err.print(message)
