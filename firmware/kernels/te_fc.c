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

/* ---- FULLY_CONNECTED on weights re-ordered at generation time (te_fully_connected_s8_paired) ----
 *
 * Rows go in groups of 4 (pairs A = rows 0/1, B = rows 2/3), inputs in groups of 4 (k..k+3), whose
 * 16-bit lanes are xe = (x[k], x[k+2]) and xo = (x[k+1], x[k+3]).  Each group of 4 x 4 weights is 4
 * words: A for xe, B for xe, A for xo, B for xo; a pair's word holds, per lane, the first row's
 * weight + 128 (unsigned, low byte) and the second row's weight (signed, high byte).  As a signed
 * 16-bit lane that is 256 * w1 + (w0 + 128), so one SMLAD of the raw word accumulates
 * f = 256 * S1 + S0' and one SMLAD of its UXTB16 (the low bytes) accumulates e = S0' (S0' = S0 +
 * 128 * sum x): 4 MACs in 4 instructions.  S1 = (f - e) >> 8 exactly (modulo 2^32), since the
 * generator uses this layout only when 128 * sum |w1| < 2^23 for every second row. */
static int32_t te_fc_pair_sum_x(const int8_t *x, int32_t n, uint32_t *xq)
{
    int32_t sx = 0, i;
#ifdef TE_HAVE_DOT4_ROWS
    for (i = 0; i < (n >> 2); ++i) {
        const uint32_t v = te_load32(x + 4 * i);
        const uint32_t e = te_sxtb16(v), o = te_sxtb16_ror8(v);
        xq[2 * i] = e;
        xq[2 * i + 1] = o;
        sx = te_smlad(e, 0x00010001u, sx);
        sx = te_smlad(o, 0x00010001u, sx);
    }
    if (n & 3) {   /* the last group, zero padded */
        int8_t last[4] = {0, 0, 0, 0};
        memcpy(last, x + 4 * i, (size_t)(n & 3));
        const uint32_t v = te_load32(last);
        const uint32_t e = te_sxtb16(v), o = te_sxtb16_ror8(v);
        xq[2 * i] = e;
        xq[2 * i + 1] = o;
        sx = te_smlad(e, 0x00010001u, sx);
        sx = te_smlad(o, 0x00010001u, sx);
    }
#else
    (void)xq;
    for (i = 0; i < n; ++i) {
        sx += x[i];
    }
#endif
    return sx;
}

#ifdef TE_HAVE_DOT4_ROWS
#define TE_FCP_GROUP \
    "ldrd   %[xe], %[xo], [%[x]], #8\n\t" \
    "ldrd   %[wa], %[wb], [%[w]], #8\n\t" \
    "uxtb16 %[t], %[wa]\n\t" \
    "smlad  %[f0], %[xe], %[wa], %[f0]\n\t" \
    "smlad  %[e0], %[xe], %[t], %[e0]\n\t" \
    "uxtb16 %[t], %[wb]\n\t" \
    "smlad  %[f1], %[xe], %[wb], %[f1]\n\t" \
    "smlad  %[e1], %[xe], %[t], %[e1]\n\t" \
    "ldrd   %[wa], %[wb], [%[w]], #8\n\t" \
    "uxtb16 %[t], %[wa]\n\t" \
    "smlad  %[f0], %[xo], %[wa], %[f0]\n\t" \
    "smlad  %[e0], %[xo], %[t], %[e0]\n\t" \
    "uxtb16 %[t], %[wb]\n\t" \
    "smlad  %[f1], %[xo], %[wb], %[f1]\n\t" \
    "smlad  %[e1], %[xo], %[t], %[e1]\n\t"
#define TE_FCP_OPERANDS \
    : [x] "+r"(xq), [w] "+r"(w), [g] "+r"(pairs), [f0] "+r"(f0), [e0] "+r"(e0), [f1] "+r"(f1), \
      [e1] "+r"(e1), [xe] "=&r"(xe), [xo] "=&r"(xo), [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t) \
    : \
    : "cc", "memory"
