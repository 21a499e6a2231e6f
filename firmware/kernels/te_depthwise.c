/* tinyedge firmware: DEPTHWISE_CONV_2D int8 kernels (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"
#include "te_mve.h"

/* ---- DEPTHWISE_CONV_2D ------------------------------------------------- */

#define TE_DW_BLOCK 32
#define TE_DW_TAPS 25  /* kernel taps handled by the tap-pointer path */
#define TE_DW_ZMAX 1024 /* channels handled by the tap-pointer path (zero-point row on the stack) */

/* one tap for four channels, lanes [c0,c2] and [c1,c3]: x at xb + c, weights at wp, then
 * wp += ws.  One asm block so the compiler keeps the ten instructions together in registers. */
#define TE_DW_TAP4(XB, C, WP, WS)                                                                   \
    do {                                                                                            \
        uint32_t xv_, xe_, wv_, we_;                                                                \
        __asm__ volatile("ldr    %[xv], [%[xb], %[cc]]\n\t"                                         \
                         "ldr    %[wv], [%[w]]\n\t"                                                \
                         "add    %[w], %[w], %[s]\n\t"                                              \
                         "sxtb16 %[xe], %[xv]\n\t"                                                 \
                         "sxtb16 %[xv], %[xv], ror #8\n\t"                                         \
                         "sxtb16 %[we], %[wv]\n\t"                                                 \
                         "sxtb16 %[wv], %[wv], ror #8\n\t"                                         \
                         "smlabb %[a0], %[xe], %[we], %[a0]\n\t"                                   \
                         "smlatt %[a2], %[xe], %[we], %[a2]\n\t"                                   \
                         "smlabb %[a1], %[xv], %[wv], %[a1]\n\t"                                   \
                         "smlatt %[a3], %[xv], %[wv], %[a3]\n\t"                                   \
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(WP),   \
                           [xv] "=&r"(xv_), [xe] "=&r"(xe_), [wv] "=&r"(wv_), [we] "=&r"(we_)          \
                         : [xb] "r"(XB), [cc] "r"(C), [s] "r"(WS)                                    \
                         : "memory");                                                               \
    } while (0)

/* `tapmask` (DSP tap-pointer path only, may be NULL): per group of 4 channels the taps where
 * any of the 4 has a non-zero weight (bit t); the others are skipped, exactly (zero weights) */
