/* tinyedge firmware: the board facts of the HAL, the same for every family.
 *
 * They come from the generated te_board.h (TE_BOARD_ID, TE_BOARD_CLOCK_HZ,
 * TE_BOARD_COUNTER_UNIT); the family's own HAL file holds only what differs:
 * clocks, UART and the counter.
 */
#include "te_board.h"
#include "te_hal.h"

const char *te_hal_counter_unit(void)
{
    return TE_BOARD_COUNTER_UNIT;
}

const char *te_hal_board_id(void)
{
    return TE_BOARD_ID;
}

uint32_t te_hal_clock_hz(void)
{
    return TE_BOARD_CLOCK_HZ;
}
