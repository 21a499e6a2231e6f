"""tinyedge: take a Keras model to a microcontroller and prove it runs there.

The library mirrors the CLI: every verb is a function here that takes objects
and returns results; it never prints.  Heavy modules (TensorFlow) load only
when a function that needs them is called.
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

# Public API name -> module that defines it.  Loaded on first use so that
# `import tinyedge` stays fast and does not import TensorFlow.
_API = {
    "TinyedgeError": "tinyedge.errors",
    "Board": "tinyedge.boards",
    "get_board": "tinyedge.boards",
    "all_boards": "tinyedge.boards",
    "load_tflite": "tinyedge.graph",
}


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'tinyedge' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
