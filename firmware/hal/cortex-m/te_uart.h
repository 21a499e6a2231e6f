/* tinyedge firmware: the UART driver interface inside the Cortex-M board layer.
 * One implementation per UART family (uart_<driver>.c), chosen by the project
 * template from the board file's uart.driver.  Polled, no interrupts, no heap.
 */
#ifndef TE_UART_H
#define TE_UART_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Clocks, pins and baud rate (TE_BOARD_UART_* in te_board.h). */
void te_uart_init(void);

/* Send one byte, waiting while the transmitter is full. */
void te_uart_putc(uint8_t c);

/* The next received byte (0..255), or -1 when none is waiting. */
int te_uart_poll(void);

#define TE_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#ifdef __cplusplus
}
#endif

#endif /* TE_UART_H */
