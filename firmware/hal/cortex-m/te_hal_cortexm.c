/* tinyedge firmware: the Cortex-M board layer (te_hal.h).
 *
 * Counter, chosen by te_board.h:
 *   TE_BOARD_COUNTER_SYSTICK: SysTick on the core clock with reload 2^24-1;
 *     its interrupt counts wraps, so long inferences do not wrap.  The count
 *     is scaled by TE_BOARD_COUNTER_MUL/DIV: 1/1 on a real Cortex-M0+
 *     (cycles); on QEMU under -icount shift=0 one SysTick tick is
 *     1e9/clock_hz instructions, so the scale gives instructions.
 *   TE_BOARD_COUNTER_DWT: DWT CYCCNT, enabled through DEMCR.TRCENA (and the
 *     lock access register on a Cortex-M7), widened to 64 bits; a 100 Hz
 *     SysTick interrupt reads it so no 32-bit wrap goes unseen.
 * The UART is polled through te_uart.h.
 */
#include "te_board.h"
#include "te_hal.h"
#include "te_uart.h"

#define TE_SYST_CSR 0xE000E010u
#define TE_SYST_RVR 0xE000E014u
#define TE_SYST_CVR 0xE000E018u
#define TE_SYST_CSR_ENABLE_TICKINT_CORECLK 0x7u
#define TE_SCB_ICSR 0xE000ED04u
#define TE_ICSR_PENDSTSET (1u << 26)

#if defined(TE_BOARD_COUNTER_SYSTICK)

#ifndef TE_SYSTICK_RELOAD
#define TE_SYSTICK_RELOAD 0x00FFFFFFu /* 2^24 - 1; a power of two minus one (tests build a small one) */
#endif
static volatile uint32_t te_systick_wraps;

void te_systick_handler(void)
{
    te_systick_wraps++;
}

static void te_counter_init(void)
{
    TE_REG32(TE_SYST_CSR) = 0u;
    TE_REG32(TE_SYST_RVR) = TE_SYSTICK_RELOAD;
    TE_REG32(TE_SYST_CVR) = 0u;
    TE_REG32(TE_SYST_CSR) = TE_SYST_CSR_ENABLE_TICKINT_CORECLK;
}

uint64_t te_hal_counter(void)
{
    uint32_t w1;
    uint32_t w2;
    uint32_t v;
    uint32_t pending;
    do {
        w1 = te_systick_wraps;
        v = TE_REG32(TE_SYST_CVR) & TE_SYSTICK_RELOAD;
        pending = TE_REG32(TE_SCB_ICSR) & TE_ICSR_PENDSTSET;
        w2 = te_systick_wraps;
    } while (w1 != w2);
    /* A wrap whose interrupt has not run yet (interrupt latency, or interrupts
     * masked): count it when CVR was read after it, i.e. CVR is near the reload. */
    if (pending && v > TE_SYSTICK_RELOAD / 2u) {
        w1++;
    }
    {
        uint64_t ticks = (uint64_t)w1 * ((uint64_t)TE_SYSTICK_RELOAD + 1u) + (uint64_t)(TE_SYSTICK_RELOAD - v);
        return ticks * (uint64_t)TE_BOARD_COUNTER_MUL / (uint64_t)TE_BOARD_COUNTER_DIV;
    }
}

#elif defined(TE_BOARD_COUNTER_DWT)

#define TE_DEMCR 0xE000EDFCu
#define TE_DEMCR_TRCENA (1u << 24)
#define TE_DWT_CTRL 0xE0001000u
#define TE_DWT_CYCCNT 0xE0001004u
#define TE_DWT_LAR 0xE0001FB0u
#define TE_DWT_LAR_KEY 0xC5ACCE55u

static uint32_t te_dwt_last;
static uint64_t te_dwt_high;

static void te_counter_init(void)
{
    TE_REG32(TE_DEMCR) |= TE_DEMCR_TRCENA;
#if defined(TE_BOARD_CPU_CORTEX_M7)
    TE_REG32(TE_DWT_LAR) = TE_DWT_LAR_KEY; /* the M7's DWT is locked after reset */
#endif
    TE_REG32(TE_DWT_CYCCNT) = 0u;
    TE_REG32(TE_DWT_CTRL) |= 1u; /* CYCCNTENA */
    TE_REG32(TE_SYST_CSR) = 0u;
    TE_REG32(TE_SYST_RVR) = (TE_BOARD_CLOCK_HZ / 100u) - 1u;
    TE_REG32(TE_SYST_CVR) = 0u;
    TE_REG32(TE_SYST_CSR) = TE_SYST_CSR_ENABLE_TICKINT_CORECLK;
}

uint64_t te_hal_counter(void)
{
    uint32_t primask;
    uint32_t now;
    uint64_t result;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) : : "memory");
    now = TE_REG32(TE_DWT_CYCCNT);
    if (now < te_dwt_last) {
        te_dwt_high += (uint64_t)1 << 32;
    }
    te_dwt_last = now;
    result = te_dwt_high | (uint64_t)now;
    __asm__ volatile("msr primask, %0" : : "r"(primask) : "memory");
    return result;
}

void te_systick_handler(void)
{
    (void)te_hal_counter();
}

#else
#error "te_board.h must define TE_BOARD_COUNTER_SYSTICK or TE_BOARD_COUNTER_DWT"
#endif

void te_hal_init(void)
{
    te_counter_init();
    te_uart_init();
}

void te_hal_uart_write(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        te_uart_putc(buf[i]);
    }
}

int te_hal_uart_getc(int32_t timeout_ms)
{
    uint64_t deadline = 0u;
    if (timeout_ms >= 0) {
        deadline = te_hal_counter() + (uint64_t)timeout_ms * (uint64_t)TE_BOARD_COUNTS_PER_MS;
    }
    for (;;) {
        int c = te_uart_poll();
        if (c >= 0) {
            return c;
        }
        if (timeout_ms >= 0 && te_hal_counter() >= deadline) {
            return -1;
        }
    }
}

/* te_hal_counter_unit, te_hal_board_id, te_hal_clock_hz: firmware/hal/te_hal_board.c */
