"""Shared fixtures.

- `shared_models`: the MLPerf Tiny models in ../shared/models/mlperf-tiny
  (skipped with a reason when absent, as in a user's clone).
- Real boards: tinyedge's own pytest plugin (tinyedge/hil, loaded through its
  `pytest11` entry point) gives the options (`--tinyedge-port URL
  --tinyedge-board ID`, `--tinyedge-inventory FILE`, ...); tests marked
  `hardware` are the plugin's `tinyedge_hardware` tests, skipped without a real board.
- `run_cli`: run the `tinyedge` CLI in-process-free (a real subprocess), so
  exit statuses and stderr are what a user sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MODELS = Path(os.environ.get("TINYEDGE_SHARED_MODELS", REPO.parent / "shared" / "models" / "mlperf-tiny"))

SHARED_SOURCES = REPO.parent / "shared" / "sources"
# Builds in the tests use the pinned upstream sources from shared/ (no network);
# a user's clone has none, and the tests that need them skip.
if "TINYEDGE_SOURCES_DIR" not in os.environ and SHARED_SOURCES.is_dir():
    os.environ["TINYEDGE_SOURCES_DIR"] = str(SHARED_SOURCES)

MLPERF_TFLITE = {
    "ad01": "ad01_int8.tflite",
    "kws": "kws_ref_model.tflite",
    "resnet": "pretrainedResnet_quant.tflite",
    "vww": "vww_96_int8.tflite",
}


def pytest_collection_modifyitems(config, items):
    # `hardware` (tinyedge's own marker) means the plugin's tinyedge_hardware: the plugin skips
    # these unless a real board was given (--tinyedge-port/--tinyedge-inventory/--tinyedge-labgrid-place).
    for item in items:
        if "hardware" in item.keywords and item.get_closest_marker("tinyedge_hardware") is None:
            item.add_marker(pytest.mark.tinyedge_hardware)


@pytest.fixture(scope="session")
def shared_models() -> Path:
    if not SHARED_MODELS.is_dir():
        pytest.skip(f"MLPerf Tiny models not found at {SHARED_MODELS} (they live in the team's shared/ folder)")
    return SHARED_MODELS


@pytest.fixture(scope="session")
def shared_sources() -> Path:
    """The folder of pinned upstream source archives (TINYEDGE_SOURCES_DIR); skips when absent."""
    value = os.environ.get("TINYEDGE_SOURCES_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip(f"upstream source archives not found (set TINYEDGE_SOURCES_DIR; the team's are in {SHARED_SOURCES})")
    return Path(value)


@pytest.fixture(scope="session")
def mlperf_tflite(shared_models) -> dict[str, Path]:
    """name -> path of each MLPerf Tiny .tflite (ad01, kws, resnet, vww)."""
    return {k: shared_models / v for k, v in MLPERF_TFLITE.items()}


def tinyedge_exe() -> list[str]:
    exe = Path(sys.executable).parent / "tinyedge"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tinyedge"]


@pytest.fixture
def run_cli():
    """Run `tinyedge ARGS...` as a subprocess; returns CompletedProcess (text)."""

    def run(*args, cwd=None, env=None, timeout=600, input=None):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        return subprocess.run(
            [*tinyedge_exe(), *map(str, args)], cwd=cwd, env=full_env, capture_output=True, text=True,
            timeout=timeout, input=input,
        )

    return run


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; `make test` installs it (Makefile: system-deps)")
    return path
