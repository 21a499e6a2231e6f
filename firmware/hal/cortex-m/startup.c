/* tinyedge firmware: Cortex-M startup (bare metal, no vendor headers).
 *
 * The vector table, the reset handler (FPU on, .data copied from flash,
 * .bss zeroed, then main) and default fault handlers.  The symbols it uses
 * come from the generated linker script (linker.ld).
 */
#include <stdint.h>
#include <string.h>

extern uint32_t _sidata[];   /* load address of .data in flash */
extern uint32_t _sdata[];
extern uint32_t _edata[];
extern uint32_t _sbss[];
extern uint32_t _ebss[];
extern uint32_t _estack[];   /* top of the stack (initial SP) */

int main(void);
void te_reset_handler(void);
void te_default_handler(void);
void te_systick_handler(void);   /* te_hal_cortexm.c */

void te_reset_handler(void)
{
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

/* Faults and unexpected interrupts stop here, where a debugger finds them. */
void te_default_handler(void)
{
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
    te_default_handler, /* NMI */
    te_default_handler, /* HardFault */
    te_default_handler, /* MemManage */
    te_default_handler, /* BusFault */
    te_default_handler, /* UsageFault */
    te_default_handler, /* SecureFault (v8-M) */
    0, 0, 0,
    te_default_handler, /* SVCall */
    te_default_handler, /* DebugMonitor */
    0,
    te_default_handler, /* PendSV */
    te_systick_handler,
};
