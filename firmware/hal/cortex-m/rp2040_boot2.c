/* tinyedge firmware: RP2040 second-stage boot (boot2), for boards whose
 * te_board.h defines TE_BOARD_RP2040_BOOT2.
 *
 * The RP2040 boot ROM copies the first 256 bytes of flash to SRAM, checks the
 * CRC-32 in their last 4 bytes (written after linking by the project's
 * tools/rp2040_boot2_crc.py) and runs them.  This code sets the flash
 * interface (SSI, 0x18000000) up for execute-in-place with the standard 03h
 * read command, then starts the image: VTOR = 0x10000100, SP and PC from its
 * vector table.  Register map from the RP2040 datasheet (section 4.10, SSI).
 * It runs from SRAM, so it is position-independent: PC-relative literals only.
 */
#include "te_board.h"

#if defined(TE_BOARD_RP2040_BOOT2)

__attribute__((section(".boot2"), naked, used)) void te_rp2040_boot2(void)
{
    __asm__ volatile(
        "ldr r3, =0x18000000\n\t"   /* XIP_SSI base */
        "movs r1, #0\n\t"
        "str r1, [r3, #0x08]\n\t"   /* SSIENR = 0: off while configuring */
        "movs r1, #4\n\t"
        "str r1, [r3, #0x14]\n\t"   /* BAUDR: clk_sys / 4 */
        "ldr r1, =0x001F0300\n\t"   /* CTRLR0: DFS_32 = 31 (32-bit frames), TMOD = 3 (EEPROM read), SPI_FRF = 0 */
        "str r1, [r3, #0x00]\n\t"
        "ldr r1, =0x03000218\n\t"   /* SPI_CTRLR0: XIP_CMD = 0x03, INST_L = 8 bits, ADDR_L = 24 bits, standard SPI */
        "ldr r2, =0x180000F4\n\t"
        "str r1, [r2, #0]\n\t"
        "movs r1, #0\n\t"
        "str r1, [r3, #0x04]\n\t"   /* CTRLR1: NDF = 0, one 32-bit frame per access */
        "movs r1, #1\n\t"
        "str r1, [r3, #0x08]\n\t"   /* SSIENR = 1 */
        "ldr r0, =0x10000100\n\t"   /* the image's vector table */
        "ldr r1, =0xE000ED08\n\t"
        "str r0, [r1, #0]\n\t"      /* VTOR */
        "ldmia r0!, {r1, r2}\n\t"   /* initial SP, reset handler */
        "msr msp, r1\n\t"
        "bx r2\n\t"
        ".ltorg\n\t");
}

#else
typedef int te_rp2040_boot2_unused_t; /* other boards: nothing here */
#endif
