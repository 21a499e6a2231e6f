/* tinyedge firmware: FULLY_CONNECTED int8 kernels (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"
#include "te_mve.h"

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
#ifdef TE_HAVE_MVE
    if (te_mve_fully_connected_s8(p, in, out)) {
        return;
    }
#endif
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

void te_fully_connected_s8_w(const te_fc_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                             const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_fc_params_t q = *p;
    int32_t o0;
    q.weights = scratch;
    if (p->batches != 1) {
        block = p->out_n;   /* rows of every batch are contiguous only when decoded whole */
    }
    for (o0 = 0; o0 < p->out_n; o0 += block) {
        const int32_t nb = p->out_n - o0 < block ? p->out_n - o0 : block;
        te_weights_decode(w, o0, o0 + nb, scratch);
        q.out_n = nb;
        q.eff_bias = p->eff_bias + o0;
        if (p->per_channel) {
            q.mult = p->mult + o0;
            q.shift = p->shift + o0;
        }
        te_fully_connected_s8(&q, in, out + o0);
    }
}

/* ---- FULLY_CONNECTED on palettized / int4 weights, decoded as they are used --------------- */

/* one 4-bit coded row against x (in 16-bit lanes in xq when DSP): per 8 weights one index load,
 * 8 table lookups packed into lanes and 4 SMLAD (about 3.4 instructions per weight against 1.4
 * dense: a weight of a fully connected layer is used once per batch, so its decode is never
 * amortised).  `src` byte-aligned. */
static int32_t te_fc_row4(const int8_t *x, const uint32_t *xq, const uint8_t *src, const int8_t *t, int32_t n)
{
    int32_t acc = 0, j = 0;
#ifdef TE_HAVE_DOT4_ROWS
    if (xq != NULL) {
        for (; j + 8 <= n; j += 8) {
            uint32_t v;
            memcpy(&v, src + (j >> 1), 4);
            acc = te_smlad(xq[(j >> 1)], te_pack16(t[v & 15u], t[(v >> 8) & 15u]), acc);
            acc = te_smlad(xq[(j >> 1) + 1], te_pack16(t[(v >> 4) & 15u], t[(v >> 12) & 15u]), acc);
            acc = te_smlad(xq[(j >> 1) + 2], te_pack16(t[(v >> 16) & 15u], t[(v >> 24) & 15u]), acc);
            acc = te_smlad(xq[(j >> 1) + 3], te_pack16(t[(v >> 20) & 15u], t[v >> 28]), acc);
        }
    }
#else
    (void)xq;
#endif
    for (; j < n; ++j) {
        acc += x[j] * t[(src[j >> 1] >> ((j & 1) * 4)) & 15u];
    }
    return acc;
}

static int32_t te_fc_row2(const int8_t *x, const uint32_t *xq, const uint8_t *src, const int8_t *t, int32_t n)
{
    int32_t acc = 0, j = 0;
#ifdef TE_HAVE_DOT4_ROWS
    if (xq != NULL) {
        for (; j + 4 <= n; j += 4) {
            const uint32_t b = src[j >> 2];
            acc = te_smlad(xq[(j >> 1)], te_pack16(t[b & 3u], t[(b >> 4) & 3u]), acc);
            acc = te_smlad(xq[(j >> 1) + 1], te_pack16(t[(b >> 2) & 3u], t[b >> 6]), acc);
        }
    }
#else
    (void)xq;
#endif
    for (; j < n; ++j) {
        acc += x[j] * t[(src[j >> 2] >> ((j & 3) * 2)) & 3u];
    }
    return acc;
}

void te_fully_connected_s8_pal(const te_fc_params_t *p, const te_weights_t *w, const int8_t *TE_RESTRICT in,
                               int8_t *TE_RESTRICT out)
{
    const int32_t n = p->in_n;
    const int32_t qs = p->per_channel ? 1 : 0;
    const int32_t bits = w->kind == TE_W_INT4 ? 4 : w->bits;
    const int32_t step = w->kind == TE_W_PALETTE && !w->shared_table ? 1 << w->bits : 0;
    const int stream = w->kind == TE_W_INT4 && w->shared_table;   /* row r from nibble r * n */
    int8_t tab[16];
    int32_t b, o, q;
#ifdef TE_HAVE_DOT4_ROWS
    uint32_t xbuf[TE_FC_XMAX / 2];
    const uint32_t *xq = (n & 3) == 0 && n <= TE_FC_XMAX ? xbuf : NULL;
#else
    const uint32_t *xq = NULL;
#endif
    if (stream) {
        for (q = 0; q < 16; ++q) {
            tab[q] = (int8_t)(((q ^ 8) - 8) * w->table[0]);
        }
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * n;
        const uint8_t *src = w->data;
        const int8_t *pal = w->table;
#ifdef TE_HAVE_DOT4_ROWS
        if (xq != NULL) {
            for (q = 0; q < (n >> 2); ++q) {
                const uint32_t v = te_load32(x + 4 * q);
                xbuf[2 * q] = te_sxtb16(v);
                xbuf[2 * q + 1] = te_sxtb16_ror8(v);
            }
        }
#endif
        for (o = 0; o < p->out_n; ++o) {
            int32_t acc = p->eff_bias[o];
            if (stream) {
                const int32_t k0 = o * n;
                if ((k0 & 1) == 0) {
                    acc += te_fc_row4(x, xq, w->data + (k0 >> 1), tab, n);
                } else {
                    for (q = 0; q < n; ++q) {
                        const int32_t k = k0 + q;
                        acc += x[q] * tab[(w->data[k >> 1] >> ((k & 1) * 4)) & 15u];
                    }
                }
            } else if (!te_pal_row_coded(w, o)) {
                acc += te_dot(x, (const int8_t *)src, n);
                src += n;
            } else {
                const int8_t *t = pal;
                if (w->kind == TE_W_INT4) {
                    for (q = 0; q < 16; ++q) {
                        tab[q] = (int8_t)(((q ^ 8) - 8) * w->table[o]);
                    }
                    t = tab;
                }
                acc += bits == 4 ? te_fc_row4(x, xq, src, t, n) : te_fc_row2(x, xq, src, t, n);
                src += te_pal_row_bytes(w, o);
                pal += step;
            }
            out[b * p->out_n + o] = te_requant(acc, p->mult[o * qs], p->shift[o * qs], p->out_offset, p->act_min,
                                               p->act_max);
        }
    }
}