static void te_dw_impl(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out,
                       const uint32_t *tapmask)
{
#ifdef TE_HAVE_MVE
    if (te_mve_depthwise_conv2d_s8(p, in, out)) {   /* the zero-skipping tapmask is not needed there */
        return;
    }
#endif
#if !(defined(__ARM_FEATURE_DSP) && defined(__GNUC__))
    (void)tapmask;
#endif
    const int32_t span_h = (p->k_h - 1) * p->dil_h;
    const int32_t span_w = (p->k_w - 1) * p->dil_w;
    const int32_t oc_n = p->out_c;
    const int32_t m = p->depth_mult;
    int32_t b, oy, ox, c, ky, kx, j;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    const int32_t ntaps = p->k_h * p->k_w;
    const int use_taps = m == 1 && ntaps <= TE_DW_TAPS && oc_n <= TE_DW_ZMAX && oc_n >= 4;
    int8_t zbuf[TE_DW_ZMAX];
    const int fast = te_fast_requant(p->shift, oc_n, p->act_min, p->act_max);
    if (use_taps) {
        memset(zbuf, (unsigned char)(int8_t)(-p->in_offset), (size_t)oc_n);
    }
#endif
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int inside_y = iy0 >= 0 && iy0 + span_h < p->in_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int inside = inside_y && ix0 >= 0 && ix0 + span_w < p->in_w;
                int8_t *o = out + ((b * p->out_h + oy) * p->out_w + ox) * oc_n;
                if (m == 1) {
                    /* channels in blocks: the inner loop runs over contiguous channels */
                    int32_t acc[TE_DW_BLOCK];
                    int32_t ky0, ky1, kx0, kx1;
                    te_taps(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
                    te_taps(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
                    c = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
                    if (use_taps) {
                        /* every tap through a pointer; taps outside the input read a row of
                         * input zero points, which the folded bias cancels exactly */
                        const int8_t *tp[TE_DW_TAPS];
                        const int32_t *const eff = p->eff_bias;
                        const int32_t *const mult = p->mult;
                        const int8_t *const shift = p->shift;
                        const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
                        int32_t t = 0;
                        if (inside) {
                            const int8_t *row = in_b + (iy0 * p->in_w + ix0) * p->in_c;
                            const int32_t xs = p->dil_w * p->in_c, ys = p->dil_h * p->in_w * p->in_c;
                            for (ky = 0; ky < p->k_h; ++ky) {
                                const int8_t *x = row;
                                for (kx = 0; kx < p->k_w; ++kx) {
                                    tp[t++] = x;
                                    x += xs;
                                }
                                row += ys;
                            }
                        } else {
                            for (ky = 0; ky < p->k_h; ++ky) {
                                const int32_t iy = iy0 + ky * p->dil_h;
                                const int row_ok = (uint32_t)iy < (uint32_t)p->in_h;
                                for (kx = 0; kx < p->k_w; ++kx) {
                                    const int32_t ix = ix0 + kx * p->dil_w;
                                    tp[t++] = row_ok && (uint32_t)ix < (uint32_t)p->in_w
                                                  ? in_b + (iy * p->in_w + ix) * p->in_c
                                                  : zbuf;
                                }
                            }
                        }
                        if (tapmask != NULL) {
                            for (; c + 4 <= oc_n; c += 4) {
                                int32_t a0 = eff[c], a1 = eff[c + 1], a2 = eff[c + 2], a3 = eff[c + 3];
                                uint32_t mk = tapmask[c >> 2];
                                while (mk) {
                                    const int32_t tt = __builtin_ctz(mk);
                                    const int8_t *w = p->weights + tt * oc_n + c;
                                    mk &= mk - 1u;
                                    TE_DW_TAP4(tp[tt], c, w, oc_n);
                                }
                                o[c] = te_requant(a0, mult[c], shift[c], oo, lo, hi);
                                o[c + 1] = te_requant(a1, mult[c + 1], shift[c + 1], oo, lo, hi);
                                o[c + 2] = te_requant(a2, mult[c + 2], shift[c + 2], oo, lo, hi);
                                o[c + 3] = te_requant(a3, mult[c + 3], shift[c + 3], oo, lo, hi);
                            }
                        } else if (ntaps == 9 && fast) {
                            const int8_t *x0 = tp[0], *x1 = tp[1], *x2 = tp[2], *x3 = tp[3], *x4 = tp[4];
                            const int8_t *x5 = tp[5], *x6 = tp[6], *x7 = tp[7], *x8 = tp[8];
                            const int8_t *wc = p->weights;
                            for (; c + 4 <= oc_n; c += 4) {
                                const int8_t *w = wc + c;
                                int32_t a0 = eff[c], a1 = eff[c + 1], a2 = eff[c + 2], a3 = eff[c + 3];
                                int32_t r0, r1, r2, r3;
                                TE_DW_TAP4(x0, c, w, oc_n);
                                TE_DW_TAP4(x1, c, w, oc_n);
                                TE_DW_TAP4(x2, c, w, oc_n);
                                TE_DW_TAP4(x3, c, w, oc_n);
                                TE_DW_TAP4(x4, c, w, oc_n);
                                TE_DW_TAP4(x5, c, w, oc_n);
                                TE_DW_TAP4(x6, c, w, oc_n);
                                TE_DW_TAP4(x7, c, w, oc_n);
                                TE_DW_TAP4(x8, c, w, oc_n);
                                r0 = te_sat8(te_rq_right(a0, mult[c], ~(int32_t)shift[c]) + oo);
                                r1 = te_sat8(te_rq_right(a1, mult[c + 1], ~(int32_t)shift[c + 1]) + oo);
                                r2 = te_sat8(te_rq_right(a2, mult[c + 2], ~(int32_t)shift[c + 2]) + oo);
                                r3 = te_sat8(te_rq_right(a3, mult[c + 3], ~(int32_t)shift[c + 3]) + oo);
                                o[c] = (int8_t)r0;
                                o[c + 1] = (int8_t)r1;
                                o[c + 2] = (int8_t)r2;
                                o[c + 3] = (int8_t)r3;
                            }
                        } else {
                            for (; c + 4 <= oc_n; c += 4) {
                                const int8_t *w = p->weights + c;
                                int32_t a0 = eff[c], a1 = eff[c + 1], a2 = eff[c + 2], a3 = eff[c + 3];
                                for (t = 0; t < ntaps; ++t) {
                                    TE_DW_TAP4(tp[t], c, w, oc_n);
                                }
                                o[c] = te_requant(a0, mult[c], shift[c], oo, lo, hi);
                                o[c + 1] = te_requant(a1, mult[c + 1], shift[c + 1], oo, lo, hi);
                                o[c + 2] = te_requant(a2, mult[c + 2], shift[c + 2], oo, lo, hi);
                                o[c + 3] = te_requant(a3, mult[c + 3], shift[c + 3], oo, lo, hi);
                            }
                        }
                    }
#endif
                    for (; c < oc_n; c += TE_DW_BLOCK) {
                        const int32_t nb = oc_n - c < TE_DW_BLOCK ? oc_n - c : TE_DW_BLOCK;
                        const int32_t off = inside ? 0 : p->in_offset;
                        const int32_t *bias = inside ? p->eff_bias : p->bias;
                        for (j = 0; j < nb; ++j) {
                            acc[j] = bias[c + j];
                        }
                        for (ky = ky0; ky < ky1; ++ky) {
                            for (kx = kx0; kx < kx1; ++kx) {
                                const int8_t *x =
                                    in_b + ((iy0 + ky * p->dil_h) * p->in_w + ix0 + kx * p->dil_w) * p->in_c + c;
                                const int8_t *w = p->weights + (ky * p->k_w + kx) * oc_n + c;
                                if (inside) {
                                    for (j = 0; j < nb; ++j) {
                                        acc[j] += (int32_t)x[j] * (int32_t)w[j];
                                    }
                                } else {
                                    for (j = 0; j < nb; ++j) {
                                        acc[j] += ((int32_t)x[j] + off) * (int32_t)w[j];
                                    }
                                }
                            }
                        }
                        for (j = 0; j < nb; ++j) {
                            o[c + j] = te_requant(acc[j], p->mult[c + j], p->shift[c + j], p->out_offset,
                                                  p->act_min, p->act_max);
                        }
                    }
                    continue;
                }
                for (c = 0; c < oc_n; ++c) {
                    const int32_t ic = c / m;
                    int32_t acc = inside ? p->eff_bias[c] : p->bias[c];
                    const int32_t off = inside ? 0 : p->in_offset;
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = iy0 + ky * p->dil_h;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int32_t ix = ix0 + kx * p->dil_w;
                            if (ix < 0 || ix >= p->in_w) {
                                continue;
                            }
                            acc += ((int32_t)in_b[(iy * p->in_w + ix) * p->in_c + ic] + off) *
                                   (int32_t)p->weights[(ky * p->k_w + kx) * oc_n + c];
                        }
                    }
                    o[c] = te_requant(acc, p->mult[c], p->shift[c], p->out_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* ---- DEPTHWISE_CONV_2D on weights grouped by 4 channels (te_depthwise_conv2d_s8_g4) ----------
 * Weights [out_c / 4][taps][4]: one word per tap and group, read in order.  Every tap goes through
 * a pointer (taps outside the input read a row of input zero points, which the folded bias cancels
 * exactly), so borders cost nothing extra. */
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_DWG_TAP(OFF)                                   \
    "ldr    %[xv], [%[tp], #" OFF "]\n\t"                \
    "ldr    %[xv], [%[xv], %[cc]]\n\t"                   \
    "ldr    %[wv], [%[w]], #4\n\t"                       \
    "sxtb16 %[xe], %[xv]\n\t"                            \
    "sxtb16 %[xv], %[xv], ror #8\n\t"                    \
    "sxtb16 %[we], %[wv]\n\t"                            \
    "sxtb16 %[wv], %[wv], ror #8\n\t"                    \
    "smlabb %[a0], %[xe], %[we], %[a0]\n\t"              \
    "smlatt %[a2], %[xe], %[we], %[a2]\n\t"              \
    "smlabb %[a1], %[xv], %[wv], %[a1]\n\t"              \
    "smlatt %[a3], %[xv], %[wv], %[a3]\n\t"
#define TE_DWG_OPERANDS                                                                             \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [xv] "=&r"(xv),       \
      [xe] "=&r"(xe), [wv] "=&r"(wv), [we] "=&r"(we)                                                \
    : [tp] "r"(tp), [cc] "r"(c)                                                                      \
    : "memory"
#endif

/* te_rq_right for |acc| < 2^30 (the generator proves it for the _g4 kernel) */
static inline int32_t te_dwg_rq(int32_t acc, int32_t mult, int32_t em1)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    int32_t v;
    __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"((uint32_t)acc << 1), "r"(mult));
    return (((v + (v >> 31)) >> em1) + 1) >> 1;
#else
    return te_rq_right(acc, mult, em1);
#endif
}

/* fast: every shift negative and the clamp the whole int8 range (the generator checks); nine: the
 * kernel has 9 taps (the generator checks), so the loop for other tap counts is not compiled in */
static inline __attribute__((always_inline)) void te_dw_g4(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                                           int8_t *TE_RESTRICT out, const int fast, const int nine)
{
    (void)nine;   /* read only on the DSP path */
    const int32_t oc_n = p->out_c, ntaps = p->k_h * p->k_w;
    const int32_t *const eff = p->eff_bias;
    const int32_t *const mult = p->mult;
    const int8_t *const shift = p->shift;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    int8_t zbuf[TE_DW_ZMAX];
    const int8_t *tp[TE_DW_TAPS];
    int32_t b, oy, ox, ky, kx, c, t;
    memset(zbuf, (unsigned char)(int8_t)(-p->in_offset), (size_t)oc_n);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *o = out + b * p->out_h * p->out_w * oc_n;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox, o += oc_n) {
                const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
                const int8_t *w = p->weights;
                t = 0;
                for (ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = iy0 + ky * p->dil_h;
                    for (kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = ix0 + kx * p->dil_w;
                        tp[t++] = (uint32_t)iy < (uint32_t)p->in_h && (uint32_t)ix < (uint32_t)p->in_w
                                      ? in_b + (iy * p->in_w + ix) * oc_n
                                      : zbuf;
                    }
                }
                for (c = 0; c < oc_n; c += 4) {
                    int32_t a0 = eff[c], a1 = eff[c + 1], a2 = eff[c + 2], a3 = eff[c + 3];
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
                    uint32_t xv, xe, wv, we;
                    if (nine || ntaps == 9) {
                        __asm__ volatile(TE_DWG_TAP("0") TE_DWG_TAP("4") TE_DWG_TAP("8") TE_DWG_TAP("12")
                                         TE_DWG_TAP("16") TE_DWG_TAP("20") TE_DWG_TAP("24") TE_DWG_TAP("28")
                                         TE_DWG_TAP("32") TE_DWG_OPERANDS);
                    } else {
                        for (t = 0; t < ntaps; ++t) {
                            const int8_t *x = tp[t] + c;
                            const uint32_t vx = te_load32(x), vw = te_load32(w);
                            const uint32_t xe2 = te_sxtb16(vx), xo2 = te_sxtb16_ror8(vx);
                            const uint32_t we2 = te_sxtb16(vw), wo2 = te_sxtb16_ror8(vw);
                            w += 4;
                            a0 = te_smlad(xe2 & 0xFFFFu, we2 & 0xFFFFu, a0);
                            a2 = te_smlad(xe2 >> 16, we2 >> 16, a2);
                            a1 = te_smlad(xo2 & 0xFFFFu, wo2 & 0xFFFFu, a1);
                            a3 = te_smlad(xo2 >> 16, wo2 >> 16, a3);
                        }
                    }
#else
                    for (t = 0; t < ntaps; ++t, w += 4) {
                        const int8_t *x = tp[t] + c;
                        a0 += x[0] * w[0];
                        a1 += x[1] * w[1];
                        a2 += x[2] * w[2];
                        a3 += x[3] * w[3];
                    }
#endif
                    if (fast) {
                        o[c] = (int8_t)te_sat8(te_dwg_rq(a0, mult[c], ~(int32_t)shift[c]) + oo);
                        o[c + 1] = (int8_t)te_sat8(te_dwg_rq(a1, mult[c + 1], ~(int32_t)shift[c + 1]) + oo);
                        o[c + 2] = (int8_t)te_sat8(te_dwg_rq(a2, mult[c + 2], ~(int32_t)shift[c + 2]) + oo);
                        o[c + 3] = (int8_t)te_sat8(te_dwg_rq(a3, mult[c + 3], ~(int32_t)shift[c + 3]) + oo);
                    } else {
                        o[c] = te_requant(a0, mult[c], shift[c], oo, lo, hi);
                        o[c + 1] = te_requant(a1, mult[c + 1], shift[c + 1], oo, lo, hi);
                        o[c + 2] = te_requant(a2, mult[c + 2], shift[c + 2], oo, lo, hi);
                        o[c + 3] = te_requant(a3, mult[c + 3], shift[c + 3], oo, lo, hi);
                    }
                }
            }
        }
    }
}

