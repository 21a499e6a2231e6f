/* tinyedge firmware: the ESP32 board layer (ESP32, ESP32-S3, ESP32-C3) on
 * ESP-IDF.  The UART is driven by the ESP-IDF uart driver (console UART,
 * with the console's own output moved off it by sdkconfig.defaults); the
 * counter is esp_cpu_get_cycle_count(), widened to 64 bits (unit cycles).
 */
#include "driver/uart.h"
#include "esp_cpu.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#include "te_board.h"
#include "te_hal.h"
#include "te_widen.h"

#define TE_UART_PORT TE_BOARD_UART_PORT
#define TE_UART_RX_BUFFER 2048

static te_widen_t te_cycles;

void te_hal_init(void)
{
    const uart_config_t cfg = {
        .baud_rate = TE_BOARD_UART_BAUD,
        .data_bits = UART_DATA_8_BITS,
        .parity = UART_PARITY_DISABLE,
        .stop_bits = UART_STOP_BITS_1,
        .flow_ctrl = UART_HW_FLOWCTRL_DISABLE,
        .source_clk = UART_SCLK_DEFAULT,
    };
    ESP_ERROR_CHECK(uart_param_config(TE_UART_PORT, &cfg));
    ESP_ERROR_CHECK(uart_driver_install(TE_UART_PORT, TE_UART_RX_BUFFER, 0, 0, NULL, 0));
    (void)te_widen(&te_cycles, (uint32_t)esp_cpu_get_cycle_count());
}

void te_hal_uart_write(const uint8_t *buf, size_t n)
{
    (void)uart_write_bytes(TE_UART_PORT, (const char *)buf, n);
    (void)uart_wait_tx_done(TE_UART_PORT, portMAX_DELAY);
}

int te_hal_uart_getc(int32_t timeout_ms)
{
    uint8_t c;
    TickType_t ticks = timeout_ms < 0 ? portMAX_DELAY : pdMS_TO_TICKS((uint32_t)timeout_ms);
    int got = uart_read_bytes(TE_UART_PORT, &c, 1, ticks);
    return got == 1 ? (int)c : -1;
}

uint64_t te_hal_counter(void)
{
    return te_widen(&te_cycles, (uint32_t)esp_cpu_get_cycle_count());
}

/* te_hal_counter_unit, te_hal_board_id, te_hal_clock_hz: firmware/hal/te_hal_board.c */
