/* tinyedge firmware: FULLY_CONNECTED int8 on Helium (MVE); see te_mve.h. */
#include "te_mve.h"

#ifdef TE_HAVE_MVE

/* four rows (r0..r3) against x: per 16 inputs one input load, four weight loads and four
 * VMLADAVA (64 MACs in 9 instructions); the last n % 16 predicated */
static inline int32x4_t te_mve_dot4(const int8_t *x, const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                    const int8_t *r3, int32_t n, int32x4_t acc)
{
    int32_t a0 = vgetq_lane_s32(acc, 0), a1 = vgetq_lane_s32(acc, 1);
    int32_t a2 = vgetq_lane_s32(acc, 2), a3 = vgetq_lane_s32(acc, 3);
    int32_t i;
    for (i = 0; i + 16 <= n; i += 16) {
        const int8x16_t vx = vldrbq_s8(x + i);
        a0 = vmladavaq_s8(a0, vx, vldrbq_s8(r0 + i));
        a1 = vmladavaq_s8(a1, vx, vldrbq_s8(r1 + i));
        a2 = vmladavaq_s8(a2, vx, vldrbq_s8(r2 + i));
        a3 = vmladavaq_s8(a3, vx, vldrbq_s8(r3 + i));
    }
    if (i < n) {
        const mve_pred16_t pr = vctp8q((uint32_t)(n - i));
        const int8x16_t vx = vldrbq_z_s8(x + i, pr);
        a0 = vmladavaq_s8(a0, vx, vldrbq_z_s8(r0 + i, pr));
        a1 = vmladavaq_s8(a1, vx, vldrbq_z_s8(r1 + i, pr));
        a2 = vmladavaq_s8(a2, vx, vldrbq_z_s8(r2 + i, pr));
        a3 = vmladavaq_s8(a3, vx, vldrbq_z_s8(r3 + i, pr));
    }
    acc = vsetq_lane_s32(a0, acc, 0);
    acc = vsetq_lane_s32(a1, acc, 1);
    acc = vsetq_lane_s32(a2, acc, 2);
    return vsetq_lane_s32(a3, acc, 3);
}

int te_mve_fully_connected_s8(const te_fc_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t n = p->in_n, m = p->out_n;
    const int32_t oo = p->out_offset;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int right = te_mve_right_only(p->shift, p->per_channel ? m : 1);
    int32x4_t mult = vdupq_n_s32(p->mult[0]), shift = vdupq_n_s32(p->shift[0]);
    int32_t b, o, j;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * n;
        int8_t *y = out + b * m;
        for (o = 0; o + 4 <= m; o += 4) {
            const int8_t *w = p->weights + o * n;
            int32x4_t acc = te_mve_dot4(x, w, w + n, w + 2 * n, w + 3 * n, n, vldrwq_s32(p->eff_bias + o));
            if (p->per_channel) {
                mult = vldrwq_s32(p->mult + o);
                shift = vldrbq_s32(p->shift + o);
            }
            acc = right ? te_mve_requant_r(acc, mult, shift, oo, lo, hi) : te_mve_requant(acc, mult, shift, oo, lo, hi);
            vstrbq_s32(y + o, acc);
        }
        if (o < m) {
            /* the last 1-3 rows: the group repeats its last row; only its rows are stored */
            const int32_t left = m - o;
            int32_t idx[4], mu[4], sh[4], eb[4];
            int32x4_t acc;
            for (j = 0; j < 4; ++j) {
                idx[j] = o + (j < left ? j : left - 1);
                mu[j] = p->mult[p->per_channel ? idx[j] : 0];
                sh[j] = p->shift[p->per_channel ? idx[j] : 0];
                eb[j] = p->eff_bias[idx[j]];
            }
            acc = te_mve_dot4(x, p->weights + idx[0] * n, p->weights + idx[1] * n, p->weights + idx[2] * n,
                              p->weights + idx[3] * n, n, vldrwq_s32(eb));
            acc = te_mve_requant(acc, vldrwq_s32(mu), vldrwq_s32(sh), oo, lo, hi);
            vstrbq_p_s32(y + o, acc, vctp32q((uint32_t)left));
        }
    }
    return 1;
}

#else
typedef int te_mve_fc_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
