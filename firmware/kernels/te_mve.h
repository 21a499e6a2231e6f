/* tinyedge firmware: the Helium (M-profile Vector Extension, integer MVE) paths of CONV_2D,
 * DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD and AVERAGE_POOL_2D (te_mve_conv.c, te_mve_depthwise.c,
 * te_mve_fc.c, te_mve_elementwise.c, te_mve_pool.c), for
 * cores with MVE (Cortex-M55, -mcpu=cortex-m55).  Internal to firmware/kernels.
 *
 * Each te_mve_* returns 1 when it ran the op, 0 when the shape is not one it takes (the caller
 * then runs its own path); the dense kernels call it at entry.  Without MVE none is declared
 * and the three .c files compile to nothing.
 *
 * Requantization, 4 lanes at a time, is bit-exact with te_mbqm_pos (te_kernels.h), that is
 * with TFLite Micro's MultiplyByQuantizedMultiplier (double rounding) for multipliers in
 * [0, 2^31) and shifts in -31..30:
 *  - left shift: VSHL by max(shift, 0), a non-saturating (wrapping) shift, as te_mbqm_pos's
 *    (uint32_t)x << shift;
 *  - SaturatingRoundingDoublingHighMul: VQRDMULH = sat((2ab + 2^31) >> 32) = floor((ab + 2^30) /
 *    2^31), saturated only for a = b = INT32_MIN (where TFLite also returns INT32_MAX; a
 *    multiplier is never negative).  TFLite computes trunc((ab + nudge) / 2^31) with nudge 2^30
 *    for ab >= 0 (the same floor) and 1 - 2^30 for ab < 0: with y = -ab > 0 that is
 *    -floor((y + 2^30 - 1) / 2^31) = -ceil((y - 2^30) / 2^31) = floor((ab + 2^30) / 2^31);
 *  - RoundingDivideByPOT(v, e), e = max(-shift, 0): VRSHL by -e of v + f, f = -1 when v < 0 and
 *    e > 0 (VAND of v with -e, arithmetic shift right 31), added saturating.  VRSHL by -e is
 *    floor((x + 2^(e-1)) / 2^e), computed without overflow (Arm ARM: integer arithmetic); for
 *    v >= 0 that is +1 exactly when the remainder is >= 2^(e-1), i.e. > mask >> 1; for v < 0,
 *    floor((v - 1 + 2^(e-1)) / 2^e) is +1 exactly when the remainder is >= 2^(e-1) + 1, i.e.
 *    > (mask >> 1) + 1, TFLite's threshold; at v = INT32_MIN the saturated v + f stays INT32_MIN
 *    and both give -2^(31-e).  e = 0: f = 0 and VRSHL by 0 is the identity.
 * The same sequence is CMSIS-NN's arm_requantize_mve_32x4 (its double-rounding build). */
#ifndef TE_MVE_H
#define TE_MVE_H

#include "te_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define TE_HAVE_MVE 1
#include <arm_mve.h>

int te_mve_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
int te_mve_depthwise_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
int te_mve_add_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
int te_mve_fully_connected_s8(const te_fc_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
int te_mve_avg_pool_s8(const te_pool_params_t *p, const int8_t *in, int8_t *out);

/* clamp(MultiplyByQuantizedMultiplier(acc, mult, shift) + oo, lo, hi) per lane (see above) */
static inline int32x4_t te_mve_requant(int32x4_t acc, int32x4_t mult, int32x4_t shift, int32_t oo, int32x4_t lo,
                                       int32x4_t hi)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t nr = vminq_s32(shift, zero);            /* -e */
    int32x4_t v = vqrdmulhq_s32(vshlq_s32(acc, vmaxq_s32(shift, zero)), mult);
    v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, nr), 31));
    v = vrshlq_s32(v, nr);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(v, oo), lo), hi);
}

/* the same when every lane's shift is <= 0 (nr = shift): no left shift */
static inline int32x4_t te_mve_requant_r(int32x4_t acc, int32x4_t mult, int32x4_t nr, int32_t oo, int32x4_t lo,
                                         int32x4_t hi)
{
    int32x4_t v = vqrdmulhq_s32(acc, mult);
    v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, nr), 31));
    v = vrshlq_s32(v, nr);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(v, oo), lo), hi);
}

/* 1 when no shift of the n channels is a left shift */
static inline int te_mve_right_only(const int8_t *shift, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        if (shift[i] > 0) {
            return 0;
        }
    }
    return 1;
}
#endif

#endif /* TE_MVE_H */
