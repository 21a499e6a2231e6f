/* tinyedge firmware: the RISC-V board layer (te_hal.h).
 *
 * Counter (TE_BOARD_COUNTER_MINSTRET): the minstret/minstreth CSRs, the
 * instructions retired, read as one 64-bit value (high, low, high again until
 * the high half holds still).  Under QEMU with -icount shift=0 it advances
 * one per instruction; on silicon it is the same architectural count.
 * The UART is polled through te_uart.h.
 */
#include "te_board.h"
#include "te_hal.h"
#include "te_uart.h"

#if !defined(TE_BOARD_COUNTER_MINSTRET)
#error "te_board.h must define TE_BOARD_COUNTER_MINSTRET for the RISC-V board layer"
#endif

uint64_t te_hal_counter(void)
{
    uint32_t hi;
    uint32_t lo;
    uint32_t hi2;
    do {
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi));
        __asm__ volatile("csrr %0, minstret" : "=r"(lo));
        __asm__ volatile("csrr %0, minstreth" : "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | (uint64_t)lo;
}

void te_hal_init(void)
{
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
