/* tinyedge firmware: STM32L4+ LPUART1 (NUCLEO-L4R5ZI: ST-LINK virtual COM
 * port on PG7 TX / PG8 RX, alternate function 8).  Register map from the
 * STM32L4+ reference manual (RM0432).  The core stays on its reset clock
 * (MSI 4 MHz), which is also LPUART1's clock (PCLK1); port G needs VDDIO2,
 * enabled through PWR_CR2.IOSV.
 */
#include "te_board.h"
#include "te_uart.h"

#define TE_RCC 0x40021000u
#define TE_RCC_AHB2ENR (TE_RCC + 0x4Cu)
#define TE_RCC_APB1ENR1 (TE_RCC + 0x58u)
#define TE_RCC_APB1ENR2 (TE_RCC + 0x5Cu)
#define TE_PWR_CR2 (0x40007000u + 0x04u)
#define TE_GPIO(port) (0x48000000u + 0x400u * (uint32_t)(port))
#define TE_GPIO_MODER 0x00u
#define TE_GPIO_AFRL 0x20u
#define TE_GPIO_AFRH 0x24u

#define TE_USART_CR1 (TE_BOARD_UART_BASE + 0x00u)
#define TE_USART_BRR (TE_BOARD_UART_BASE + 0x0Cu)
#define TE_USART_ISR (TE_BOARD_UART_BASE + 0x1Cu)
#define TE_USART_ICR (TE_BOARD_UART_BASE + 0x20u)
#define TE_USART_RDR (TE_BOARD_UART_BASE + 0x24u)
#define TE_USART_TDR (TE_BOARD_UART_BASE + 0x28u)
#define TE_ISR_RXNE (1u << 5)
#define TE_ISR_TXE (1u << 7)
#define TE_ISR_ORE (1u << 3)

static void te_pin_af(uint32_t port, uint32_t pin, uint32_t af)
{
    uint32_t gpio = TE_GPIO(port);
    uint32_t afr = pin < 8u ? TE_GPIO_AFRL : TE_GPIO_AFRH;
    uint32_t shift = (pin & 7u) * 4u;
    TE_REG32(gpio + afr) = (TE_REG32(gpio + afr) & ~(0xFu << shift)) | (af << shift);
    TE_REG32(gpio + TE_GPIO_MODER) = (TE_REG32(gpio + TE_GPIO_MODER) & ~(3u << (pin * 2u))) | (2u << (pin * 2u));
}

void te_uart_init(void)
{
    TE_REG32(TE_RCC_APB1ENR1) |= 1u << 28;       /* PWREN */
    TE_REG32(TE_PWR_CR2) |= 1u << 9;             /* IOSV: VDDIO2 valid (port G) */
    TE_REG32(TE_RCC_AHB2ENR) |= 1u << TE_BOARD_UART_TX_PORT;
    TE_REG32(TE_RCC_AHB2ENR) |= 1u << TE_BOARD_UART_RX_PORT;
    TE_REG32(TE_RCC_APB1ENR2) |= 1u << 0;        /* LPUART1EN */
    (void)TE_REG32(TE_RCC_APB1ENR2);             /* let the clock settle */
    te_pin_af(TE_BOARD_UART_TX_PORT, TE_BOARD_UART_TX_PIN, TE_BOARD_UART_AF);
    te_pin_af(TE_BOARD_UART_RX_PORT, TE_BOARD_UART_RX_PIN, TE_BOARD_UART_AF);
    TE_REG32(TE_USART_CR1) = 0u;
    /* LPUART: BRR = 256 * f_ck / baud */
    TE_REG32(TE_USART_BRR) = (uint32_t)(((uint64_t)TE_BOARD_UART_CLOCK_HZ * 256u + TE_BOARD_UART_BAUD / 2u) /
                                        TE_BOARD_UART_BAUD);
    TE_REG32(TE_USART_CR1) = (1u << 3) | (1u << 2) | 1u; /* TE, RE, UE */
}

void te_uart_putc(uint8_t c)
{
    while (!(TE_REG32(TE_USART_ISR) & TE_ISR_TXE)) {
    }
    TE_REG32(TE_USART_TDR) = c;
}

int te_uart_poll(void)
{
    uint32_t isr = TE_REG32(TE_USART_ISR);
    if (isr & TE_ISR_ORE) {
        TE_REG32(TE_USART_ICR) = TE_ISR_ORE;
    }
    if (isr & TE_ISR_RXNE) {
        return (int)(TE_REG32(TE_USART_RDR) & 0xFFu);
    }
    return -1;
}
