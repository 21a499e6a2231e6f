/* tinyedge firmware: FULLY_CONNECTED int8 kernels (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"

/* ---- FULLY_CONNECTED --------------------------------------------------- */

#ifdef TE_HAVE_DOT4_ROWS
#define TE_FC_XMAX 1024 /* input length whose 16-bit lanes (2 * TE_FC_XMAX bytes) go on the stack */

/* 4 output rows (row c at w + c * ws) against an input already in 16-bit lanes (xq: even, odd
 * per 4 bytes), two groups per loop pass (an odd count enters at the second): 16 MACs in
 * 22 instructions.  groups > 0. */
static inline void te_fc4_lanes(const uint32_t *xq, const int8_t *w, int32_t ws, int32_t groups, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *wa = w;
    const int8_t *wb = w + 2 * ws;
    int32_t pairs = (groups + 1) >> 1;
    const int32_t odd = groups & 1;
    uint32_t xe, xo, wv, t;
#define TE_FC4_GROUP \
    "ldrd   %[xe], %[xo], [%[x]], #8\n\t" \
    "ldr    %[wv], [%[wa], %[ws]]\n\t" \
    TE_ASM_W4_MACS
    __asm__ volatile(
        "ldr    %[t], %[odd]\n\t"
        "cmp    %[t], #0\n\t"
        "bne    3f\n\t"
        "1:\n\t"
        TE_FC4_GROUP
        "3:\n\t"
        TE_FC4_GROUP
        "subs   %[g], %[g], #1\n\t"
        "bne    1b\n\t"
        : [x] "+r"(xq), [wa] "+r"(wa), [wb] "+r"(wb), [g] "+r"(pairs), [a0] "+r"(a0), [a1] "+r"(a1),
          [a2] "+r"(a2), [a3] "+r"(a3), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv), [t] "=&r"(t)
        : [ws] "r"(ws), [odd] "m"(odd)
        : "cc", "memory");
#undef TE_FC4_GROUP
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

void te_fully_connected_s8(const te_fc_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t qs = p->per_channel ? 1 : 0;
    int32_t b, o;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * p->in_n;
        int8_t *y = out + b * p->out_n;
        o = 0;
#ifdef TE_HAVE_DOT4_ROWS
        if (p->in_n >= 8 && p->in_n <= TE_FC_XMAX && p->out_n >= 4) {
            uint32_t xq[TE_FC_XMAX / 2];
            const int32_t n = p->in_n, groups = n >> 2;
            int32_t i;
            for (i = 0; i < groups; ++i) {
                const uint32_t v = te_load32(x + 4 * i);
                xq[2 * i] = te_sxtb16(v);
                xq[2 * i + 1] = te_sxtb16_ror8(v);
            }
            for (; o + 4 <= p->out_n; o += 4) {
                const int8_t *w = p->weights + o * n;
                int32_t a[4];
                int32_t j;
                for (j = 0; j < 4; ++j) {
                    a[j] = p->eff_bias[o + j];
                }
                te_fc4_lanes(xq, w, n, groups, a);
                for (i = 4 * groups; i < n; ++i) {
                    const int32_t xv = x[i];
                    a[0] += xv * w[i];
                    a[1] += xv * w[n + i];
                    a[2] += xv * w[2 * n + i];
                    a[3] += xv * w[3 * n + i];
                }
                for (j = 0; j < 4; ++j) {
                    y[o + j] = te_requant(a[j], p->mult[(o + j) * qs], p->shift[(o + j) * qs], p->out_offset,
                                          p->act_min, p->act_max);
                }
            }
        }
#endif
        for (; o + 4 <= p->out_n; o += 4) {
            int32_t a[4];
            int32_t j;
            for (j = 0; j < 4; ++j) {
                a[j] = p->eff_bias[o + j];
            }
            te_dot4(x, p->weights + o * p->in_n, p->in_n, p->in_n, a);
            for (j = 0; j < 4; ++j) {
                y[o + j] = te_requant(a[j], p->mult[(o + j) * qs], p->shift[(o + j) * qs], p->out_offset, p->act_min, p->act_max);
            }
        }
        for (; o + 2 <= p->out_n; o += 2) {
            int32_t a0 = p->eff_bias[o], a1 = p->eff_bias[o + 1];
            te_dot2(x, p->weights + o * p->in_n, p->weights + (o + 1) * p->in_n, p->in_n, &a0, &a1);
            y[o] = te_requant(a0, p->mult[(o) * qs], p->shift[(o) * qs], p->out_offset, p->act_min, p->act_max);
            y[o + 1] = te_requant(a1, p->mult[(o + 1) * qs], p->shift[(o + 1) * qs], p->out_offset, p->act_min, p->act_max);
        }
        for (; o < p->out_n; ++o) {
            const int32_t acc = p->eff_bias[o] + te_dot(x, p->weights + o * p->in_n, p->in_n);
            y[o] = te_requant(acc, p->mult[(o) * qs], p->shift[(o) * qs], p->out_offset, p->act_min, p->act_max);
        }
    }
}
