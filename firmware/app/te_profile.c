/* tinyedge firmware: the per-op profiler (see te_profile.h).  Static state
 * only; compiled to nothing unless TE_PROFILE is defined. */
#include "te_profile.h"

#if defined(TE_PROFILE)

#include "te_hal.h"

/* The calibration pairs use this op slot: never an op of the model. */
#define TE_PROFILE_CAL_OP 0xFFFFFFFFu

/* A byte-wise CRC-32 table (1 KB of RAM, profile builds only), made on first
 * use: the CRC runs of big models take a third of the nibble version's time. */
static uint32_t te_prof_crc_table[256];
static uint8_t te_prof_crc_ready;

/* The CRC-32 of n more bytes after `prev` (the CRC of the bytes before them; 0 for none). */
static uint32_t te_prof_crc32(uint32_t prev, const uint8_t *p, uint32_t n)
{
    uint32_t crc = ~prev;
    if (!te_prof_crc_ready) {
        uint32_t i, k;
        for (i = 0; i < 256u; i++) {
            uint32_t c = i;
            for (k = 0; k < 8u; k++) {
                c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
            }
            te_prof_crc_table[i] = c;
        }
        te_prof_crc_ready = 1u;
    }
    while (n--) {
        crc = (crc >> 8) ^ te_prof_crc_table[(crc ^ *p++) & 0xFFu];
    }
    return ~crc;
}

static te_profile_op_t te_prof_ops[TE_PROFILE_MAX_OPS];
static te_profile_op_t te_prof_cal;
static uint64_t te_prof_t0;
static uint64_t te_prof_cal_total;
static uint32_t te_prof_n;
static uint8_t te_prof_recording;
static uint8_t te_prof_mode;
static uint8_t te_prof_overflow;
static uint16_t te_prof_dump_op = TE_PROFILE_NO_DUMP;
static te_profile_dump_fn te_prof_dump;

void te_profile_begin(uint32_t op)
{
    (void)op;
    if (!te_prof_recording) {
        return;
    }
    te_prof_t0 = te_hal_counter();
}

void te_profile_end(uint32_t op, const void *out, uint32_t bytes)
{
    uint64_t t1;
    te_profile_op_t *rec;
    if (!te_prof_recording) {
        return;
    }
    t1 = te_hal_counter();
    if (op == TE_PROFILE_CAL_OP) {
        rec = &te_prof_cal;
    } else if (op < TE_PROFILE_MAX_OPS) {
        rec = &te_prof_ops[op];
        if (op + 1u > te_prof_n) {
            te_prof_n = op + 1u;
        }
    } else {
        te_prof_overflow = 1u;
        return;
    }
    rec->raw = t1 - te_prof_t0;
    rec->bytes = bytes;
    rec->crc = ((te_prof_mode & TE_PROFILE_MODE_CRC) && out != 0 && bytes > 0u)
                   ? te_prof_crc32(0u, (const uint8_t *)out, bytes) : 0u;
    if (op != TE_PROFILE_CAL_OP && op == (uint32_t)te_prof_dump_op && te_prof_dump != 0) {
        te_prof_dump(op, out, bytes);
    }
}

void te_profile_output(uint32_t op, const void *out, uint32_t bytes)
{
    te_profile_op_t *rec;
    if (!te_prof_recording || op >= TE_PROFILE_MAX_OPS) {
        return;
    }
    rec = &te_prof_ops[op];
    if ((te_prof_mode & TE_PROFILE_MODE_CRC) && out != 0 && bytes > 0u) {
        rec->crc = te_prof_crc32(rec->crc, (const uint8_t *)out, bytes);
    }
    rec->bytes += bytes;
    if (op == (uint32_t)te_prof_dump_op && te_prof_dump != 0) {
        te_prof_dump(op, out, bytes);
    }
}

void te_profile_configure(uint8_t mode, uint16_t dump_op, te_profile_dump_fn dump)
{
    te_prof_mode = mode;
    te_prof_dump_op = dump_op;
    te_prof_dump = dump;
}

uint8_t te_profile_enabled(void)
{
    return (uint8_t)(te_prof_mode & TE_PROFILE_MODE_ON);
}

void te_profile_start(void)
{
    uint32_t i;
    for (i = 0; i < TE_PROFILE_MAX_OPS; i++) {
        te_prof_ops[i].raw = 0u;
        te_prof_ops[i].crc = 0u;
        te_prof_ops[i].bytes = 0u;
    }
    te_prof_n = 0u;
    te_prof_overflow = 0u;
    te_prof_recording = 1u;
    /* The empty pair: the same calls, the same counter reads, nothing between. */
    te_prof_cal_total = 0u;
    for (i = 0; i < TE_PROFILE_CAL_PAIRS; i++) {
        te_profile_begin(TE_PROFILE_CAL_OP);
        te_profile_end(TE_PROFILE_CAL_OP, 0, 0u);
        te_prof_cal_total += te_prof_cal.raw;
    }
}

void te_profile_stop(void)
{
    te_prof_recording = 0u;
}

uint32_t te_profile_num_ops(void)
{
    return te_prof_n;
}

const te_profile_op_t *te_profile_ops(void)
{
    return te_prof_ops;
}

uint64_t te_profile_cal_sum(void)
{
    return te_prof_cal_total;
}

uint8_t te_profile_overflow(void)
{
    return te_prof_overflow;
}

#else

typedef int te_profile_unused_t; /* ISO C wants a translation unit to declare something */

#endif /* TE_PROFILE */
