/* tinyedge firmware: writing a fault report on the polled UART, from a fault
 * handler (firmware/hal/te_fault.c; used by the Cortex-M and RISC-V startups).
 *
 * The report is one line, "tinyedge fault: ...", after a 0x00 byte that ends
 * any frame the host was reading; tinyedge.link.Device finds it in the
 * board's log and names it in the error.  Nothing here uses the stack much
 * or any state that a fault may have broken.
 */
#ifndef TE_FAULT_H
#define TE_FAULT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Fault-path code runs once: compiled for size (GCC), so it costs little flash. */
#if defined(__GNUC__) && !defined(__clang__)
#define TE_FAULT_CODE __attribute__((cold, optimize("Os")))
#else
#define TE_FAULT_CODE
#endif

void te_fault_begin(void);            /* 0x00, then "\ntinyedge fault: " */
void te_fault_puts(const char *s);
void te_fault_hex(uint32_t v);        /* 0x%08x */
void te_fault_dec(uint32_t v);
/* Read what the host is still sending until the line is quiet (bounded).  An emulator that
 * exits with unread input closes its TCP socket with a reset, and a reset discards the fault
 * line in the host's receive buffer before the host reads it. */
void te_fault_drain(void);

#ifdef __cplusplus
}
#endif

#endif /* TE_FAULT_H */