void te_depthwise_conv2d_s8_g4(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_dw_g4(p, in, out, 0, 0);
}

void te_depthwise_conv2d_s8_g4_fast(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                    int8_t *TE_RESTRICT out)
{
    te_dw_g4(p, in, out, 1, 0);
}

void te_depthwise_conv2d_s8_g4_fast9(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                     int8_t *TE_RESTRICT out)
{
    te_dw_g4(p, in, out, 1, 1);
}

void te_depthwise_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_dw_impl(p, in, out, NULL);
}

void te_depthwise_conv2d_s8_w(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch,
                              const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_conv_params_t q = *p;
    te_weights_decode(w, 0, w->rows, scratch);   /* [taps][out_c], once per inference */
    q.weights = scratch;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    /* zero skipping: per 4 channels the taps with a non-zero weight, when at least a third of
     * the (group, tap) pairs are all zero (sparse weights: a 90%-zero 3x3 filter has one) */
    if (w->kind == TE_W_SPARSE && p->depth_mult == 1 && p->k_h * p->k_w <= TE_DW_TAPS && p->out_c >= 4 &&
        p->out_c <= TE_DW_ZMAX) {
        uint32_t mask[TE_DW_ZMAX / 4];
        const int32_t taps = p->k_h * p->k_w, groups = p->out_c >> 2;
        int32_t g, t, zero = 0;
        for (g = 0; g < groups; ++g) {
            uint32_t m = 0;
            for (t = 0; t < taps; ++t) {
                uint32_t v;
                memcpy(&v, scratch + t * p->out_c + 4 * g, 4);
                if (v != 0) {
                    m |= 1u << t;
                } else {
                    ++zero;
                }
            }
            mask[g] = m;
        }
        if (3 * zero >= groups * taps) {
            te_dw_impl(&q, in, out, mask);
            return;
        }
    }
#endif
    te_dw_impl(&q, in, out, NULL);
}
