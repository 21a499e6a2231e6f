"""The foundation: CLI rules, the board registry, package data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyedge.boards import DEFAULT_BOARD, all_boards, load_board_file, set_user_boards_dir
from tinyedge.errors import BoardError

REPO = Path(__file__).resolve().parent.parent
REQUIRED_BOARDS = {
    "qemu-cortex-m3", "qemu-cortex-m4", "qemu-cortex-m7", "qemu-cortex-m55", "esp32", "esp32s3",
    "esp32c3", "nucleo-l4r5zi", "stm32f746g-disco", "nrf52840dk", "rpi-pico",
}
QEMU_MACHINES = {"qemu-cortex-m3": "mps2-an385", "qemu-cortex-m4": "mps2-an386",
                 "qemu-cortex-m7": "mps2-an500", "qemu-cortex-m55": "mps3-an547"}


def test_version_and_help(run_cli):
    r = run_cli("--version")
    assert r.returncode == 0 and "tinyedge" in r.stdout and "0." in r.stdout
    r = run_cli("--help")
    assert r.returncode == 0 and "boards" in r.stdout


def test_every_verb_has_help(run_cli):
    r = run_cli("--help")
    verbs = [line.split()[0] for line in r.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert "boards" in verbs
    for verb in verbs:
        h = run_cli(verb, "--help")
        assert h.returncode == 0, (verb, h.stderr)
        assert "Usage:" in h.stdout


def test_boards_json_lists_required_boards(run_cli):
    r = run_cli("boards", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["default"] == "qemu-cortex-m4" == DEFAULT_BOARD
    by_id = {b["id"]: b for b in data["boards"]}
    assert REQUIRED_BOARDS <= set(by_id)
    for bid, b in by_id.items():
        for key in ("name", "family", "cpu", "cflags", "clock_hz", "flash_bytes", "ram_bytes", "uart",
                    "flash", "cycle_counter", "cycle_unit", "runtimes"):
            assert key in b, (bid, key)
        assert b["flash_bytes"] > 0 and b["ram_bytes"] > 0 and b["clock_hz"] > 0
    for bid, machine in QEMU_MACHINES.items():
        assert by_id[bid]["flash"]["method"] == "qemu"
        assert by_id[bid]["flash"]["qemu_machine"] == machine
        assert by_id[bid]["cycle_unit"] == "instructions"
    for bid in ("esp32", "esp32s3", "esp32c3"):
        assert by_id[bid]["family"] == "esp32"
        assert by_id[bid]["flash"]["esptool_chip"] == bid
        assert by_id[bid]["cycle_unit"] == "cycles"
    assert by_id["nucleo-l4r5zi"]["cycle_counter"] == "dwt"
    assert by_id["rpi-pico"]["flash"]["method"] == "uf2"


def test_board_table_renders(run_cli):
    r = run_cli("boards")
    assert r.returncode == 0
    assert "qemu-cortex-m4" in r.stdout


def _write_board(folder: Path, text: str, name: str = "myboard") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / f"{name}.toml"
    p.write_text(text)
    return p


GOOD = (REPO / "boards" / "qemu-cortex-m4.toml").read_text().replace('id = "qemu-cortex-m4"', 'id = "myboard"')


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda s: s.replace("clock_hz = 25000000", "clock_hz = 25000000\nturbo = true"), "turbo"),
        (lambda s: s.replace("clock_hz = 25000000\n", ""), "clock_hz"),
        (lambda s: s.replace("clock_hz = 25000000", 'clock_hz = "fast"'), "clock_hz"),
        (lambda s: s.replace('driver = "cmsdk"', 'driver = "bitbang"'), "uart.driver"),
        (lambda s: s.replace('baud = 115200', 'baud = 115200\nparity = "odd"'), "uart.parity"),
        (lambda s: s.replace('qemu_machine = "mps2-an386"', ''), "flash.qemu_machine"),
        (lambda s: s.replace('runtimes = ["aot", "tflm"]', 'runtimes = ["aot", "tvm"]'), "runtimes"),
        (lambda s: s.replace('emulated = true', 'emulated = "yes"'), "emulated"),
    ],
)
def test_malformed_board_names_file_and_key(tmp_path, mutate, key):
    p = _write_board(tmp_path, mutate(GOOD))
    with pytest.raises(BoardError) as e:
        load_board_file(p)
    assert e.value.key == key
    assert str(p) in str(e.value) and f"'{key}'" in str(e.value)


def test_malformed_board_cli_one_line(run_cli, tmp_path):
    _write_board(tmp_path, GOOD.replace("clock_hz = 25000000", "clock_hz = 25000000\nturbo = 1"))
    r = run_cli("--boards-dir", tmp_path, "boards")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "myboard.toml" in lines[0] and "turbo" in lines[0]
    assert "Traceback" not in r.stderr


def test_invalid_toml_is_user_error(run_cli, tmp_path):
    _write_board(tmp_path, "id = [unclosed")
    r = run_cli("--boards-dir", tmp_path, "boards")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "not valid TOML" in r.stderr


def test_user_boards_dir_and_env(run_cli, tmp_path):
    _write_board(tmp_path, GOOD.replace('name = "', 'name = "My '))
    r = run_cli("--boards-dir", tmp_path, "boards", "--json")
    assert r.returncode == 0, r.stderr
    ids = {b["id"] for b in json.loads(r.stdout)["boards"]}
    assert "myboard" in ids and REQUIRED_BOARDS <= ids
    r = run_cli("boards", "--json", env={"TINYEDGE_BOARDS_DIR": str(tmp_path)})
    assert "myboard" in {b["id"] for b in json.loads(r.stdout)["boards"]}
    # library API too
    set_user_boards_dir(tmp_path)
    try:
        assert "myboard" in all_boards()
    finally:
        set_user_boards_dir(None)


def test_missing_boards_dir(run_cli, tmp_path):
    r = run_cli("--boards-dir", tmp_path / "nope", "boards")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_unknown_option_and_verb_exit_2(run_cli):
    for args in (("boards", "--bogus"), ("frobnicate",)):
        r = run_cli(*args)
        assert r.returncode == 2
        assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def test_board_files_sorted_unique_ids():
    files = sorted((REPO / "boards").glob("*.toml"))
    ids = [load_board_file(f).id for f in files]
    assert len(ids) == len(set(ids))


@pytest.mark.slow
def test_pip_install_outside_repo_finds_data(tmp_path):
    """`pip install .` (not -e) gives a tinyedge whose boards, templates and firmware are package data."""
    target = tmp_path / "site"
    # Build from a copy of the tracked sources so that setuptools' build/ folder is not left in the repo.
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md", "tinyedge", "templates", "firmware", "boards"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(REPO / name, src / name)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert (target / "tinyedge" / "_boards" / "qemu-cortex-m4.toml").is_file()
    env = dict(os.environ, PYTHONPATH=str(target))
    code = (
        "import tinyedge, tinyedge.resources as r, json;"
        "print(json.dumps([str(tinyedge.__file__), str(r.templates_dir()), str(r.firmware_dir()),"
        " str(r.boards_dir())]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    pkg, tpl, fw, boards = json.loads(out.stdout)
    assert pkg.startswith(str(target))
    for d in (tpl, fw, boards):
        assert d.startswith(str(target)), d
    assert any(Path(tpl).iterdir()) and any(Path(fw).iterdir())
    r = subprocess.run([sys.executable, "-m", "tinyedge", "boards", "--json"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert REQUIRED_BOARDS <= {b["id"] for b in json.loads(r.stdout)["boards"]}


def test_python_api_mirrors_the_cli():
    import tinyedge

    verbs = ("convert", "inspect", "generate", "build", "flash", "emulate", "validate", "deploy")
    for verb in verbs:
        assert callable(getattr(tinyedge, verb)), verb
    # importing every module must not shadow the functions
    import tinyedge.builder  # noqa: F401
    import tinyedge.conversion  # noqa: F401
    import tinyedge.emulation  # noqa: F401
    import tinyedge.pipeline  # noqa: F401
    import tinyedge.validation  # noqa: F401

    for verb in verbs:
        assert callable(getattr(tinyedge, verb)) and not isinstance(getattr(tinyedge, verb), type(tinyedge)), verb

    assert callable(tinyedge.deploy) and tinyedge.deploy.__name__ == "deploy"
    assert tinyedge.validate.__name__ == "validate"
