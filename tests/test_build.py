"""`tinyedge build`: firmware for every MLPerf Tiny model, memory report vs arm-none-eabi-size,
boards that do not fit, missing toolchains, and the real boards' HALs compiled."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import pytest
from build_cache import cached_build
from conftest import require_tool

from tinyedge.boards import get_board
from tinyedge.errors import BuildError
from tinyedge.memory import check_fits, memory_report

MODELS = ["ad01", "kws", "resnet", "vww"]
REAL_CORTEX_M = ["nucleo-l4r5zi", "stm32f746g-disco", "nrf52840dk", "rpi-pico"]


def berkeley_size(elf: Path) -> dict[str, int]:
    out = subprocess.run([require_tool("arm-none-eabi-size"), "-B", str(elf)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


@pytest.fixture(scope="module", params=MODELS)
def mlperf_build(request, mlperf_tflite):
    require_tool("arm-none-eabi-gcc")
    name = request.param
    folder, record = cached_build(mlperf_tflite[name], "qemu-cortex-m4", "aot")
    return name, folder, record


@pytest.mark.slow
def test_mlperf_aot_build_matches_size(mlperf_build):
    name, folder, record = mlperf_build
    elf = Path(record["artifacts"]["elf"])
    assert elf.is_file() and Path(record["artifacts"]["bin"]).is_file()
    # zero compiler warnings (and -Werror is on, so none can hide)
    log = (folder / "build" / "build.log").read_text()
    assert record["warnings"] == [] and "warning:" not in log.lower()
    assert "-Werror" in log and "-Wextra" in log
    # the memory report agrees with arm-none-eabi-size on the same ELF
    m = memory_report(elf, get_board("qemu-cortex-m4"))
    size = berkeley_size(elf)
    assert m.text + m.rodata == size["text"], (name, m, size)
    assert m.data == size["data"]
    assert m.bss + m.stack + m.heap == size["bss"]
    assert m.flash_bytes == size["text"] + size["data"]
    assert m.ram_bytes == size["data"] + size["bss"]
    assert m.stack == get_board("qemu-cortex-m4").memory.stack_bytes
    # the arena is the generated model's, and it sits inside RAM's bss
    assert m.arena_symbol == "te_model_arena" and 0 < m.arena_bytes <= m.bss
    assert m.fits and record["memory"]["flash_bytes"] == m.flash_bytes and record["memory"]["ram_bytes"] == m.ram_bytes


def test_check_fits_names_the_numbers(tmp_path):
    m = dataclasses.replace(
        memory_report_fixture(), flash_limit=1000, ram_limit=100)
    with pytest.raises(BuildError) as e:
        check_fits(m, "tiny-board")
    msg = str(e.value)
    assert "does not fit" in msg and f"{m.flash_bytes:,}" in msg and "1,000" in msg and f"{m.ram_bytes:,}" in msg


def memory_report_fixture():
    from tinyedge.memory import MemoryReport

    return MemoryReport(elf="x.elf", text=5000, rodata=700, data=20, bss=300, stack=1024, heap=0, arena_bytes=200,
                        arena_symbol="te_model_arena", flash_limit=None, ram_limit=None)


BOARD_TEMPLATE = (Path(__file__).resolve().parent.parent / "boards" / "qemu-cortex-m4.toml").read_text()


@pytest.mark.slow
def test_build_that_does_not_fit_is_an_error_with_numbers(tmp_path, mlperf_tflite, run_cli):
    require_tool("arm-none-eabi-gcc")
    boards = tmp_path / "boards"
    boards.mkdir()
    text = BOARD_TEMPLATE.replace('id = "qemu-cortex-m4"', 'id = "tiny-m4"')
    text = re.sub(r"ram_bytes = \d+", "ram_bytes = 24576", text)
    (boards / "tiny-m4.toml").write_text(text)
    proj = tmp_path / "proj"
    env = {"TINYEDGE_BOARDS_DIR": str(boards)}
    r = run_cli("generate", mlperf_tflite["kws"], "--board", "tiny-m4", "-o", proj, env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("build", proj, env=env)
    assert r.returncode == 2
    line = r.stderr.strip()
    assert line.startswith("error: the firmware does not fit") and "RAM" in line
    assert re.search(r"overflowed by [\d,]+ bytes", line), line
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (proj / "tinyedge-project.json").is_file()  # the project stays


@pytest.mark.slow
def test_missing_arm_toolchain_says_how_to_get_it(tmp_path, mlperf_tflite, run_cli):
    import shutil

    proj = tmp_path / "proj"
    assert run_cli("generate", mlperf_tflite["kws"], "--board", "qemu-cortex-m4", "-o", proj).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("make"), bin_dir / "make")
    r = run_cli("build", proj, env={"PATH": str(bin_dir)})
    assert r.returncode == 2
    assert "arm-none-eabi-gcc is not installed" in r.stderr and "apt-get install gcc-arm-none-eabi" in r.stderr
    assert (proj / "Makefile").is_file() and not (proj / "build" / "firmware.elf").exists()


@pytest.mark.parametrize("board", ["esp32", "esp32c3"])
def test_esp_idf_build_without_idf_py(tmp_path, mlperf_tflite, run_cli, board):
    proj = tmp_path / board
    assert run_cli("generate", mlperf_tflite["kws"], "--board", board, "-o", proj).returncode == 0
    env = {"PATH": os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                   if not (Path(p) / "idf.py").exists())}
    r = run_cli("build", proj, env=env)
    assert r.returncode == 2
    assert r.stderr.startswith("error: idf.py is not installed") and "ESP-IDF" in r.stderr
    assert "export.sh" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (proj / "main" / "CMakeLists.txt").is_file() and (proj / "sdkconfig.defaults").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("board", [*REAL_CORTEX_M, "qemu-cortex-m3", "qemu-cortex-m7", "qemu-cortex-m55"])
def test_aot_firmware_compiles_for_every_cortex_m_board(mlperf_tflite, board):
    """The real boards' HALs (UART drivers, DWT/SysTick counters) build warning-free; they cannot run here."""
    require_tool("arm-none-eabi-gcc")
    folder, record = cached_build(mlperf_tflite["kws"], board, "aot")
    assert record["warnings"] == []
    b = get_board(board)
    m = memory_report(record["artifacts"]["elf"], b)
    assert m.fits and m.arena_symbol == "te_model_arena"
    syms = subprocess.run([require_tool("arm-none-eabi-nm"), record["artifacts"]["elf"]], capture_output=True,
                          text=True, check=True).stdout
    for sym in ("te_uart_init", "te_hal_counter", "te_app_run", "te_vectors", "te_systick_handler"):
        assert f" {sym}" in syms, (board, sym)
    # the vector table starts the flash image: initial SP at the stack top in RAM, reset handler in flash
    from elftools.elf.elffile import ELFFile

    with open(record["artifacts"]["elf"], "rb") as f:
        ef = ELFFile(f)
        vec = ef.get_section_by_name(".vectors")
        boot2 = 256 if board == "rpi-pico" else 0  # the RP2040's second-stage boot comes first
        assert vec["sh_addr"] == b.memory.flash_origin + boot2
        sp, reset = (int.from_bytes(vec.data()[i:i + 4], "little") for i in (0, 4))
    assert b.memory.ram_origin < sp <= b.memory.ram_origin + b.ram_bytes
    assert b.memory.flash_origin <= reset < b.memory.flash_origin + b.flash_bytes and reset & 1


