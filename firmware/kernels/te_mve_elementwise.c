/* tinyedge firmware: ADD (same shapes) int8 on Helium (MVE); see te_mve.h.
 *
 * Four elements a pass in 32-bit lanes, with TFLite's arithmetic: each input plus its offset,
 * shifted left by left_shift, rescaled (MultiplyByQuantizedMultiplier), summed, rescaled to the
 * output, plus its offset, clamped; the rescales are te_mve_requant's (bit-exact, see te_mve.h)
 * with the output offset 0 and the clamp the whole int32 range for the two input ones. */
#include "te_mve.h"

#ifdef TE_HAVE_MVE

/* MultiplyByQuantizedMultiplier of v by m and a right shift by e = -ne >= 0 (te_mve_requant's
 * sequence with scalar operands; the -1 for negative v only when e > 0: fl = 1, else 0) */
static inline int32x4_t te_mve_add_rq(int32x4_t v, int32_t m, int32_t ne, int32_t fl)
{
    v = vqrdmulhq_n_s32(v, m);
    v = vqaddq_s32(v, vmulq_n_s32(vshrq_n_s32(v, 31), fl));
    return vrshlq_n_s32(v, ne);
}

/* one input of four elements: (x + offset) << ls, rescaled */
static inline int32x4_t te_mve_add_in(int32x4_t x, int32_t off, int32_t ls, int32_t m, int32_t ne, int32_t fl)
{
    return te_mve_add_rq(vshlq_r_s32(vaddq_n_s32(x, off), ls), m, ne, fl);
}

int te_mve_add_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    const int32_t n = p->size, ls = p->left_shift;
    const int32_t o1 = p->in1_offset, o2 = p->in2_offset, oo = p->out_offset;
    const int32_t m1 = p->in1_mult, m2 = p->in2_mult, mo = p->out_mult;
    const int32_t s1 = p->in1_shift, s2 = p->in2_shift, so = p->out_shift;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32_t i;
    if (p->broadcast) {
        return 0;
    }
    if (s1 <= 0 && s2 <= 0 && so <= 0) {
        /* every rescale a right shift (TFLite's ADD: multipliers below one): scalar operands, no
         * vector constants beyond the clamp; the last n % 4 elements predicated */
        const int32_t f1 = s1 < 0, f2 = s2 < 0, fo = so < 0;
        for (i = 0; i + 4 <= n; i += 4) {
            const int32x4_t sum = vaddq_s32(te_mve_add_in(vldrbq_s32(in1 + i), o1, ls, m1, s1, f1),
                                            te_mve_add_in(vldrbq_s32(in2 + i), o2, ls, m2, s2, f2));
            const int32x4_t v = vaddq_n_s32(te_mve_add_rq(sum, mo, so, fo), oo);
            vstrbq_s32(out + i, vminq_s32(vmaxq_s32(v, lo), hi));
        }
        if (i < n) {
            const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
            const int32x4_t sum = vaddq_s32(te_mve_add_in(vldrbq_z_s32(in1 + i, pr), o1, ls, m1, s1, f1),
                                            te_mve_add_in(vldrbq_z_s32(in2 + i, pr), o2, ls, m2, s2, f2));
            const int32x4_t v = vaddq_n_s32(te_mve_add_rq(sum, mo, so, fo), oo);
            vstrbq_p_s32(out + i, vminq_s32(vmaxq_s32(v, lo), hi), pr);
        }
        return 1;
    }
    {
        const int32x4_t lsv = vdupq_n_s32(ls);
        const int32x4_t m1v = vdupq_n_s32(m1), s1v = vdupq_n_s32(s1);
        const int32x4_t m2v = vdupq_n_s32(m2), s2v = vdupq_n_s32(s2);
        const int32x4_t mov = vdupq_n_s32(mo), sov = vdupq_n_s32(so);
        const int32x4_t wmin = vdupq_n_s32(INT32_MIN), wmax = vdupq_n_s32(INT32_MAX);
        for (i = 0; i < n; i += 4) {
            const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
            const int32x4_t x1 = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in1 + i, pr), o1), lsv);
            const int32x4_t x2 = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in2 + i, pr), o2), lsv);
            const int32x4_t sum = vaddq_s32(te_mve_requant(x1, m1v, s1v, 0, wmin, wmax),
                                            te_mve_requant(x2, m2v, s2v, 0, wmin, wmax));
            vstrbq_p_s32(out + i, te_mve_requant(sum, mov, sov, oo, lo, hi), pr);
        }
    }
    return 1;
}

#else
typedef int te_mve_elementwise_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
