"""Runtime `aot`: the int8 graph compiled ahead of time into plain C.

- `generate_model_sources(tflite, out_dir, prefix="te_model") -> AotResult`
  writes model.c / model.h (templates/aot/).
- `kernel_sources()` / `include_dirs()`: the firmware C the generated model
  needs (firmware/kernels, firmware/include).
- `tinyedge.aot.host.HostModel(tflite)`: the same C built for the host and
  run through ctypes.
"""

from __future__ import annotations

from pathlib import Path

from ..resources import firmware_dir
from .codegen import AotResult, build_context, c_comment, generate_model_sources, render

__all__ = ["AotResult", "build_context", "c_comment", "generate_model_sources", "render",
           "kernel_sources", "include_dirs", "runtime_source"]


def kernel_sources() -> list[Path]:
    """The kernel C files a generated model links against."""
    return sorted((firmware_dir() / "kernels").glob("*.c"))


def include_dirs() -> list[Path]:
    """Folders to put on the include path (te_status.h, te_runtime.h, te_kernels.h)."""
    return [firmware_dir() / "include", firmware_dir() / "kernels"]


def runtime_source() -> Path:
    """firmware/runtime/te_runtime_aot.c: te_runtime_* on top of the generated te_model_* API."""
    return firmware_dir() / "runtime" / "te_runtime_aot.c"