def test_build_of_a_folder_that_is_not_a_project(tmp_path, run_cli):
    r = run_cli("build", tmp_path)
    assert r.returncode == 2 and "is not a tinyedge project" in r.stderr


def test_compile_error_is_one_line_naming_the_file(tmp_path, mlperf_tflite, run_cli):
    require_tool("arm-none-eabi-gcc")
    proj = tmp_path / "proj"
    assert run_cli("generate", mlperf_tflite["kws"], "-b", "qemu-cortex-m3", "-o", proj).returncode == 0
    main = proj / "src" / "main.c"
    main.write_text(main.read_text() + "\nint te_unused_variable_here(void) { int x; return 0; }\n")
    r = run_cli("build", proj)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "error: make failed" in r.stderr and "src/main.c" in r.stderr and "unused" in r.stderr
    assert (proj / "build" / "build.log").is_file()


@pytest.mark.parametrize("board", ["esp32s3"])
def test_esp_idf_build_runs_idf_py_and_records_artifacts(tmp_path, mlperf_tflite, monkeypatch, board):
    """Against a FAKE idf.py (tests/fake_idf_py.py): the commands, the artifact record, the memory report."""
    import json
    import sys

    from tinyedge.builder import build_project, read_build
    from tinyedge.project import generate_project

    require_tool("arm-none-eabi-gcc")
    _, arm = cached_build(mlperf_tflite["kws"], "qemu-cortex-m4", "aot")  # any real ELF stands in
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "idf.py"
    fake.write_text(f"#!{sys.executable}\n" + (Path(__file__).parent / "fake_idf_py.py").read_text())
    fake.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_IDF_LOG", str(calls))
    monkeypatch.setenv("FAKE_IDF_ELF", arm["artifacts"]["elf"])
    proj = generate_project(mlperf_tflite["kws"], board, "tflm", tmp_path / "proj")
    r = build_project(proj)
    argv = [json.loads(line)["argv"] for line in calls.read_text().splitlines()]
    assert argv == [["set-target", board], ["build"]]
    rec = read_build(proj)
    for key in ("elf", "bin", "bootloader", "partition_table", "flasher_args"):
        assert Path(rec["artifacts"][key]).is_file(), key
    assert r.memory is not None and r.memory.ram_limit == get_board(board).ram_bytes
    build_project(proj)  # sdkconfig exists now: no second set-target
    argv = [json.loads(line)["argv"] for line in calls.read_text().splitlines()]
    assert argv[2:] == [["build"]]
    monkeypatch.setenv("FAKE_IDF_FAIL", "1")
    with pytest.raises(BuildError, match="idf.py build failed .*main.c:3:1: error: fake failure"):
        build_project(proj)