/* one row group over `groups` > 0 input groups; returns the weights after it */
static inline const int8_t *te_fc_pair_rows(const uint32_t *xq, const int8_t *w, int32_t groups, int32_t *acc)
{
    int32_t f0 = acc[0], e0 = acc[1], f1 = acc[2], e1 = acc[3];
    int32_t pairs = groups >> 1;
    uint32_t xe, xo, wa, wb, t;
    if (groups & 1) {
        __asm__ volatile(TE_FCP_GROUP TE_FCP_OPERANDS);
    }
    if (pairs > 0) {
        __asm__ volatile("1:\n\t" TE_FCP_GROUP TE_FCP_GROUP "subs   %[g], %[g], #1\n\t"
                         "bne    1b\n\t" TE_FCP_OPERANDS);
    }
    acc[0] = f0;
    acc[1] = e0;
    acc[2] = f1;
    acc[3] = e1;
    return w;
}
#undef TE_FCP_GROUP
#undef TE_FCP_OPERANDS
#else
static const int8_t *te_fc_pair_rows(const int8_t *x, int32_t n, const int8_t *w, int32_t groups, int32_t *acc)
{
    int32_t g, j, p, l;
    const uint8_t *u = (const uint8_t *)w;
    for (g = 0; g < groups; ++g, u += 16) {
        for (j = 0; j < 4; ++j) {        /* word j: parity j >> 1, pair j & 1 */
            const uint8_t *b = u + 4 * j;
            p = j & 1;
            for (l = 0; l < 2; ++l) {
                const int32_t k = 4 * g + 2 * l + (j >> 1);
                const int32_t xv = k < n ? x[k] : 0;
                const int32_t lo = b[2 * l], hi = (int8_t)b[2 * l + 1];
                /* modulo 2^32, as SMLAD */
                acc[2 * p] = (int32_t)((uint32_t)acc[2 * p] + (uint32_t)(xv * (hi * 256 + lo)));
                acc[2 * p + 1] += xv * lo;
            }
        }
    }
    return (const int8_t *)u;
}
#endif

/* FULLY_CONNECTED, one row at a time, compiled for size: for layers of a few thousand MACs (a
 * classifier head), where the paired kernel's code would cost more flash than its speed saves */
TE_SMALL void te_fully_connected_s8_small(const te_fc_params_t *p, const int8_t *TE_RESTRICT in,
                                          int8_t *TE_RESTRICT out)
{
    const int32_t qs = p->per_channel ? 1 : 0;
    int32_t b, o;
    for (b = 0; b < p->batches; ++b) {
        for (o = 0; o < p->out_n; ++o) {
            const int32_t acc = p->eff_bias[o] + te_dot(in + b * p->in_n, p->weights + o * p->in_n, p->in_n);
            out[b * p->out_n + o] = te_requant(acc, p->mult[o * qs], p->shift[o * qs], p->out_offset, p->act_min,
                                               p->act_max);
        }
    }
}

/* requantized and clamped output of accumulator `acc` */
static inline int8_t te_fc_out(int32_t acc, int32_t mult, int32_t shift, int32_t oo, int32_t lo, int32_t hi)
{
    const int32_t v = (shift < 0 ? te_rq_right(acc, mult, ~shift) : te_mbqm_pos(acc, mult, shift)) + oo;
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

void te_fully_connected_s8_paired(const te_fc_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t n = p->in_n, groups = (n + 3) >> 2, out_n = p->out_n;
    const int32_t qs = p->per_channel ? 1 : 0;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int32_t *mult = p->mult;
    const int8_t *shift = p->shift;
    const int32_t *bias = p->eff_bias;
    int32_t b, o, j;
#ifdef TE_HAVE_DOT4_ROWS
    uint32_t xq[TE_FC_XMAX / 2];
#else
    uint32_t *xq = NULL;
#endif
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * n;
        int8_t *y = out + b * out_n;
        const int8_t *w = p->weights;
        const int32_t c = -128 * te_fc_pair_sum_x(x, n, xq);
        for (o = 0; o < out_n; o += 4) {
            const int32_t m = out_n - o < 4 ? out_n - o : 4;   /* rows past out_n are zero padding */
            const int32_t *eb = bias + o;
            int32_t a[4], r[4], pad[4] = {0, 0, 0, 0};
            if (m < 4) {
                for (j = 0; j < m; ++j) {
                    pad[j] = eb[j];
                }
                eb = pad;
            }
            a[0] = a[1] = eb[0] + c;
            a[2] = a[3] = eb[2] + c;
#ifdef TE_HAVE_DOT4_ROWS
            w = te_fc_pair_rows(xq, w, groups, a);
#else
            w = te_fc_pair_rows(x, n, w, groups, a);
#endif
            r[0] = a[1];
            r[1] = eb[1] + ((int32_t)((uint32_t)a[0] - (uint32_t)a[1]) >> 8);
            r[2] = a[3];
            r[3] = eb[3] + ((int32_t)((uint32_t)a[2] - (uint32_t)a[3]) >> 8);
            if (m == 4) {
                const int32_t k = o * qs;
                y[o] = te_fc_out(r[0], mult[k], shift[k], oo, lo, hi);
                y[o + 1] = te_fc_out(r[1], mult[k + qs], shift[k + qs], oo, lo, hi);
                y[o + 2] = te_fc_out(r[2], mult[k + 2 * qs], shift[k + 2 * qs], oo, lo, hi);
                y[o + 3] = te_fc_out(r[3], mult[k + 3 * qs], shift[k + 3 * qs], oo, lo, hi);
            } else {
                for (j = 0; j < m; ++j) {
                    y[o + j] = te_fc_out(r[j], mult[(o + j) * qs], shift[(o + j) * qs], oo, lo, hi);
                }
            }
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
