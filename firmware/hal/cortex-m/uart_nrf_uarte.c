/* tinyedge firmware: nRF52840 UARTE0 (nRF52840-DK: interface MCU's virtual
 * COM port on P0.06 TX / P0.08 RX).  Register map from the nRF52840 product
 * specification.  UARTE moves data by EasyDMA, so the bytes go through
 * buffers in RAM; reception restarts itself (ENDRX -> STARTRX shortcut) into
 * a one-byte buffer that te_uart_poll() reads when ENDRX fires.
 */
#include "te_board.h"
#include "te_uart.h"

#define TE_UARTE(off) (TE_BOARD_UART_BASE + (off))
#define TE_UARTE_STARTRX TE_UARTE(0x000u)
#define TE_UARTE_STARTTX TE_UARTE(0x008u)
#define TE_UARTE_EVENTS_ENDRX TE_UARTE(0x110u)
#define TE_UARTE_EVENTS_ENDTX TE_UARTE(0x120u)
#define TE_UARTE_SHORTS TE_UARTE(0x200u)
#define TE_UARTE_ENABLE TE_UARTE(0x500u)
#define TE_UARTE_PSEL_RTS TE_UARTE(0x508u)
#define TE_UARTE_PSEL_TXD TE_UARTE(0x50Cu)
#define TE_UARTE_PSEL_CTS TE_UARTE(0x510u)
#define TE_UARTE_PSEL_RXD TE_UARTE(0x514u)
#define TE_UARTE_BAUDRATE TE_UARTE(0x524u)
#define TE_UARTE_RXD_PTR TE_UARTE(0x534u)
#define TE_UARTE_RXD_MAXCNT TE_UARTE(0x538u)
#define TE_UARTE_TXD_PTR TE_UARTE(0x544u)
#define TE_UARTE_TXD_MAXCNT TE_UARTE(0x548u)
#define TE_UARTE_CONFIG TE_UARTE(0x56Cu)
#define TE_P0_OUTSET 0x50000508u
#define TE_P0_PIN_CNF(n) (0x50000700u + 4u * (uint32_t)(n))

static volatile uint8_t te_rx_byte;
static volatile uint8_t te_tx_byte;

/* BAUDRATE register values of the product specification (table "BAUDRATE"). */
static uint32_t te_baud_reg(uint32_t baud)
{
    switch (baud) {
    case 9600u: return 0x00275000u;
    case 19200u: return 0x004EA000u;
    case 38400u: return 0x009D5000u;
    case 57600u: return 0x00EB0000u;
    case 230400u: return 0x03AFB000u;
    case 460800u: return 0x075F7000u;
    case 921600u: return 0x0EBED000u;
    case 1000000u: return 0x10000000u;
    default: return 0x01D7E000u; /* 115200 */
    }
}

void te_uart_init(void)
{
    TE_REG32(TE_P0_OUTSET) = 1u << TE_BOARD_UART_TX_PIN;
    TE_REG32(TE_P0_PIN_CNF(TE_BOARD_UART_TX_PIN)) = 3u;  /* DIR output, INPUT disconnected */
    TE_REG32(TE_P0_PIN_CNF(TE_BOARD_UART_RX_PIN)) = 0u;  /* DIR input, INPUT connected */
    TE_REG32(TE_UARTE_PSEL_TXD) = TE_BOARD_UART_TX_PIN;
    TE_REG32(TE_UARTE_PSEL_RXD) = TE_BOARD_UART_RX_PIN;
    TE_REG32(TE_UARTE_PSEL_RTS) = 0xFFFFFFFFu;           /* disconnected */
    TE_REG32(TE_UARTE_PSEL_CTS) = 0xFFFFFFFFu;
    TE_REG32(TE_UARTE_BAUDRATE) = te_baud_reg(TE_BOARD_UART_BAUD);
    TE_REG32(TE_UARTE_CONFIG) = 0u;                      /* 8N1, no flow control */
    TE_REG32(TE_UARTE_ENABLE) = 8u;
    TE_REG32(TE_UARTE_RXD_PTR) = (uint32_t)(uintptr_t)&te_rx_byte;
    TE_REG32(TE_UARTE_RXD_MAXCNT) = 1u;
    TE_REG32(TE_UARTE_SHORTS) = 1u << 5;                 /* ENDRX_STARTRX */
    TE_REG32(TE_UARTE_EVENTS_ENDRX) = 0u;
    TE_REG32(TE_UARTE_STARTRX) = 1u;
}

void te_uart_putc(uint8_t c)
{
    te_tx_byte = c;
    TE_REG32(TE_UARTE_EVENTS_ENDTX) = 0u;
    TE_REG32(TE_UARTE_TXD_PTR) = (uint32_t)(uintptr_t)&te_tx_byte;
    TE_REG32(TE_UARTE_TXD_MAXCNT) = 1u;
    TE_REG32(TE_UARTE_STARTTX) = 1u;
    while (TE_REG32(TE_UARTE_EVENTS_ENDTX) == 0u) {
    }
}

int te_uart_poll(void)
{
    if (TE_REG32(TE_UARTE_EVENTS_ENDRX) != 0u) {
        TE_REG32(TE_UARTE_EVENTS_ENDRX) = 0u;
        return (int)te_rx_byte;
    }
    return -1;
}