@pytest.mark.slow
def test_tflm_cortex_m_cmake_configures_and_compiles_its_own_sources(tmp_path, mlperf_tflite, shared_sources):
    """The tflm project's CMake, with FetchContent pointed at the local pinned trees (no network):
    it configures, and every source of tinyedge's own compiles with -Werror.  (tests/test_tflm_qemu.py
    builds and runs it whole.)"""
    from tinyedge.project import generate_project
    from tinyedge.tflm_library import cmake_source_args

    cmake = require_tool("cmake")
    require_tool("arm-none-eabi-g++")
    proj = generate_project(mlperf_tflite["kws"], "qemu-cortex-m7", "tflm", tmp_path / "proj")
    build = proj / "build"
    r = subprocess.run([cmake, "-S", str(proj), "-B", str(build), "-Wno-dev",
                        f"-DCMAKE_TOOLCHAIN_FILE={proj / 'cmake/arm-none-eabi.cmake'}", *cmake_source_args()],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    objs = ["src/main.c.obj", "src/model_data.cc.obj", "firmware/app/te_app.c.obj", "firmware/proto/te_proto.c.obj",
            "firmware/hal/cortex-m/startup.c.obj", "firmware/hal/cortex-m/te_hal_cortexm.c.obj",
            "firmware/hal/cortex-m/uart_cmsdk.c.obj"]
    r = subprocess.run(["make", "-C", str(build), "VERBOSE=1", *objs], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning:" not in (r.stdout + r.stderr)
    assert "-Werror" in r.stdout and "-mcpu=cortex-m7" in r.stdout


@pytest.mark.slow
def test_rp2040_image_leads_with_a_checked_boot2(mlperf_tflite):
    """rpi-pico: 256 bytes of second-stage boot at 0x10000000 with the CRC the boot ROM checks,
    then the vector table at 0x10000100."""
    import importlib.util

    from elftools.elf.elffile import ELFFile

    require_tool("arm-none-eabi-gcc")
    folder, record = cached_build(mlperf_tflite["kws"], "rpi-pico", "aot")
    spec = importlib.util.spec_from_file_location("boot2_crc", folder / "tools" / "rp2040_boot2_crc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value
    with open(record["artifacts"]["elf"], "rb") as f:
        ef = ELFFile(f)
        boot2 = ef.get_section_by_name(".boot2")
        vec = ef.get_section_by_name(".vectors")
        assert boot2["sh_addr"] == 0x10000000 and boot2["sh_size"] == 256
        assert vec["sh_addr"] == 0x10000100
        data = boot2.data()
    assert int.from_bytes(data[252:], "little") == mod.crc32_mpeg2(data[:252])
    assert data[:4] != bytes(4)  # code, not padding
    # the .bin starts with the same 256 bytes
    assert Path(record["artifacts"]["bin"]).read_bytes()[:256] == data
    # other boards carry no boot2
    _, other = cached_build(mlperf_tflite["kws"], "nrf52840dk", "aot")
    with open(other["artifacts"]["elf"], "rb") as f:
        assert ELFFile(f).get_section_by_name(".boot2") is None
