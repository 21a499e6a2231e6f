"""Faults on the emulated Cortex-M boards: the firmware's fault handler names the fault on the
UART and stops QEMU (semihosting SYS_EXIT), and tinyedge turns it into one clear error.

A copy of the cached fc build (tests/aot_zoo.py) gets a faulting instruction or a stack-hungry
block at the top of te_runtime_invoke (tests/build_cache.faulty_copy), so only that file is
rebuilt.  Cortex-M4 (ARMv7E-M: a HardFault escalated from UsageFault, CFSR decoded) and
Cortex-M55 (ARMv8.1-M: MSPLIM turns a stack overflow into a UsageFault STKOF).
"""

from __future__ import annotations

import numpy as np
import pytest
from aot_zoo import zoo_tflite
from build_cache import faulty_copy
from conftest import require_tool

from tinyedge.boards import get_board
from tinyedge.errors import DeviceTimeout, LinkError
from tinyedge.flashers import get_flasher
from tinyedge.link import Device

pytestmark = pytest.mark.qemu

UDF = '    __asm__ volatile(".inst.n 0xde00" ::: "memory");\n'     # udf #0
STACK_HOG = ("    {\n"
             "        volatile uint8_t big[65536];\n"     # four times the board's 16 KB stack
             "        big[0] = 1;\n"
             "        big[sizeof(big) - 1] = big[0];\n"
             "    }\n")

# Recursion through a function pointer the compiler cannot see through: 2 KB a level, forever.
RECURSE = ("    {\n"
           "        volatile int seed = 1;\n"
           "        (void)te_test_recurse(&seed);\n"
           "    }\n")
RECURSE_FN = ("int te_test_recurse(volatile int *p);\n"
              "int (*volatile te_test_next)(volatile int *) = te_test_recurse;\n"
              "int te_test_recurse(volatile int *p)\n"
              "{\n"
              "    volatile int frame[512];\n"
              "    frame[0] = *p;\n"
              "    frame[511] = frame[0] + te_test_next(frame);\n"
              "    return frame[511];\n"
              "}\n\n")


@pytest.fixture(scope="module", autouse=True)
def tools():
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")


def _input(model) -> np.ndarray:
    from tinyedge.graph import load_tflite

    g = load_tflite(model)
    return np.zeros(tuple(g.tensors[g.inputs[0]].shape), np.int8)


def _fault_message(proj, board: str) -> tuple[str, object]:
    res = get_flasher("qemu").flash(proj, get_board(board))
    q = res.process
    with Device.from_flash(res, timeout=20) as d:
        with pytest.raises(LinkError) as e:
            d.infer(_input(zoo_tflite("fc")))
    q.proc.wait(timeout=10)
    return str(e.value), q


def test_undefined_instruction_on_the_m4_is_named_and_stops_qemu(tmp_path):
    proj = faulty_copy(zoo_tflite("fc"), "qemu-cortex-m4", tmp_path / "udf", UDF)
    msg, q = _fault_message(proj, "qemu-cortex-m4")
    assert "the board faulted" in msg and "HardFault (undefined instruction) at pc=0x" in msg, msg
    assert "cfsr=0x00010000" in msg, msg            # UNDEFINSTR, nothing else
    assert q.proc.returncode == 1                   # stopped by the handler's semihosting exit


def test_stack_overflow_on_the_m55_is_caught_by_msplim(tmp_path):
    proj = faulty_copy(zoo_tflite("fc"), "qemu-cortex-m55", tmp_path / "stack", STACK_HOG)
    msg, q = _fault_message(proj, "qemu-cortex-m55")
    assert "stack overflow (STKOF)" in msg and "the stack is 16384 bytes" in msg, msg
    assert "raise memory.stack_bytes in the board file" in msg, msg
    assert q.proc.returncode == 1


@pytest.mark.parametrize("frame", [65536, 2048])
def test_stack_overflow_on_the_m4_is_caught_by_the_mpu_guard(tmp_path, frame):
    # 64 KB: one frame far past the stack (the 1 MB region below RAM); 2 KB a frame at a time,
    # recursing, into the 32-byte guard at the stack's bottom.
    body, prelude = (STACK_HOG, "") if frame == 65536 else (RECURSE, RECURSE_FN)
    proj = faulty_copy(zoo_tflite("fc"), "qemu-cortex-m4", tmp_path / "stack", body, prelude=prelude)
    msg, q = _fault_message(proj, "qemu-cortex-m4")
    assert "the stack is 16384 bytes; raise memory.stack_bytes in the board file" in msg, msg
    assert q.proc.returncode == 1


def test_a_board_that_cannot_stop_names_the_fault_in_the_timeout(tmp_path):
    proj = faulty_copy(zoo_tflite("fc"), "qemu-cortex-m4", tmp_path / "spin", UDF,
                       drop_define="TE_BOARD_SEMIHOSTING_EXIT")
    res = get_flasher("qemu").flash(proj, get_board("qemu-cortex-m4"))
    with Device.from_flash(res, timeout=5, retries=0) as d:
        with pytest.raises(DeviceTimeout) as e:
            d.infer(_input(zoo_tflite("fc")))
        assert d.process.alive()      # the handler spins where a debugger finds it
    assert "faulted during inference" in str(e.value) and "undefined instruction" in str(e.value)


def test_fault_registers_are_explained_on_the_host():
    """The firmware prints the fault status registers as numbers; the host names their causes."""
    from tinyedge.link.faults import causes, explain

    assert causes(0x00000092) == ["memory fault while stacking", "memory access violation on data access"]
    assert causes(0, 0x2) == ["vector table read error"]
    line = "tinyedge fault: HardFault at pc=0x00000100 lr=0x00000201 sp=0x20003f70 cfsr=0x02000000 hfsr=0x40000000"
    assert explain(line) == line.replace("HardFault at", "HardFault (division by zero) at")
    assert "(no cause recorded)" in explain("tinyedge fault: NMI sp=0x1 cfsr=0x00000000 hfsr=0x00000000")
    riscv = "tinyedge fault: illegal instruction (mcause=2) at pc=0x00000010 mtval=0x0021202f"
    assert explain(riscv) == riscv
