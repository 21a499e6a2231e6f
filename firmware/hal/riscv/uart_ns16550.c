/* tinyedge firmware: 16550-compatible UART (the QEMU RISC-V virt machine's
 * ns16550a), byte-wide registers: RBR/THR +0, IER +1, FCR +2, LCR +3,
 * LSR +5 (bit0 data ready, bit5 transmit holding register empty); with
 * LCR.DLAB set, +0/+1 are the baud divisor (clock / (16 * baud)).
 */
#include "te_board.h"
#include "te_uart.h"

#define TE_NS16550_REG(off) (*(volatile uint8_t *)(uintptr_t)(TE_BOARD_UART_BASE + (off)))
#define TE_NS16550_RBR 0x0u
#define TE_NS16550_THR 0x0u
#define TE_NS16550_DLL 0x0u
#define TE_NS16550_IER 0x1u
#define TE_NS16550_DLM 0x1u
#define TE_NS16550_FCR 0x2u
#define TE_NS16550_LCR 0x3u
#define TE_NS16550_LSR 0x5u
#define TE_NS16550_LCR_DLAB 0x80u
#define TE_NS16550_LCR_8N1 0x03u
#define TE_NS16550_LSR_DR 0x01u
#define TE_NS16550_LSR_THRE 0x20u

void te_uart_init(void)
{
    uint32_t div = TE_BOARD_UART_CLOCK_HZ / (16u * TE_BOARD_UART_BAUD);
    if (div == 0u) {
        div = 1u;
    }
    TE_NS16550_REG(TE_NS16550_IER) = 0x00u; /* polled: no interrupts */
    TE_NS16550_REG(TE_NS16550_LCR) = TE_NS16550_LCR_DLAB;
    TE_NS16550_REG(TE_NS16550_DLL) = (uint8_t)(div & 0xFFu);
    TE_NS16550_REG(TE_NS16550_DLM) = (uint8_t)((div >> 8) & 0xFFu);
    TE_NS16550_REG(TE_NS16550_LCR) = TE_NS16550_LCR_8N1;
    TE_NS16550_REG(TE_NS16550_FCR) = 0x07u; /* FIFOs on and cleared */
}

void te_uart_putc(uint8_t c)
{
    while (!(TE_NS16550_REG(TE_NS16550_LSR) & TE_NS16550_LSR_THRE)) {
    }
    TE_NS16550_REG(TE_NS16550_THR) = c;
}

int te_uart_poll(void)
{
    if (TE_NS16550_REG(TE_NS16550_LSR) & TE_NS16550_LSR_DR) {
        return (int)TE_NS16550_REG(TE_NS16550_RBR);
    }
    return -1;
}
