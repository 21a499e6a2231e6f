/* tinyedge firmware: RISC-V (RV32) startup, bare metal in machine mode.
 *
 * te_reset_handler (the ELF entry, first in .text): gp and sp from the linker
 * script, the trap vector, then .data copied from its load address, .bss
 * zeroed, and main.  Two locked PMP entries (locked, so they bind machine
 * mode too) make the code and constants region read/execute only and the
 * 64-byte guard at the bottom of RAM inaccessible; the linker script puts
 * the stack right above the guard and the code region right below it, so a
 * stack overflow, even by a frame larger than the guard, is a store access
 * fault instead of silently overwriting memory.
 *
 * Every trap is a fault here (no interrupt is enabled): te_trap_entry moves
 * to a stack of its own (the main stack may be what faulted), prints
 *   "tinyedge fault: <cause> (mcause=N) at pc=0x... mtval=0x..."
 * on the UART on a line of its own (after a 0x00, which ends any frame the
 * host was reading), and stops the board: TE_BOARD_EXIT_BASE (the QEMU virt
 * machine's SiFive test finisher) makes QEMU exit with status 1; without one
 * it spins where a debugger finds it.
 */
#include <stdint.h>

#include "te_board.h"
#include "te_fault.h"
#include "te_uart.h"

extern uint32_t _sidata[];   /* load address of .data */
extern uint32_t _sdata[];
extern uint32_t _edata[];
extern uint32_t _sbss[];
extern uint32_t _ebss[];
extern uint32_t _stack_guard[]; /* 64-byte guard below the stack */
extern uint32_t _estack[];
extern uint32_t __flash_start[]; /* the code and constants region: a power of two, aligned to it */
extern uint32_t __flash_size[];

int main(void);
void te_reset_handler(void);
void te_start(void);
void te_trap_entry(void);
void te_trap_report(void);

#define TE_STR2(x) #x
#define TE_STR(x) TE_STR2(x)

__attribute__((naked, section(".text.te_reset")))
void te_reset_handler(void)
{
    __asm__ volatile(
        ".option push\n\t"
        ".option norelax\n\t"
        "la gp, __global_pointer$\n\t"
        ".option pop\n\t"
        "la sp, _estack\n\t"
        "la t0, te_trap_entry\n\t"
        "csrw mtvec, t0\n\t"
        "j te_start\n\t");
}

/* The trap vector (direct mode: 4-byte aligned). */
__attribute__((naked, aligned(4)))
void te_trap_entry(void)
{
    __asm__ volatile(
        "csrw mscratch, sp\n\t"
        "la sp, te_trap_stack_top\n\t"
        "j te_trap_report\n\t");
}

/* PMP NAPOT encoding of [base, base + size), size a power of two >= 8 aligned to itself. */
static uintptr_t te_napot(uintptr_t base, uintptr_t size)
{
    return (base >> 2) | ((size >> 3) - 1u);
}

#define TE_PMP_R 0x01u
#define TE_PMP_X 0x04u
#define TE_PMP_NAPOT 0x18u
#define TE_PMP_L 0x80u

static void te_protect_memory(void)
{
    uintptr_t code = te_napot((uintptr_t)__flash_start, (uintptr_t)__flash_size);
    uintptr_t guard = te_napot((uintptr_t)_stack_guard, 64u);
    uintptr_t cfg = (TE_PMP_L | TE_PMP_NAPOT | TE_PMP_R | TE_PMP_X) | ((uintptr_t)(TE_PMP_L | TE_PMP_NAPOT) << 8);
    __asm__ volatile("csrw pmpaddr0, %0" : : "r"(code));
    __asm__ volatile("csrw pmpaddr1, %0" : : "r"(guard));
    __asm__ volatile("csrw pmpcfg0, %0" : : "r"(cfg));
}

void te_start(void)
{
    {
        const uint32_t *src = _sidata;
        uint32_t *dst = _sdata;
        while (dst < _edata) {
            *dst++ = *src++;
        }
    }
    {
        uint32_t *p = _sbss;
        while (p < _ebss) {
            *p++ = 0u;
        }
    }
    te_protect_memory();
    (void)main();
    for (;;) {
        __asm__ volatile("wfi");
    }
}

/* ------------------------------------------------------------ fault report */

__attribute__((used, aligned(16))) static uint8_t te_trap_stack[512];
__asm__(".set te_trap_stack_top, te_trap_stack + 512");

TE_FAULT_CODE static const char *te_trap_cause(uint32_t mcause)
{
    if (mcause & 0x80000000u) {
        return "unexpected interrupt";
    }
    switch (mcause) {
    case 0: return "instruction address misaligned";
    case 1: return "instruction access fault";
    case 2: return "illegal instruction";
    case 3: return "breakpoint";
    case 4: return "load address misaligned";
    case 5: return "load access fault";
    case 6: return "store address misaligned";
    case 7: return "store access fault";
    case 11: return "environment call";
    default: return "exception";
    }
}

__attribute__((noreturn, used)) TE_FAULT_CODE
void te_trap_report(void)
{
    uint32_t mcause;
    uint32_t mepc;
    uint32_t mtval;
    uintptr_t sp;
    __asm__ volatile("csrr %0, mcause" : "=r"(mcause));
    __asm__ volatile("csrr %0, mscratch" : "=r"(sp));
    __asm__ volatile("csrr %0, mepc" : "=r"(mepc));
    __asm__ volatile("csrr %0, mtval" : "=r"(mtval));
    te_fault_begin();
    te_fault_puts(te_trap_cause(mcause));
    te_fault_puts(" (mcause=");
    te_fault_dec(mcause & 0x7FFFFFFFu);
    te_fault_puts(") at pc=");
    te_fault_hex(mepc);
    te_fault_puts(" mtval=");
    te_fault_hex(mtval);
    te_fault_puts(" sp=");
    te_fault_hex((uint32_t)sp);
    if (sp < (uintptr_t)_stack_guard + 64u) {
        te_fault_puts(" (stack overflow: the stack is ");
        te_fault_dec((uint32_t)((uintptr_t)_estack - (uintptr_t)_stack_guard - 64u));
        te_fault_puts(" bytes; raise memory.stack_bytes in the board file)");
    }
    te_fault_puts("\n");
    te_fault_drain();
#if defined(TE_BOARD_EXIT_BASE)
    /* SiFive test finisher: FAIL (0x3333) with exit status 1 in the upper half. */
    *(volatile uint32_t *)(uintptr_t)TE_BOARD_EXIT_BASE = (1u << 16) | 0x3333u;
#endif
    for (;;) {
    }
}
