/* tinyedge firmware: Cortex-M startup (bare metal, no vendor headers).
 *
 * The vector table, the reset handler (FPU on, .data copied from flash,
 * .bss zeroed, then main) and the fault handler.  The symbols it uses come
 * from the generated linker script (linker.ld).
 *
 * Every fault and unexpected exception goes to te_fault_entry, which moves to
 * a stack of its own (the main stack may be what faulted), prints
 *   "tinyedge fault: <exception> at pc=0x... lr=0x... sp=0x... cfsr=0x... hfsr=0x..."
 * on the UART on a line of its own (te_fault.h; the host names the causes the
 * fault status registers record, tinyedge.link.faults, so their words cost no
 * flash here), and stops the board: on an
 * emulator (TE_BOARD_SEMIHOSTING_EXIT) a semihosting SYS_EXIT makes QEMU exit
 * with status 1; on a real board it spins where a debugger finds it.
 *
 * The stack sits at the bottom of RAM (linker.ld), and an overflow is made a
 * fault instead of a write below it: on ARMv8-M mainline (Cortex-M33, M55)
 * MSPLIM is set to the bottom of the stack (a UsageFault, STKOF); on ARMv7-M
 * (M3, M4, M7) with an MPU, two no-access regions, the stack's lowest 32 bytes
 * and the 1 MB below RAM when the stack starts on a 1 MB boundary, catch
 * both a slow overflow and one large frame (a MemManage fault).  Below RAM is
 * ROM or nothing on most parts; on QEMU's MPS2 it is unimplemented space that
 * ignores writes, so without the MPU an overflow there went unnoticed.
 */
#include <stdint.h>
#include <string.h>

#include "te_board.h"
#include "te_fault.h"

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
    defined(__ARM_ARCH_8_1M_MAIN__)
#define TE_FAULT_HAS_CFSR 1   /* ARMv6-M and ARMv8-M baseline have no fault status registers */
#endif
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define TE_FAULT_HAS_MSPLIM 1
#elif defined(TE_FAULT_HAS_CFSR)
#define TE_FAULT_MPU_GUARD 1       /* PMSAv7 */
#endif

#define TE_GUARD_BYTES 32u
#define TE_BELOW_RAM_BYTES 0x100000u

extern uint32_t _sidata[];   /* load address of .data in flash */
extern uint32_t _sdata[];
extern uint32_t _edata[];
extern uint32_t _sbss[];
extern uint32_t _ebss[];
extern uint32_t _sstack[];   /* bottom of the stack */
extern uint32_t _estack[];   /* top of the stack (initial SP) */

int main(void);
void te_reset_handler(void);
void te_fault_entry(void);
void te_fault_report(const uint32_t *frame);
void te_systick_handler(void);   /* te_hal_cortexm.c */

#if defined(TE_FAULT_MPU_GUARD)
TE_FAULT_CODE static void te_stack_guard(void)
{
    volatile uint32_t *const mpu_type = (volatile uint32_t *)0xE000ED90u;
    volatile uint32_t *const mpu_ctrl = (volatile uint32_t *)0xE000ED94u;
    volatile uint32_t *const mpu_rnr = (volatile uint32_t *)0xE000ED98u;
    volatile uint32_t *const mpu_rbar = (volatile uint32_t *)0xE000ED9Cu;
    volatile uint32_t *const mpu_rasr = (volatile uint32_t *)0xE000EDA0u;
    const uint32_t no_access = (1u << 28) | 1u;   /* XN, AP = 000, enabled */
    const uint32_t bottom = (uint32_t)(uintptr_t)_sstack;
    if (((*mpu_type >> 8) & 0xFFu) < 2u) {
        return;                                   /* no MPU */
    }
    *mpu_rnr = 0u;
    *mpu_rbar = bottom;                           /* 32-byte aligned (linker.ld) */
    *mpu_rasr = no_access | (4u << 1);            /* 2^(4+1) = 32 bytes */
    if ((bottom & (TE_BELOW_RAM_BYTES - 1u)) == 0u && bottom >= TE_BELOW_RAM_BYTES) {
        *mpu_rnr = 1u;
        *mpu_rbar = bottom - TE_BELOW_RAM_BYTES;
        *mpu_rasr = no_access | (19u << 1);       /* 1 MB */
    }
    *mpu_ctrl = (1u << 2) | 1u;                   /* PRIVDEFENA: the rest keeps the default map */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}
#endif

void te_reset_handler(void)
{
#if defined(TE_FAULT_HAS_MSPLIM)
    __asm__ volatile("msr msplim, %0" : : "r"((uint32_t)(uintptr_t)_sstack));
#elif defined(TE_FAULT_MPU_GUARD)
    te_stack_guard();
#endif
#if defined(__ARM_FP)
    /* CPACR: full access to CP10 and CP11 before any floating-point code. */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
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
    (void)main();
    for (;;) {
        __asm__ volatile("wfi");
    }
}

/* ------------------------------------------------------------ fault report */

__attribute__((used, aligned(8))) static uint32_t te_fault_stack[128];

