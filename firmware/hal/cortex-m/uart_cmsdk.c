/* tinyedge firmware: ARM CMSDK APB UART (the QEMU MPS2/MPS3 boards).
 * DATA +0x0, STATE +0x4 (bit0 TX full, bit1 RX full), CTRL +0x8 (bit0 TX
 * enable, bit1 RX enable), BAUDDIV +0x10 (at least 16).
 */
#include "te_board.h"
#include "te_uart.h"

#define TE_CMSDK_DATA (TE_BOARD_UART_BASE + 0x00u)
#define TE_CMSDK_STATE (TE_BOARD_UART_BASE + 0x04u)
#define TE_CMSDK_CTRL (TE_BOARD_UART_BASE + 0x08u)
#define TE_CMSDK_BAUDDIV (TE_BOARD_UART_BASE + 0x10u)
#define TE_CMSDK_STATE_TXFULL 0x1u
#define TE_CMSDK_STATE_RXFULL 0x2u

void te_uart_init(void)
{
    uint32_t div = TE_BOARD_UART_CLOCK_HZ / TE_BOARD_UART_BAUD;
    TE_REG32(TE_CMSDK_BAUDDIV) = div < 16u ? 16u : div;
    TE_REG32(TE_CMSDK_CTRL) = 0x3u; /* TX and RX enabled, no interrupts */
}

void te_uart_putc(uint8_t c)
{
    while (TE_REG32(TE_CMSDK_STATE) & TE_CMSDK_STATE_TXFULL) {
    }
    TE_REG32(TE_CMSDK_DATA) = c;
}

int te_uart_poll(void)
{
    if (TE_REG32(TE_CMSDK_STATE) & TE_CMSDK_STATE_RXFULL) {
        return (int)(TE_REG32(TE_CMSDK_DATA) & 0xFFu);
    }
    return -1;
}
