/* tinyedge firmware: FULLY_CONNECTED int8 on Helium (MVE); see te_mve.h. */
#include "te_mve.h"

#ifdef TE_HAVE_MVE

/* four rows (r0..r3) against x: per 16 inputs one input load, four weight loads and four
 * VMLADAVA in a tail-predicated low-overhead loop (64 MACs in 10 instructions; inline assembly as
 * in te_mve_conv.c) */
static inline int32x4_t te_mve_dot4(const int8_t *x, const int8_t *r0, const int8_t *r1, const int8_t *r2,
                                    const int8_t *r3, int32_t n, int32x4_t acc)
{
    int32_t a0, a1, a2, a3;
    int32x4_t sums = vdupq_n_s32(0);
    __asm__ volatile(
        "   mov         %[a0], #0\n"
        "   mov         %[a1], #0\n"
        "   mov         %[a2], #0\n"
        "   mov         %[a3], #0\n"
        "   wlstp.8     lr, %[n], 1f\n"
        "2:\n"
        "   vldrb.8     q0, [%[x]], #16\n"
        "   vldrb.8     q1, [%[r0]], #16\n"
        "   vmladava.s8 %[a0], q0, q1\n"
        "   vldrb.8     q1, [%[r1]], #16\n"
        "   vmladava.s8 %[a1], q0, q1\n"
        "   vldrb.8     q1, [%[r2]], #16\n"
        "   vmladava.s8 %[a2], q0, q1\n"
        "   vldrb.8     q1, [%[r3]], #16\n"
        "   vmladava.s8 %[a3], q0, q1\n"
        "   letp        lr, 2b\n"
        "1:\n"
        : [x] "+r"(x), [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [r3] "+r"(r3), [a0] "=&Te"(a0),
          [a1] "=&Te"(a1), [a2] "=&Te"(a2), [a3] "=&Te"(a3)
        : [n] "r"(n)
        : "q0", "q1", "memory", "r14");
    sums = vsetq_lane_s32(a0, sums, 0);
    sums = vsetq_lane_s32(a1, sums, 1);
    sums = vsetq_lane_s32(a2, sums, 2);
    sums = vsetq_lane_s32(a3, sums, 3);
    return vaddq_s32(acc, sums);
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
