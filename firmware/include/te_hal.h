/* tinyedge firmware: the board layer.  One implementation per board family
 * (firmware/hal/<family>/), chosen by the project template.  Everything above
 * it (protocol, inference loop) is portable C99.
 */
#ifndef TE_HAL_H
#define TE_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Clocks, UART and cycle counter.  Called once, first. */
void te_hal_init(void);

/* Write n bytes to the UART; returns when they are queued or sent. */
void te_hal_uart_write(const uint8_t *buf, size_t n);

/* Read one byte.  Returns the byte (0..255), or -1 when none arrived within
 * timeout_ms milliseconds (timeout_ms < 0 waits forever). */
int te_hal_uart_getc(int32_t timeout_ms);

/* The free-running counter that times inferences, widened to 64 bits
 * (overflows of a narrower hardware counter are counted). */
uint64_t te_hal_counter(void);

/* The unit of te_hal_counter(): "cycles", "instructions" or "ns". */
const char *te_hal_counter_unit(void);

/* Board facts for the hello reply. */
const char *te_hal_board_id(void);
uint32_t te_hal_clock_hz(void);

#ifdef __cplusplus
}
#endif

#endif /* TE_HAL_H */