/* r0 = the stacked frame, i.e. the faulting SP (MSP or PSP, from EXC_RETURN bit 2); then the
 * fault stack, with MSPLIM cleared first (after a stack overflow it still binds). */
__attribute__((naked))
void te_fault_entry(void)
{
    __asm__ volatile(
        "mov r1, lr\n\t"
        "mrs r0, msp\n\t"
        "movs r2, #4\n\t"
        "tst r1, r2\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n"
        "1:\n\t"
#if defined(TE_FAULT_HAS_MSPLIM)
        "movs r3, #0\n\t"
        "msr msplim, r3\n\t"
#endif
        "ldr r3, =te_fault_stack + 512\n\t"
        "mov sp, r3\n\t"
        "ldr r3, =te_fault_report\n\t"
        "bx r3\n\t"
        ".ltorg\n\t");
}

TE_FAULT_CODE static const char *te_fault_exception(uint32_t ipsr)
{
    switch (ipsr) {
    case 2: return "NMI";
    case 3: return "HardFault";
    case 4: return "MemManage";
    case 5: return "BusFault";
    case 6: return "UsageFault";
    case 7: return "SecureFault";
    case 11: return "SVCall";
    case 12: return "DebugMonitor";
    case 14: return "PendSV";
    default: return ipsr >= 16u ? "unexpected interrupt" : "exception";
    }
}


__attribute__((noreturn, used)) TE_FAULT_CODE
void te_fault_report(const uint32_t *frame)
{
    const uint32_t sp = (uint32_t)(uintptr_t)frame;
    uint32_t ipsr;
    int overflow = sp < (uint32_t)(uintptr_t)_sstack + TE_GUARD_BYTES;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    te_fault_begin();
    te_fault_puts(te_fault_exception(ipsr & 0x1FFu));
#if defined(TE_FAULT_HAS_CFSR)
    uint32_t cfsr = *(volatile uint32_t *)0xE000ED28u;
    overflow = overflow || (cfsr & ((1u << 20) | (1u << 12) | (1u << 4))) != 0u;
#if defined(TE_FAULT_MPU_GUARD)
    if (cfsr & (1u << 7)) {   /* MMARVALID: a data access in a guard region is an overflow too */
        uint32_t addr = *(volatile uint32_t *)0xE000ED34u;
        uint32_t bottom = (uint32_t)(uintptr_t)_sstack;
        overflow = overflow || (addr >= bottom && addr - bottom < TE_GUARD_BYTES) ||
                   (addr < bottom && bottom - addr <= TE_BELOW_RAM_BYTES);
    }
#endif
#endif
    if (!overflow) {          /* after an overflow the frame was not stacked: no pc to show */
        te_fault_puts(" at pc=");
        te_fault_hex(frame[6]);
        te_fault_puts(" lr=");
        te_fault_hex(frame[5]);
    }
    te_fault_puts(" sp=");
    te_fault_hex(sp);
#if defined(TE_FAULT_HAS_CFSR)
    te_fault_puts(" cfsr=");
    te_fault_hex(cfsr);
    te_fault_puts(" hfsr=");
    te_fault_hex(*(volatile uint32_t *)0xE000ED2Cu);
    if (cfsr & (1u << 15)) {
        te_fault_puts(" bfar=");
        te_fault_hex(*(volatile uint32_t *)0xE000ED38u);
    } else if (cfsr & (1u << 7)) {
        te_fault_puts(" mmfar=");
        te_fault_hex(*(volatile uint32_t *)0xE000ED34u);
    }
#endif
    if (overflow) {
        te_fault_puts(" (stack overflow: the stack is ");
        te_fault_dec((uint32_t)((uintptr_t)_estack - (uintptr_t)_sstack));
        te_fault_puts(" bytes; raise memory.stack_bytes in the board file)");
    }
    te_fault_puts("\n");
    te_fault_drain();
#if defined(TE_BOARD_SEMIHOSTING_EXIT)
    {
        /* SYS_EXIT (0x18) with ADP_Stopped_InternalError: QEMU exits with status 1. */
        register uint32_t op __asm__("r0") = 0x18u;
        register uint32_t arg __asm__("r1") = 0x20023u;
        __asm__ volatile("bkpt 0xab" : : "r"(op), "r"(arg) : "memory");
    }
#endif
    for (;;) {
    }
}

typedef void (*te_vector_t)(void);

/* Cortex-M system exceptions; the peripheral interrupts are not used (the
 * UART is polled), so the table ends after SysTick. */
__attribute__((section(".vectors"), used))
const te_vector_t te_vectors[16] = {
    (te_vector_t)(uintptr_t)_estack,
    te_reset_handler,
    te_fault_entry, /* NMI */
    te_fault_entry, /* HardFault */
    te_fault_entry, /* MemManage */
    te_fault_entry, /* BusFault */
    te_fault_entry, /* UsageFault */
    te_fault_entry, /* SecureFault (v8-M) */
    0, 0, 0,
    te_fault_entry, /* SVCall */
    te_fault_entry, /* DebugMonitor */
    0,
    te_fault_entry, /* PendSV */
    te_systick_handler,
};
