/* tinyedge firmware: the fault report's output (te_fault.h), on the board
 * layer's polled UART driver (te_uart.h). */
#include "te_fault.h"

#include "te_uart.h"

TE_FAULT_CODE void te_fault_puts(const char *s)
{
    while (*s) {
        te_uart_putc((uint8_t)*s++);
    }
}

TE_FAULT_CODE void te_fault_begin(void)
{
    te_uart_putc(0u);
    te_fault_puts("\ntinyedge fault: ");
}

TE_FAULT_CODE void te_fault_hex(uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    int i;
    te_fault_puts("0x");
    for (i = 28; i >= 0; i -= 4) {
        te_uart_putc((uint8_t)digits[(v >> i) & 0xFu]);
    }
}

TE_FAULT_CODE void te_fault_dec(uint32_t v)
{
    char buf[11];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && n < 10);
    while (n > 0) {
        te_uart_putc((uint8_t)buf[--n]);
    }
}

TE_FAULT_CODE void te_fault_drain(void)
{
    uint32_t quiet = 0u;
    uint32_t total = 0u;
    while (quiet < 100000u && total < 20000000u) {
        quiet = te_uart_poll() >= 0 ? 0u : quiet + 1u;
        total++;
    }
}
