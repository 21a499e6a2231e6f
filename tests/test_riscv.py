"""qemu-riscv32: the ESP32-C3's ISA (RV32IMC + Zicsr + Zifencei) on QEMU's virt machine.

The real pipeline on a second architecture: riscv64-unknown-elf-gcc and picolibc build the aot
firmware (firmware/hal/riscv: ns16550 UART, minstret, PMP-guarded stack, the SiFive finisher),
qemu-system-riscv32 runs it with a CPU cut down to what the C3 has, and the outputs are compared
with the tflite-micro interpreter: the MLPerf Tiny models and every kernel-zoo model bit-exact,
a deploy through the CLI, and faults (an A-extension instruction the C3 lacks, a stack overflow)
reported as one clear error.  The ESP32-C3 board's own aot C is compiled here with the -march its
ESP-IDF build uses (boards/esp32c3.toml's `march`, the fact qemu-riscv32 shares).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from aot_zoo import BUILDERS, zoo_tflite
from build_cache import cached_build, faulty_copy
from conftest import require_tool, tinyedge_exe

from tinyedge.boards import get_board
from tinyedge.errors import FlashError, LinkError
from tinyedge.flashers import get_flasher
from tinyedge.link import Device
from tinyedge.validation import Reference

BOARD = "qemu-riscv32"
CC = "riscv64-unknown-elf-gcc"

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def tools():
    require_tool(CC)
    require_tool("qemu-system-riscv32")


def _inputs(model: Path, n_random: int, seed: int = 7) -> list[np.ndarray]:
    """`n_random` random int8 inputs, then all -128 and all 127 (the saturation corners)."""
    from tinyedge.graph import load_tflite

    g = load_tflite(model)
    shape = tuple(g.tensors[g.inputs[0]].shape)
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(n_random)]
    return xs + [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


def _run_on_board(proj: Path, model: Path, xs: list[np.ndarray]) -> list[int]:
    """Flash the built project on qemu-riscv32, check every output against the interpreter; the counts."""
    ref = Reference(model.read_bytes())
    res = get_flasher("qemu").flash(proj, get_board(BOARD))
    counts = []
    with Device.from_flash(res, timeout=60) as d:
        info = d.info()
        assert info.board == BOARD and info.unit == "instructions"
        for i, x in enumerate(xs):
            y, count = d.infer(x)
            want = ref.run(x).reshape(-1)
            got = np.asarray(y, np.int8).reshape(-1)
            assert np.array_equal(got, want), (
                f"{model.name} input {i}: {int(np.sum(got != want))} of {got.size} outputs differ")
            counts.append(int(count))
    return counts


# ----------------------------------------------------------------------------- the ISA fact


def test_qemu_riscv32_is_the_esp32c3s_isa():
    c3, q = get_board("esp32c3"), get_board(BOARD)
    assert c3.march == q.march == "rv32imc_zicsr_zifencei" and c3.mabi == q.mabi == "ilp32"
    # The emulated CPU has none of the extensions the C3 lacks; QEMU's rv32 has them on by default.
    props = dict(kv.split("=") for kv in q.flash.qemu_cpu.split(",")[1:])
    for ext in ("a", "f", "d", "zba", "zbb", "zbc", "zbs", "s", "h"):
        assert props.get(ext) == "false", ext


RV_GOOD = (Path(__file__).resolve().parent.parent / "boards" / "qemu-riscv32.toml").read_text().replace(
    'id = "qemu-riscv32"', 'id = "myrv"')


@pytest.mark.parametrize("mutate, key", [
    (lambda s: s.replace('march = "rv32imc_zicsr_zifencei"\n', ""), "march"),
    (lambda s: s.replace('march = "rv32imc_zicsr_zifencei"', 'march = "rv32imc -O0"'), "march"),
    (lambda s: s.replace('qemu_system = "riscv32"', 'qemu_system = "riscv128"'), "flash.qemu_system"),
    (lambda s: s.replace("exit_base = 0x00100000", 'exit_base = "finisher"'), "memory.exit_base"),
])
def test_malformed_riscv_board_names_the_key(tmp_path, mutate, key):
    from tinyedge.boards import load_board_file
    from tinyedge.errors import BoardError

    f = tmp_path / "myrv.toml"
    f.write_text(RV_GOOD)
    assert load_board_file(f).march == "rv32imc_zicsr_zifencei"
    f.write_text(mutate(RV_GOOD))
    with pytest.raises(BoardError) as e:
        load_board_file(f)
    assert e.value.key == key and str(f) in str(e.value)


def _arch_attribute(obj: Path) -> str:
    out = subprocess.run([shutil.which("riscv64-unknown-elf-readelf") or "riscv64-unknown-elf-readelf", "-A",
                          str(obj)], capture_output=True, text=True, check=True).stdout
    m = re.search(r'Tag_RISCV_arch: "([^"]+)"', out)
    assert m, out
    return m.group(1)


def _extensions(arch: str) -> set[str]:
    """rv32i2p1_m2p0_c2p0_zicsr2p0 -> {i, m, c, zicsr}"""
    base, *z = arch.split("_")
    singles = re.findall(r"([a-z])\d+p\d+", base[4:])
    return set(singles) | {re.sub(r"\d+p\d+$", "", e) for e in z}


def test_esp32c3_aot_c_compiles_for_its_isa(tools, tmp_path):
    """The C of an esp32c3 aot project (all but the ESP-IDF board layer) with the project's own C flags
    and the board's -march: warning-free, and every object is RV32IMC + Zicsr + Zifencei, nothing more."""
    from tinyedge.project import generate_project

    c3 = get_board("esp32c3")
    proj = generate_project(zoo_tflite("conv"), c3, "aot", tmp_path / "c3")
    cmake = (proj / "main" / "CMakeLists.txt").read_text()
    block = re.search(r"SRCS(.*?)INCLUDE_DIRS(.*?)(?:PRIV_REQUIRES|REQUIRES|\))", cmake, re.S)
    srcs = re.findall(r'"([^"]+)"', block.group(1))
    incs = re.findall(r'"([^"]+)"', block.group(2))
    opts = re.search(r"COMPILE_LANGUAGE:C>:([^>]+)>", cmake).group(1).split()
    assert "../model/model.c" in srcs and "-O2" in opts
    ported = [s for s in srcs if "/hal/esp32/" not in s]   # the ESP-IDF board layer needs ESP-IDF's headers
    assert len(ported) >= len(srcs) - 1
    main = proj / "main"
    objs = tmp_path / "obj"
    objs.mkdir()
    cmd = [CC, f"-march={c3.march}", f"-mabi={c3.mabi}", "--specs=picolibc.specs", *opts, "-Werror",
           *(f"-I{main / d}" for d in incs), "-c", *(str(main / s) for s in ported)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=objs)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    for src in ported:
        ext = _extensions(_arch_attribute(objs / (Path(src).stem + ".o")))
        assert {"i", "m", "c", "zicsr", "zifencei"} <= ext, (src, ext)
        assert not ext & {"a", "f", "d", "v", "zba", "zbb", "zbs"}, (src, ext)


