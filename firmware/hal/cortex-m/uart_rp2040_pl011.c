/* tinyedge firmware: RP2040 UART0, an ARM PL011 (Raspberry Pi Pico: GP0 TX,
 * GP1 RX).  Register maps from the RP2040 datasheet.  Clocks: the 12 MHz
 * crystal oscillator is started and clk_ref, clk_sys and clk_peri run from
 * it (TE_BOARD_UART_CLOCK_HZ); the PLLs are left off.
 */
#include "te_board.h"
#include "te_uart.h"

#define TE_RESETS 0x4000C000u
#define TE_RESETS_RESET TE_RESETS
#define TE_RESETS_DONE (TE_RESETS + 0x08u)
#define TE_ATOMIC_CLR 0x3000u
#define TE_RESET_IO_BANK0 (1u << 5)
#define TE_RESET_PADS_BANK0 (1u << 8)
#define TE_RESET_UART0 (1u << 22)
#define TE_XOSC 0x40024000u
#define TE_XOSC_CTRL TE_XOSC
#define TE_XOSC_STATUS (TE_XOSC + 0x04u)
#define TE_XOSC_STARTUP (TE_XOSC + 0x0Cu)
#define TE_CLOCKS 0x40008000u
#define TE_CLK_REF_CTRL (TE_CLOCKS + 0x30u)
#define TE_CLK_REF_SELECTED (TE_CLOCKS + 0x38u)
#define TE_CLK_SYS_CTRL (TE_CLOCKS + 0x3Cu)
#define TE_CLK_SYS_SELECTED (TE_CLOCKS + 0x44u)
#define TE_CLK_PERI_CTRL (TE_CLOCKS + 0x48u)
#define TE_IO_BANK0_CTRL(gpio) (0x40014000u + 0x04u + 8u * (uint32_t)(gpio))
#define TE_GPIO_FUNC_UART 2u

#define TE_UARTDR (TE_BOARD_UART_BASE + 0x000u)
#define TE_UARTFR (TE_BOARD_UART_BASE + 0x018u)
#define TE_UARTIBRD (TE_BOARD_UART_BASE + 0x024u)
#define TE_UARTFBRD (TE_BOARD_UART_BASE + 0x028u)
#define TE_UARTLCR_H (TE_BOARD_UART_BASE + 0x02Cu)
#define TE_UARTCR (TE_BOARD_UART_BASE + 0x030u)
#define TE_UARTFR_RXFE (1u << 4)
#define TE_UARTFR_TXFF (1u << 5)

static void te_clocks_from_xosc(void)
{
    TE_REG32(TE_XOSC_CTRL) = 0xAA0u;                   /* FREQ_RANGE 1-15 MHz */
    TE_REG32(TE_XOSC_STARTUP) = 47u;                   /* ~1 ms at 12 MHz */
    TE_REG32(TE_XOSC_CTRL) = 0xAA0u | (0xFABu << 12);  /* ENABLE */
    while (!(TE_REG32(TE_XOSC_STATUS) & (1u << 31))) {
    }
    TE_REG32(TE_CLK_REF_CTRL) = 2u;                    /* SRC = xosc_clksrc */
    while (!(TE_REG32(TE_CLK_REF_SELECTED) & (1u << 2))) {
    }
    TE_REG32(TE_CLK_SYS_CTRL) = 0u;                    /* SRC = clk_ref */
    while (!(TE_REG32(TE_CLK_SYS_SELECTED) & 1u)) {
    }
    TE_REG32(TE_CLK_PERI_CTRL) = 1u << 11;             /* ENABLE, AUXSRC = clk_sys */
}

void te_uart_init(void)
{
    uint32_t div64;
    uint32_t mask = TE_RESET_IO_BANK0 | TE_RESET_PADS_BANK0 | TE_RESET_UART0;
    te_clocks_from_xosc();
    TE_REG32(TE_RESETS_RESET + TE_ATOMIC_CLR) = mask;
    while ((TE_REG32(TE_RESETS_DONE) & mask) != mask) {
    }
    TE_REG32(TE_IO_BANK0_CTRL(TE_BOARD_UART_TX_PIN)) = TE_GPIO_FUNC_UART;
    TE_REG32(TE_IO_BANK0_CTRL(TE_BOARD_UART_RX_PIN)) = TE_GPIO_FUNC_UART;
    /* divisor = clk / (16 * baud), as 16.6 fixed point, rounded */
    div64 = (uint32_t)((8u * (uint64_t)TE_BOARD_UART_CLOCK_HZ + TE_BOARD_UART_BAUD) / (2u * TE_BOARD_UART_BAUD));
    TE_REG32(TE_UARTIBRD) = div64 >> 6;
    TE_REG32(TE_UARTFBRD) = div64 & 0x3Fu;
    TE_REG32(TE_UARTLCR_H) = (3u << 5) | (1u << 4);    /* 8 bits, FIFOs on */
    TE_REG32(TE_UARTCR) = (1u << 9) | (1u << 8) | 1u;  /* RXE, TXE, UARTEN */
}

void te_uart_putc(uint8_t c)
{
    while (TE_REG32(TE_UARTFR) & TE_UARTFR_TXFF) {
    }
    TE_REG32(TE_UARTDR) = c;
}

int te_uart_poll(void)
{
    if (TE_REG32(TE_UARTFR) & TE_UARTFR_RXFE) {
        return -1;
    }
    return (int)(TE_REG32(TE_UARTDR) & 0xFFu);
}
