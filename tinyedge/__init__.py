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
# Public name -> (module, attribute).  The verbs of the CLI are functions here
# with the same names (`tinyedge.deploy(...)` returns the report).
_API = {
    "TinyedgeError": ("tinyedge.errors", "TinyedgeError"),
    "Board": ("tinyedge.boards", "Board"),
    "get_board": ("tinyedge.boards", "get_board"),
    "all_boards": ("tinyedge.boards", "all_boards"),
    "load_tflite": ("tinyedge.graph", "load_tflite"),
    "convert": ("tinyedge.conversion", "convert"),
    "inspect": ("tinyedge.analyze", "inspect_model"),
    "generate": ("tinyedge.project", "generate_project"),
    "build": ("tinyedge.builder", "build_project"),
    "flash": ("tinyedge.flashers.dispatch", "flash_project"),
    "emulate": ("tinyedge.emulation", "emulate"),
    "Device": ("tinyedge.link", "Device"),
    "validate": ("tinyedge.validation", "validate"),
    "deploy": ("tinyedge.pipeline", "deploy"),
    "compress": ("tinyedge.compress", "compress"),
    "report": ("tinyedge.report_html", "render_report_file"),
}


def __getattr__(name: str):
    if name in _API:
        mod, attr = _API[name]
        return getattr(import_module(mod), attr)
    raise AttributeError(f"module 'tinyedge' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
