/* tinyedge firmware: ADD (same shapes) int8 on Helium (MVE); see te_mve.h.
 *
 * Four elements a pass in 32-bit lanes, with TFLite's arithmetic: each input plus its offset,
 * shifted left by left_shift, rescaled (MultiplyByQuantizedMultiplier), summed, rescaled to the
 * output, plus its offset, clamped; the rescales are te_mve_requant's (bit-exact, see te_mve.h)
 * with the output offset 0 and the clamp the whole int32 range for the two input ones. */
#include "te_mve.h"

#ifdef TE_HAVE_MVE

int te_mve_add_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    const int32_t n = p->size;
    const int32x4_t ls = vdupq_n_s32(p->left_shift);
    const int32x4_t m1 = vdupq_n_s32(p->in1_mult), s1 = vdupq_n_s32(p->in1_shift);
    const int32x4_t m2 = vdupq_n_s32(p->in2_mult), s2 = vdupq_n_s32(p->in2_shift);
    const int32x4_t mo = vdupq_n_s32(p->out_mult), so = vdupq_n_s32(p->out_shift);
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int32x4_t wmin = vdupq_n_s32(INT32_MIN), wmax = vdupq_n_s32(INT32_MAX);
    int32_t i;
    if (p->broadcast) {
        return 0;
    }
    for (i = 0; i < n; i += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
        const int32x4_t x1 = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in1 + i, pr), p->in1_offset), ls);
        const int32x4_t x2 = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in2 + i, pr), p->in2_offset), ls);
        const int32x4_t sum = vaddq_s32(te_mve_requant(x1, m1, s1, 0, wmin, wmax),
                                        te_mve_requant(x2, m2, s2, 0, wmin, wmax));
        vstrbq_p_s32(out + i, te_mve_requant(sum, mo, so, p->out_offset, lo, hi), pr);
    }
    return 1;
}

#else
typedef int te_mve_elementwise_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