# ----------------------------------------------------------------------------- bit-exact


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ad01", "kws", "resnet", "vww"])
def test_mlperf_bit_exact_on_qemu_riscv32(tools, mlperf_tflite, name):
    model = mlperf_tflite[name]
    proj, record = cached_build(model, BOARD)
    log = (proj / "build" / "build.log").read_text()
    assert record["warnings"] == [] and "-march=rv32imc_zicsr_zifencei" in log and "-Werror" in log
    xs = _inputs(model, 1)
    counts = _run_on_board(proj, model, [xs[0], *xs])
    # minstret under -icount is exact: the same input costs the same instructions
    assert counts[0] == counts[1] > 0, counts


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_zoo_bit_exact_on_qemu_riscv32(tools, name):
    model = zoo_tflite(name)
    proj, _ = cached_build(model, BOARD)
    _run_on_board(proj, model, _inputs(model, 20))


# ----------------------------------------------------------------------------- the CLI


@pytest.mark.slow
def test_cli_deploy_to_qemu_riscv32(tools, tmp_path, run_cli):
    model = zoo_tflite("fc")
    r = run_cli("deploy", model, "--board", BOARD, "-o", tmp_path / "out", "-n", "12", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["board"] == BOARD and rep["samples"] == 12
    assert rep["agreement"]["bit_exact_rate"] == 1.0 and rep["agreement"]["max_abs_diff"] == 0
    assert rep["latency"]["unit"] == "instructions" and rep["latency"]["median"] > 0
    assert any(k.startswith("qemu-system-riscv32") for k in rep["versions"]), rep["versions"]
    assert "riscv64-unknown-elf-gcc" in rep["versions"], rep["versions"]


# ----------------------------------------------------------------------------- faults


def _faulty_copy(tmp_path: Path, body: str, *, exit_device: bool = True) -> Path:
    """The fc build whose te_runtime_invoke runs `body` first; without `exit_device` its te_board.h
    names no exit device (a board the fault handler cannot stop)."""
    return faulty_copy(zoo_tflite("fc"), BOARD, tmp_path / "faulty", body,
                       drop_define=None if exit_device else "TE_BOARD_EXIT_BASE")


def test_c3_lacks_atomics_so_an_amo_instruction_is_a_clear_fault(tools, tmp_path):
    # amoadd.w zero, zero, (sp): the A extension, which the C3 (and this QEMU CPU) does not have.
    proj = _faulty_copy(tmp_path, '    __asm__ volatile(".word 0x0021202f" ::: "memory");\n')
    model = zoo_tflite("fc")
    res = get_flasher("qemu").flash(proj, get_board(BOARD))
    q = res.process
    with Device.from_flash(res, timeout=20) as d:
        with pytest.raises(LinkError) as e:
            d.infer(_inputs(model, 0)[0])
    msg = str(e.value)
    assert "the board faulted" in msg and "illegal instruction (mcause=2)" in msg, msg
    assert "mtval=0x0021202f" in msg, msg
    assert q.proc.returncode == 1     # the fault handler stopped QEMU through the finisher


def test_fault_on_a_board_that_cannot_stop_is_named_in_the_timeout(tools, tmp_path):
    from tinyedge.errors import DeviceTimeout

    proj = _faulty_copy(tmp_path, '    __asm__ volatile(".word 0x0021202f" ::: "memory");\n', exit_device=False)
    res = get_flasher("qemu").flash(proj, get_board(BOARD))
    with Device.from_flash(res, timeout=5, retries=0) as d:
        with pytest.raises(DeviceTimeout) as e:
            d.infer(_inputs(zoo_tflite("fc"), 0)[0])
        assert d.process.alive()      # the handler spins where a debugger finds it
    assert "faulted during inference" in str(e.value) and "illegal instruction" in str(e.value)


def test_stack_overflow_is_reported_through_the_cli(tools, tmp_path, run_cli):
    body = ("    {\n"
            "        volatile uint8_t big[32768];\n"      # twice the board's 16 KB stack
            "        big[0] = 1;\n"
            "        big[sizeof(big) - 1] = big[0];\n"
            "    }\n")
    proj = _faulty_copy(tmp_path, body)
    # started with `tinyedge flash` (it serves until Ctrl-C), then validated with `tinyedge validate`
    p = subprocess.Popen([*tinyedge_exe(), "flash", str(proj)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in p.stdout:
            m = re.search(r"socket://127\.0\.0\.1:\d+", line)
            if m:
                port = m.group(0)
                break
        assert port, "tinyedge flash printed no port"
        r = run_cli("validate", zoo_tflite("fc"), "--port", port, "-n", "1", "--timeout", "20", timeout=120)
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(timeout=20)
    assert r.returncode == 2, (r.stdout, r.stderr)
    err = r.stderr.strip().splitlines()
    assert err[0].startswith("error:") and "faulted" in err[0] and "stack overflow" in err[0], r.stderr
    assert "Traceback" not in r.stderr


def test_fault_before_the_announcement_is_a_flash_error(tools, tmp_path):
    from tinyedge.builder import build_project

    src, _ = cached_build(zoo_tflite("fc"), BOARD)
    proj = tmp_path / "early"
    shutil.copytree(src, proj, symlinks=True)
    main = proj / "src" / "main.c"
    text = main.read_text()
    main.write_text(text.replace("    te_hal_init();\n",
                                 '    te_hal_init();\n    __asm__ volatile(".word 0x00000000");\n'))
    build_project(proj, jobs=2)
    with pytest.raises(FlashError) as e:
        get_flasher("qemu").flash(proj, get_board(BOARD))
    assert "faulted before it announced itself" in str(e.value)
    assert "illegal instruction" in str(e.value)
