/* tinyedge firmware: int8 kernels of the aot runtime (see te_kernels.h). */
#include "te_kernels.h"

#include <string.h>

/* ---- dot products ---------------------------------------------------- */

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
static inline uint32_t te_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t te_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t te_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline uint32_t te_load32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
#endif

static inline int32_t te_dot(const int8_t *TE_RESTRICT a, const int8_t *TE_RESTRICT b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    for (; i + 4 <= n; i += 4) {
        const uint32_t va = te_load32(a + i);
        const uint32_t vb = te_load32(b + i);
        acc = te_smlad(te_sxtb16(va), te_sxtb16(vb), acc);
        acc = te_smlad(te_sxtb16_ror8(va), te_sxtb16_ror8(vb), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* two output channels share each input load */
static inline void te_dot2(const int8_t *TE_RESTRICT x, const int8_t *TE_RESTRICT w0,
                           const int8_t *TE_RESTRICT w1, int32_t n, int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = 0, a1 = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    for (; i + 4 <= n; i += 4) {
        const uint32_t vx = te_load32(x + i);
        const uint32_t xe = te_sxtb16(vx), xo = te_sxtb16_ror8(vx);
        const uint32_t v0 = te_load32(w0 + i);
        const uint32_t v1 = te_load32(w1 + i);
        a0 = te_smlad(xe, te_sxtb16(v0), a0);
        a0 = te_smlad(xo, te_sxtb16_ror8(v0), a0);
        a1 = te_smlad(xe, te_sxtb16(v1), a1);
        a1 = te_smlad(xo, te_sxtb16_ror8(v1), a1);
    }
#endif
    for (; i < n; ++i) {
        const int32_t xv = x[i];
        a0 += xv * w0[i];
        a1 += xv * w1[i];
    }
    *acc0 += a0;
    *acc1 += a1;
}

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
/* The weight side of a 4-channel dot-product step: 4 inputs already widened to
 * 16-bit pairs in xe/xo, times the weight words of channels 0/1 (at wa + ws,
 * loaded into wv by the step itself, then wa) and 2/3 (at wb + ws, wb), widened
 * with SXTB16 and accumulated with SMLAD into a0..a3.  Shared by the conv
 * (te_dot4, te_dot4_rows) and FC steps; the operand names are the asm blocks' own. */
#define TE_ASM_W4_MACS \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a1], %[xe], %[t], %[a1]\n\t" \
    "smlad  %[a1], %[xo], %[wv], %[a1]\n\t" \
    "ldr    %[wv], [%[wa]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a0], %[xe], %[t], %[a0]\n\t" \
    "smlad  %[a0], %[xo], %[wv], %[a0]\n\t" \
    "ldr    %[wv], [%[wb], %[ws]]\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a3], %[xe], %[t], %[a3]\n\t" \
    "smlad  %[a3], %[xo], %[wv], %[a3]\n\t" \
    "ldr    %[wv], [%[wb]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a2], %[xe], %[t], %[a2]\n\t" \
    "smlad  %[a2], %[xo], %[wv], %[a2]\n\t"

/* conv: 4 int8 inputs from one word at x, widened to 16-bit pairs in xe/xo (the first
 * weight load sits between the input load and its use, to hide the load latency) */
#define TE_ASM_DOT4_STEP \
    "ldr    %[xo], [%[x]], #4\n\t" \
    "ldr    %[wv], [%[wa], %[ws]]\n\t" \
    "sxtb16 %[xe], %[xo]\n\t" \
    "sxtb16 %[xo], %[xo], ror #8\n\t" \
    TE_ASM_W4_MACS

#endif

/* four output channels share each input load */
static inline void te_dot4(const int8_t *TE_RESTRICT x, const int8_t *TE_RESTRICT w0, int32_t wstride, int32_t n,
                           int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
    /* Cortex-M4/M7/M33: 16 MACs in 25 instructions, everything in registers.
     * Channels 0/1 are read at wa and wa + wstride, channels 2/3 at wb and wb + wstride. */
    const int8_t *wa = w0;
    const int8_t *wb = w0 + 2 * wstride;
    int32_t groups = n >> 2;
    if (groups > 0) {
        uint32_t xe, xo, wv, t;
        __asm__ volatile(
            "1:\n\t"
            TE_ASM_DOT4_STEP
            "subs   %[g], %[g], #1\n\t"
            "bne    1b\n\t"
            : [x] "+r"(x), [wa] "+r"(wa), [wb] "+r"(wb), [g] "+r"(groups), [a0] "+r"(a0), [a1] "+r"(a1),
              [a2] "+r"(a2), [a3] "+r"(a3), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv), [t] "=&r"(t)
            : [ws] "r"(wstride)
            : "cc", "memory");
    }
    for (i = 0; i < (n & 3); ++i) {
        const int32_t xv = x[i];
        a0 += xv * wa[i];
        a1 += xv * wa[wstride + i];
        a2 += xv * wb[i];
        a3 += xv * wb[wstride + i];
    }
#else
    const int8_t *TE_RESTRICT w1 = w0 + wstride;
    const int8_t *TE_RESTRICT w2 = w1 + wstride;
    const int8_t *TE_RESTRICT w3 = w2 + wstride;
    for (; i < n; ++i) {
        const int32_t xv = x[i];
        a0 += xv * w0[i];
        a1 += xv * w1[i];
        a2 += xv * w2[i];
        a3 += xv * w3[i];
    }
#endif
    acc[0] += a0;
    acc[1] += a1;
    acc[2] += a2;
    acc[3] += a3;
}

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_HAVE_DOT4_ROWS 1
/* 4 channels x `nrows` kernel rows of `run` bytes (run % 4 == 0, run > 0, nrows > 0):
 * input rows are `xrow` bytes apart, each channel's weight rows are contiguous
 * (full kernel window), channel c at w0 + c * wstride.  Accumulates into acc[0..3]. */
static inline void te_dot4_rows(const int8_t *x, int32_t xrow, const int8_t *w0, int32_t wstride, int32_t run,
                                int32_t nrows, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *wa = w0;
    const int8_t *wb = w0 + 2 * wstride;
    int32_t groups_init = run >> 2;
    int32_t xskip = xrow - run;
    int32_t rows = nrows;
    int32_t g;
    uint32_t xe, xo, wv, t;
    __asm__ volatile(
        "2:\n\t"
        "ldr    %[g], %[gi]\n\t"
        "1:\n\t"
        TE_ASM_DOT4_STEP
        "subs   %[g], %[g], #1\n\t"
        "bne    1b\n\t"
        "ldr    %[t], %[xs]\n\t"
        "add    %[x], %[x], %[t]\n\t"
        "ldr    %[t], %[rw]\n\t"
        "subs   %[t], %[t], #1\n\t"
        "str    %[t], %[rw]\n\t"
        "bne    2b\n\t"
        : [x] "+r"(x), [wa] "+r"(wa), [wb] "+r"(wb), [g] "=&r"(g), [a0] "+r"(a0), [a1] "+r"(a1),
          [a2] "+r"(a2), [a3] "+r"(a3), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv), [t] "=&r"(t),
          [rw] "+m"(rows)
        : [ws] "r"(wstride), [gi] "m"(groups_init), [xs] "m"(xskip)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

static inline int8_t te_requant(int32_t acc, int32_t mult, int32_t shift, int32_t out_offset,
                                int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    /* Common case, right shift e = -shift >= 1 and |acc| < 2^30: SMMULR(2 * acc, mult)
     * = floor((acc * mult + 2^30) / 2^31) is exactly te_mbqm_pos's rounded high product v, and
     * RoundingDivideByPOT(v, e) = (((v - (v < 0)) >> (e - 1)) + 1) >> 1 (nested floors; no
     * overflow since |v| <= 2^31 - 2).  About half the instructions of the general path. */
    const int32_t em1 = ~shift; /* e - 1 */
    const int32_t a2 = (int32_t)((uint32_t)acc << 1);
    if (em1 >= 0 && (a2 >> 1) == acc) {
        int32_t v;
        __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"(a2), "r"(mult));
        v = (((v + (v >> 31)) >> em1) + 1) >> 1;
        return te_clamp8(v + out_offset, lo, hi);
    }
#endif
    return te_clamp8(te_mbqm_pos(acc, mult, shift) + out_offset, lo, hi);
}

/* te_mbqm_pos for a right shift (em1 = -shift - 1 >= 0), exact for every acc: the rounded high
 * product v = floor((acc * mult + 2^30) / 2^31) (one SMLAL), then RoundingDivideByPOT(v, em1 + 1)
 * = (((v - (v < 0)) >> em1) + 1) >> 1 by nested floors; no overflow since
 * -2^31 < v <= 2^31 - 2 for 0 <= mult < 2^31. */
static inline int32_t te_rq_right(int32_t acc, int32_t mult, int32_t em1)
{
    const int32_t v = (int32_t)(((int64_t)acc * mult + ((int64_t)1 << 30)) >> 31);
    return (((v + (v >> 31)) >> em1) + 1) >> 1;
}

/* saturate to int8 (the clamp when the activation range is the whole int8 range) */
static inline int32_t te_sat8(int32_t v)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* 1 when every channel's requantization is a right shift and the activation clamp is the
 * whole int8 range (the common case): kernels then use te_rq_right + te_sat8 */
static inline int te_fast_requant(const int8_t *shift, int32_t n, int32_t lo, int32_t hi)
{
    int32_t i;
    if (lo != -128 || hi != 127) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        if (shift[i] >= 0) {
            return 0;
        }
    }
    return 1;
}

/* ---- CONV_2D ----------------------------------------------------------- */

static inline int32_t te_sum8(const int8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    for (; n >= 16 && i + 4 <= n; i += 4) {
        const uint32_t v = te_load32(w + i);
        acc = te_smlad(te_sxtb16(v), 0x00010001u, acc);
        acc = te_smlad(te_sxtb16_ror8(v), 0x00010001u, acc);
    }
#endif
    for (; i < n; ++i) {
        acc += w[i];
    }
    return acc;
}

/* first and one-past-last kernel tap k with 0 <= origin + k * dil < size */
static inline void te_taps(int32_t origin, int32_t k, int32_t dil, int32_t size, int32_t *k0, int32_t *k1)
{
    int32_t lo = origin < 0 ? (-origin + dil - 1) / dil : 0;
    int32_t hi = size - origin <= 0 ? 0 : (size - origin + dil - 1) / dil;
    *k1 = hi < k ? hi : k;
    *k0 = lo < *k1 ? lo : *k1;   /* never an inverted (negative-length) range */
}

/* one output pixel, all channels, kernel rows [ky0, ky1) x columns [kx0, kx1) with dil_w == 1:
 * each kernel row is one contiguous run of (kx1 - kx0) * in_c bytes in input and weights. */
static void te_conv_pixel_rows(const te_conv_params_t *p, const int8_t *x0, int32_t ky0, int32_t ky1,
                               int32_t kx0, int32_t kx1, int8_t *o)
{
    const int32_t kc = p->k_w * p->in_c;
    const int32_t wstride = p->k_h * kc;
    const int32_t run = (kx1 - kx0) * p->in_c;
    const int32_t row = p->dil_h * p->in_w * p->in_c;
    const int32_t woff = ky0 * kc + kx0 * p->in_c;
    const int full = ky0 == 0 && ky1 == p->k_h && kx0 == 0 && kx1 == p->k_w;
    const int32_t nrows = ky1 - ky0;
    int32_t c, r, j;
    for (c = 0; c + 4 <= p->out_c; c += 4) {
        const int8_t *w0 = p->weights + c * wstride + woff;
        int32_t a[4];
        for (j = 0; j < 4; ++j) {
            if (full) {
                a[j] = p->eff_bias[c + j];
            } else {
                int32_t sw = 0;
                for (r = 0; r < nrows; ++r) {
                    sw += te_sum8(w0 + j * wstride + r * kc, run);
                }
                a[j] = p->bias[c + j] + p->in_offset * sw;
            }
        }
#ifdef TE_HAVE_DOT4_ROWS
        if (full && (run & 3) == 0 && nrows > 0) {
            te_dot4_rows(x0, row, w0, wstride, run, nrows, a);
        } else
#endif
        {
            for (r = 0; r < nrows; ++r) {
                te_dot4(x0 + r * row, w0 + r * kc, wstride, run, a);
            }
        }
        for (j = 0; j < 4; ++j) {
            o[c + j] = te_requant(a[j], p->mult[c + j], p->shift[c + j], p->out_offset, p->act_min, p->act_max);
        }
    }
    for (; c + 2 <= p->out_c; c += 2) {
        const int8_t *w0 = p->weights + c * wstride + woff;
        const int8_t *w1 = w0 + wstride;
        int32_t a0, a1;
        if (full) {
            a0 = p->eff_bias[c];
            a1 = p->eff_bias[c + 1];
        } else {
            int32_t s0 = 0, s1 = 0;
            for (r = 0; r < nrows; ++r) {
                s0 += te_sum8(w0 + r * kc, run);
                s1 += te_sum8(w1 + r * kc, run);
            }
            a0 = p->bias[c] + p->in_offset * s0;
            a1 = p->bias[c + 1] + p->in_offset * s1;
        }
        for (r = 0; r < nrows; ++r) {
            te_dot2(x0 + r * row, w0 + r * kc, w1 + r * kc, run, &a0, &a1);
        }
        o[c] = te_requant(a0, p->mult[c], p->shift[c], p->out_offset, p->act_min, p->act_max);
        o[c + 1] = te_requant(a1, p->mult[c + 1], p->shift[c + 1], p->out_offset, p->act_min, p->act_max);
    }
    for (; c < p->out_c; ++c) {
        const int8_t *w = p->weights + c * wstride + woff;
        int32_t acc;
        if (full) {
            acc = p->eff_bias[c];
        } else {
            int32_t s = 0;
            for (r = 0; r < nrows; ++r) {
                s += te_sum8(w + r * kc, run);
            }
            acc = p->bias[c] + p->in_offset * s;
        }
        for (r = 0; r < nrows; ++r) {
            acc += te_dot(x0 + r * row, w + r * kc, run);
        }
        o[c] = te_requant(acc, p->mult[c], p->shift[c], p->out_offset, p->act_min, p->act_max);
    }
}

/* one output pixel, any dilation: tap by tap, (x + offset) * w */
static void te_conv_pixel_taps(const te_conv_params_t *p, const int8_t *in_b, int32_t iy0, int32_t ix0, int8_t *o)
{
    const int32_t kc = p->k_w * p->in_c;
    int32_t c, ky, kx, ky0, ky1, kx0, kx1;
    te_taps(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
    te_taps(ix0, p->k_w, p->dil_w, p->in_w, &kx0, &kx1);
    for (c = 0; c < p->out_c; ++c) {
        const int8_t *w = p->weights + c * p->k_h * kc;
        int32_t acc = p->bias[c];
        int32_t s = 0;
        for (ky = ky0; ky < ky1; ++ky) {
            for (kx = kx0; kx < kx1; ++kx) {
                const int8_t *x = in_b + ((iy0 + ky * p->dil_h) * p->in_w + ix0 + kx * p->dil_w) * p->in_c;
                const int8_t *wk = w + ky * kc + kx * p->in_c;
                acc += te_dot(x, wk, p->in_c);
                s += te_sum8(wk, p->in_c);
            }
        }
        acc += p->in_offset * s;
        o[c] = te_requant(acc, p->mult[c], p->shift[c], p->out_offset, p->act_min, p->act_max);
    }
}

#ifdef TE_HAVE_DOT4_ROWS
/* full kernel window, run % 4 == 0, out_c % 4 == 0: everything hoisted into locals */
static void te_conv_full4(const int8_t *x0, int32_t row, int32_t nrows, int32_t run, const int8_t *weights,
                          int32_t wstride, int32_t out_c, const int32_t *eff, const int32_t *mult,
                          const int8_t *shift, int32_t oo, int32_t lo, int32_t hi, int8_t *o)
{
    int32_t c;
    for (c = 0; c < out_c; c += 4) {
        int32_t a[4];
        int8_t r0, r1, r2, r3;
        a[0] = eff[c];
        a[1] = eff[c + 1];
        a[2] = eff[c + 2];
        a[3] = eff[c + 3];
        te_dot4_rows(x0, row, weights + c * wstride, wstride, run, nrows, a);
        r0 = te_requant(a[0], mult[c], shift[c], oo, lo, hi);
        r1 = te_requant(a[1], mult[c + 1], shift[c + 1], oo, lo, hi);
        r2 = te_requant(a[2], mult[c + 2], shift[c + 2], oo, lo, hi);
        r3 = te_requant(a[3], mult[c + 3], shift[c + 3], oo, lo, hi);
        o[c] = r0;
        o[c + 1] = r1;
        o[c + 2] = r2;
        o[c + 3] = r3;
    }
}
#endif

/* Small receptive fields whose rows are not a multiple of 4 bytes (first layers with 1 or 3
 * input channels): gather the window into one contiguous buffer, padding with the input zero
 * point (whose offset-corrected value is 0), so every pixel runs one dot product per channel
 * with the folded bias. */
#define TE_GATHER_MAX 64

static void te_conv_gathered(const te_conv_params_t *p, const int8_t *in_b, int32_t iy0, int32_t ix0, int8_t *o)
{
    int8_t buf[TE_GATHER_MAX];
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int8_t zp = (int8_t)(-p->in_offset);
    const int32_t *const mult = p->mult;
    const int8_t *const shift = p->shift;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    int32_t ky, kx, i, c, k = 0;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        if (p->dil_w == 1 && iy >= 0 && iy < p->in_h && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
            /* whole kernel row inside: one contiguous run */
            const int8_t *x = in_b + (iy * p->in_w + ix0) * p->in_c;
            const int32_t kc = p->k_w * p->in_c;
            for (i = 0; i < kc; ++i) {
                buf[k++] = x[i];
            }
            continue;
        }
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                for (i = 0; i < p->in_c; ++i) {
                    buf[k++] = zp;
                }
            } else {
                const int8_t *x = in_b + (iy * p->in_w + ix) * p->in_c;
                for (i = 0; i < p->in_c; ++i) {
                    buf[k++] = x[i];
                }
            }
        }
    }
    for (c = 0; c + 4 <= p->out_c; c += 4) {
        int32_t a[4];
        int8_t r0, r1, r2, r3;
        a[0] = p->eff_bias[c];
        a[1] = p->eff_bias[c + 1];
        a[2] = p->eff_bias[c + 2];
        a[3] = p->eff_bias[c + 3];
        te_dot4(buf, p->weights + c * n, n, n, a);
        r0 = te_requant(a[0], mult[c], shift[c], oo, lo, hi);
        r1 = te_requant(a[1], mult[c + 1], shift[c + 1], oo, lo, hi);
        r2 = te_requant(a[2], mult[c + 2], shift[c + 2], oo, lo, hi);
        r3 = te_requant(a[3], mult[c + 3], shift[c + 3], oo, lo, hi);
        o[c] = r0;
        o[c + 1] = r1;
        o[c + 2] = r2;
        o[c + 3] = r3;
    }
    for (; c < p->out_c; ++c) {
        const int32_t acc = p->eff_bias[c] + te_dot(buf, p->weights + c * n, n);
        o[c] = te_requant(acc, mult[c], shift[c], oo, lo, hi);
    }
}

#ifdef TE_HAVE_DOT4_ROWS
/* Two output pixels x two output channels per pass (every CONV_2D whose kernel window is at
 * most TE_PAIR_MAX bytes, or TE_PAIR_GATHER when in_c % 4 != 0).  Each pixel's window is read
 * once (zero-point padded, so the folded bias is exact at the borders too) and sign-extended to
 * 16-bit lanes, interleaved as [px0 even, px0 odd, px1 even, px1 odd] per 4 input bytes; the
 * inner loop then loads each weight word once for two pixels: 16 MACs in 19 instructions. */
#define TE_PAIR_MAX 576    /* window bytes (in_c % 4 == 0): 4 * TE_PAIR_MAX bytes of stack */
#define TE_PAIR_GATHER 128 /* window bytes otherwise (gathered first) */

static void te_window(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t *buf)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    const unsigned char zp = (unsigned char)(int8_t)(-p->in_offset);
    const size_t kc = (size_t)(p->k_w * p->in_c);
    const size_t ic = (size_t)p->in_c;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            memset(buf, zp, kc);
        } else if (p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w) {
            memcpy(buf, in_b + (iy * p->in_w + ix0) * p->in_c, kc);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) {
                    memset(buf + kx * p->in_c, zp, ic);
                } else {
                    memcpy(buf + kx * p->in_c, in_b + (iy * p->in_w + ix) * p->in_c, ic);
                }
            }
        }
        buf += kc;
    }
}

static inline void te_expand_lanes(const int8_t *g, int32_t groups, uint32_t *xq)
{
    int32_t i;
    for (i = 0; i < groups; ++i) {
        const uint32_t v = te_load32(g + 4 * i);
        xq[4 * i] = te_sxtb16(v);
        xq[4 * i + 1] = te_sxtb16_ror8(v);
    }
}

static inline void te_fill_lanes(uint32_t lanes, int32_t groups, uint32_t *xq)
{
    int32_t i;
    for (i = 0; i < groups; ++i) {
        xq[4 * i] = lanes;
        xq[4 * i + 1] = lanes;
    }
}

/* one pixel's window as 16-bit lanes into xq (every 4th word pair), zero-point padded, its last
 * n % 4 bytes into tail.  With in_c % 4 == 0 the input is read in place (taps outside the input
 * are zero-point lanes); otherwise the window is gathered into g (at most TE_PAIR_GATHER bytes). */
static void te_window_lanes(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t *g,
                            uint32_t *xq, int8_t *tail)
{
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    int32_t i;
    if ((p->in_c & 3) == 0) {
        const uint32_t zp16 = (uint32_t)(uint16_t)(int16_t)(-p->in_offset);
        const uint32_t zl = zp16 | (zp16 << 16);
        const int32_t cg = p->in_c >> 2;
        const int32_t rg = p->k_w * cg;
        const int row_inside = p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w;
        int32_t ky, kx;
        if (row_inside && iy0 >= 0 && iy0 + (p->k_h - 1) * p->dil_h < p->in_h) {
            const int8_t *x = in_b + (iy0 * p->in_w + ix0) * p->in_c;
            const int32_t row = p->dil_h * p->in_w * p->in_c;
            for (ky = 0; ky < p->k_h; ++ky) {
                te_expand_lanes(x, rg, xq);
                x += row;
                xq += 4 * rg;
            }
            return;
        }
        for (ky = 0; ky < p->k_h; ++ky) {
            const int32_t iy = iy0 + ky * p->dil_h;
            if (iy < 0 || iy >= p->in_h) {
                te_fill_lanes(zl, rg, xq);
            } else if (row_inside) {
                te_expand_lanes(in_b + (iy * p->in_w + ix0) * p->in_c, rg, xq);
            } else {
                for (kx = 0; kx < p->k_w; ++kx) {
                    const int32_t ix = ix0 + kx * p->dil_w;
                    if (ix < 0 || ix >= p->in_w) {
                        te_fill_lanes(zl, cg, xq + 4 * kx * cg);
                    } else {
                        te_expand_lanes(in_b + (iy * p->in_w + ix) * p->in_c, cg, xq + 4 * kx * cg);
                    }
                }
            }
            xq += 4 * rg;
        }
        return;
    }
    te_window(p, in_b, oy, ox, g);
    te_expand_lanes(g, n >> 2, xq);
    for (i = 0; i < (n & 3); ++i) {
        tail[i] = g[(n & ~3) + i];
    }
}

/* a[0] += px0 . ch0, a[1] += px1 . ch0, a[2] += px0 . ch1, a[3] += px1 . ch1 (groups > 0) */
static inline void te_mac2x2(const uint32_t *xq, const int8_t *w, int32_t ws, int32_t groups, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
    const uint32_t *xend = xq + 4 * groups;
    const int32_t odd = groups & 1;
    uint32_t xe0, xo0, xe1, xo1, wv, t;
    /* two groups per loop pass; an odd count enters at the second */
#define TE_MAC2X2_GROUP                                  \
    "ldrd   %[xe0], %[xo0], [%[x]], #8\n\t"             \
    "ldrd   %[xe1], %[xo1], [%[x]], #8\n\t"             \
    "ldr    %[wv], [%[w], %[ws]]\n\t"                   \
    "sxtb16 %[t], %[wv]\n\t"                            \
    "sxtb16 %[wv], %[wv], ror #8\n\t"                   \
    "smlad  %[a10], %[xe0], %[t], %[a10]\n\t"           \
    "smlad  %[a10], %[xo0], %[wv], %[a10]\n\t"          \
    "smlad  %[a11], %[xe1], %[t], %[a11]\n\t"           \
    "smlad  %[a11], %[xo1], %[wv], %[a11]\n\t"          \
    "ldr    %[wv], [%[w]], #4\n\t"                      \
    "sxtb16 %[t], %[wv]\n\t"                            \
    "sxtb16 %[wv], %[wv], ror #8\n\t"                   \
    "smlad  %[a00], %[xe0], %[t], %[a00]\n\t"           \
    "smlad  %[a00], %[xo0], %[wv], %[a00]\n\t"          \
    "smlad  %[a01], %[xe1], %[t], %[a01]\n\t"           \
    "smlad  %[a01], %[xo1], %[wv], %[a01]\n\t"
    __asm__ volatile(
        "ldr    %[t], %[odd]\n\t"
        "cmp    %[t], #0\n\t"
        "bne    3f\n\t"
        "1:\n\t"
        TE_MAC2X2_GROUP
        "3:\n\t"
        TE_MAC2X2_GROUP
        "ldr    %[t], %[xend]\n\t"
        "cmp    %[x], %[t]\n\t"
        "bne    1b\n\t"
        : [x] "+r"(xq), [w] "+r"(w), [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11),
          [xe0] "=&r"(xe0), [xo0] "=&r"(xo0), [xe1] "=&r"(xe1), [xo1] "=&r"(xo1), [wv] "=&r"(wv), [t] "=&r"(t)
        : [ws] "r"(ws), [xend] "m"(xend), [odd] "m"(odd)
        : "cc", "memory");
#undef TE_MAC2X2_GROUP
    a[0] = a00;
    a[1] = a01;
    a[2] = a10;
    a[3] = a11;
}

static void te_conv_pairs(const te_conv_params_t *p, const int8_t *in_b, int8_t *out_b)
{
    int8_t g[TE_PAIR_GATHER];
    uint32_t xq[TE_PAIR_MAX];
    int8_t t0[4], t1[4];
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t groups = n >> 2, tail = n & 3;
    const int32_t npix = p->out_h * p->out_w;
    const int32_t oc_n = p->out_c;
    const int32_t *const eff = p->eff_bias;
    const int32_t *const mult = p->mult;
    const int8_t *const shift = p->shift;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int fast = te_fast_requant(shift, oc_n, lo, hi);
    int32_t px, c, i;
    for (px = 0; px < npix; px += 2) {
        const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
        int8_t *o0 = out_b + px * oc_n;
        int8_t *o1 = out_b + px1 * oc_n;
        te_window_lanes(p, in_b, px / p->out_w, px % p->out_w, g, xq, t0);
        te_window_lanes(p, in_b, px1 / p->out_w, px1 % p->out_w, g, xq + 2, t1);
        for (c = 0; c + 2 <= oc_n; c += 2) {
            const int8_t *w = p->weights + c * n;
            int32_t a[4];
            int8_t r0, r1, r2, r3;
            a[0] = eff[c];
            a[1] = eff[c];
            a[2] = eff[c + 1];
            a[3] = eff[c + 1];
            if (groups > 0) {
                te_mac2x2(xq, w, n, groups, a);
            }
            for (i = 0; i < tail; ++i) {
                const int32_t w0 = w[4 * groups + i], w1 = w[n + 4 * groups + i];
                a[0] += t0[i] * w0;
                a[1] += t1[i] * w0;
                a[2] += t0[i] * w1;
                a[3] += t1[i] * w1;
            }
            if (fast) {
                const int32_t m0 = mult[c], e0 = ~(int32_t)shift[c];
                const int32_t m1 = mult[c + 1], e1 = ~(int32_t)shift[c + 1];
                const int32_t s0 = te_sat8(te_rq_right(a[0], m0, e0) + oo);
                const int32_t s1 = te_sat8(te_rq_right(a[1], m0, e0) + oo);
                const int32_t s2 = te_sat8(te_rq_right(a[2], m1, e1) + oo);
                const int32_t s3 = te_sat8(te_rq_right(a[3], m1, e1) + oo);
                o0[c] = (int8_t)s0;
                o1[c] = (int8_t)s1;
                o0[c + 1] = (int8_t)s2;
                o1[c + 1] = (int8_t)s3;
                continue;
            } else {
                r0 = te_requant(a[0], mult[c], shift[c], oo, lo, hi);
                r1 = te_requant(a[1], mult[c], shift[c], oo, lo, hi);
                r2 = te_requant(a[2], mult[c + 1], shift[c + 1], oo, lo, hi);
                r3 = te_requant(a[3], mult[c + 1], shift[c + 1], oo, lo, hi);
            }
            o0[c] = r0;
            o1[c] = r1;
            o0[c + 1] = r2;
            o1[c + 1] = r3;
        }
        if (c < oc_n) {
            const int8_t *w = p->weights + c * n;
            int32_t a0 = eff[c], a1 = eff[c];
            for (i = 0; i < groups; ++i) {
                const uint32_t wv = te_load32(w + 4 * i);
                const uint32_t we = te_sxtb16(wv), wo = te_sxtb16_ror8(wv);
                a0 = te_smlad(xq[4 * i], we, a0);
                a0 = te_smlad(xq[4 * i + 1], wo, a0);
                a1 = te_smlad(xq[4 * i + 2], we, a1);
                a1 = te_smlad(xq[4 * i + 3], wo, a1);
            }
            for (i = 0; i < tail; ++i) {
                a0 += t0[i] * w[4 * groups + i];
                a1 += t1[i] * w[4 * groups + i];
            }
            o0[c] = te_requant(a0, mult[c], shift[c], oo, lo, hi);
            o1[c] = te_requant(a1, mult[c], shift[c], oo, lo, hi);
        }
    }
}
#endif

void te_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
#ifdef TE_HAVE_DOT4_ROWS
        if (p->out_c >= 2 && p->k_h * p->k_w * p->in_c <= ((p->in_c & 3) == 0 ? TE_PAIR_MAX : TE_PAIR_GATHER)) {
            te_conv_pairs(p, in_b, out + b * p->out_h * p->out_w * p->out_c);
            continue;
        }
#endif
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            te_taps(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int8_t *o = out + ((b * p->out_h + oy) * p->out_w + ox) * p->out_c;
                if ((p->in_c & 3) != 0 && p->k_h * p->k_w * p->in_c <= TE_GATHER_MAX) {
                    te_conv_gathered(p, in_b, iy0, ix0, o);
                    continue;
                }
                if (p->dil_w == 1) {
                    int32_t kx0, kx1;
                    te_taps(ix0, p->k_w, 1, p->in_w, &kx0, &kx1);
#ifdef TE_HAVE_DOT4_ROWS
                    if (ky0 == 0 && ky1 == p->k_h && kx0 == 0 && kx1 == p->k_w && ((p->k_w * p->in_c) & 3) == 0 &&
                        (p->out_c & 3) == 0) {
                        te_conv_full4(in_b + (iy0 * p->in_w + ix0) * p->in_c, p->dil_h * p->in_w * p->in_c, p->k_h,
                                      p->k_w * p->in_c, p->weights, p->k_h * p->k_w * p->in_c, p->out_c,
                                      p->eff_bias, p->mult, p->shift, p->out_offset, p->act_min, p->act_max, o);
                        continue;
                    }
#endif
                    te_conv_pixel_rows(p, in_b + ((iy0 + ky0 * p->dil_h) * p->in_w + ix0 + kx0) * p->in_c,
                                       ky0, ky1, kx0, kx1, o);
                } else {
                    te_conv_pixel_taps(p, in_b, iy0, ix0, o);
                }
            }
        }
    }
}

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

void te_depthwise_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
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
                        if (ntaps == 9 && fast) {
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

/* ---- pooling ------------------------------------------------------------ */

static void te_pool(const te_pool_params_t *p, const int8_t *in, int8_t *out, int is_max)
{
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t fy0 = iy0 < 0 ? -iy0 : 0;
            const int32_t fy1 = p->in_h - iy0 < p->k_h ? p->in_h - iy0 : p->k_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t fx0 = ix0 < 0 ? -ix0 : 0;
                const int32_t fx1 = p->in_w - ix0 < p->k_w ? p->in_w - ix0 : p->k_w;
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                int8_t *o = out + ((b * p->out_h + oy) * p->out_w + ox) * p->c;
                for (c = 0; c < p->c; ++c) {
                    int32_t acc = is_max ? -128 : 0;
                    for (fy = fy0; fy < fy1; ++fy) {
                        const int8_t *row = in + ((b * p->in_h + iy0 + fy) * p->in_w + ix0) * p->c + c;
                        for (fx = fx0; fx < fx1; ++fx) {
                            const int32_t v = row[fx * p->c];
                            if (is_max) {
                                acc = v > acc ? v : acc;
                            } else {
                                acc += v;
                            }
                        }
                    }
                    if (!is_max) {
                        if (count == 0) {
                            acc = 0;
                        } else {
                            acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                        }
                    }
                    o[c] = te_clamp8(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void te_avg_pool_s8(const te_pool_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_pool(p, in, out, 0);
}

void te_max_pool_s8(const te_pool_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_pool(p, in, out, 1);
}

/* ---- ADD / MUL ------------------------------------------------------------ */

static inline int8_t te_add1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    const int32_t x1 = (int32_t)((uint32_t)(a + p->in1_offset) << p->left_shift);
    const int32_t x2 = (int32_t)((uint32_t)(b + p->in2_offset) << p->left_shift);
    const int32_t s1 = te_mbqm_pos(x1, p->in1_mult, p->in1_shift);
    const int32_t s2 = te_mbqm_pos(x2, p->in2_mult, p->in2_shift);
    return te_clamp8(te_mbqm_pos(s1 + s2, p->out_mult, p->out_shift) + p->out_offset, p->act_min, p->act_max);
}

static inline int8_t te_mul1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    const int32_t prod = (a + p->in1_offset) * (b + p->in2_offset);
    return te_clamp8(te_mbqm_pos(prod, p->out_mult, p->out_shift) + p->out_offset, p->act_min, p->act_max);
}

/* te_mbqm_pos for shift <= 0: shift 0 is the rounded high product alone (the larger-scale
 * input of an ADD has multiplier 0.5, that is shift 0) */
static inline int32_t te_rq_nonpos(int32_t x, int32_t mult, int32_t shift)
{
    if (shift == 0) {
        return (int32_t)(((int64_t)x * mult + ((int64_t)1 << 30)) >> 31);
    }
    return te_rq_right(x, mult, ~shift);
}

/* ADD over same shapes when no rescale shifts left (the usual case): parameters in locals and
 * te_rq_nonpos instead of the general MultiplyByQuantizedMultiplier */
static void te_add_flat_right(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    const int32_t o1 = p->in1_offset, o2 = p->in2_offset, ls = p->left_shift;
    const int32_t m1 = p->in1_mult, s1 = p->in1_shift, m2 = p->in2_mult, s2 = p->in2_shift;
    const int32_t mo = p->out_mult, so = p->out_shift;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int32_t n = p->size;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x1 = (int32_t)((uint32_t)(in1[i] + o1) << ls);
        const int32_t x2 = (int32_t)((uint32_t)(in2[i] + o2) << ls);
        const int32_t sum = te_rq_nonpos(x1, m1, s1) + te_rq_nonpos(x2, m2, s2);
        out[i] = te_clamp8(te_rq_nonpos(sum, mo, so) + oo, lo, hi);
    }
}

static void te_binary(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out, int is_mul)
{
    int32_t i, d0, d1, d2, d3;
    if (!p->broadcast && !is_mul && p->in1_shift <= 0 && p->in2_shift <= 0 && p->out_shift <= 0) {
        te_add_flat_right(p, in1, in2, out);
        return;
    }
    if (!p->broadcast) {
        for (i = 0; i < p->size; ++i) {
            out[i] = is_mul ? te_mul1(p, in1[i], in2[i]) : te_add1(p, in1[i], in2[i]);
        }
        return;
    }
    i = 0;
    for (d0 = 0; d0 < p->out_dims[0]; ++d0) {
        for (d1 = 0; d1 < p->out_dims[1]; ++d1) {
            for (d2 = 0; d2 < p->out_dims[2]; ++d2) {
                const int32_t b1 = d0 * p->in1_strides[0] + d1 * p->in1_strides[1] + d2 * p->in1_strides[2];
                const int32_t b2 = d0 * p->in2_strides[0] + d1 * p->in2_strides[1] + d2 * p->in2_strides[2];
                for (d3 = 0; d3 < p->out_dims[3]; ++d3) {
                    const int32_t a = in1[b1 + d3 * p->in1_strides[3]];
                    const int32_t b = in2[b2 + d3 * p->in2_strides[3]];
                    out[i++] = is_mul ? te_mul1(p, a, b) : te_add1(p, a, b);
                }
            }
        }
    }
}

void te_add_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_binary(p, in1, in2, out, 0);
}

void te_mul_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_binary(p, in1, in2, out, 1);
}

/* ---- MEAN ------------------------------------------------------------------ */

void te_mean_s8(const te_mean_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int32_t o0, o1, o2, o3, r0, r1, r2, r3;
    const int32_t *s = p->strides;
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                for (o3 = 0; o3 < p->out_dims[3]; ++o3) {
                    int32_t acc = 0;
                    for (r0 = 0; r0 < p->red_dims[0]; ++r0) {
                        for (r1 = 0; r1 < p->red_dims[1]; ++r1) {
                            for (r2 = 0; r2 < p->red_dims[2]; ++r2) {
                                const int8_t *x = in + (o0 + r0) * s[0] + (o1 + r1) * s[1] + (o2 + r2) * s[2] + o3 * s[3];
                                for (r3 = 0; r3 < p->red_dims[3]; ++r3) {
                                    acc += x[r3 * s[3]];
                                }
                            }
                        }
                    }
                    acc = te_mbqm(acc - p->in_zp * p->count, p->mult, p->shift) + p->out_zp;
                    *out++ = te_clamp8(acc, -128, 127);
                }
            }
        }
    }
}

/* ---- SOFTMAX ---------------------------------------------------------------- */

static int32_t te_clz32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* saturating x * 2^e for e > 0 */
static int32_t te_sat_shl(int32_t x, int32_t e)
{
    const int32_t threshold = (int32_t)(((uint32_t)1 << (31 - e)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << e);
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 in, Q0.31 out */
static int32_t te_one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
    const int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + te_srdhm(half_den, -1010580540);   /* Q2.29 */
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t hdx = te_srdhm(half_den, x);
        const int32_t one_minus = (1 << 29) - hdx;
        x = x + te_sat_shl(te_srdhm(x, one_minus), 2);
    }
    return te_sat_shl(x, 1);
}

void te_softmax_s8(const te_softmax_params_t *p, const int8_t *in, int8_t *out)
{
    int32_t r, c;
    for (r = 0; r < p->outer; ++r) {
        const int8_t *x = in + r * p->depth;
        int8_t *y = out + r * p->depth;
        int32_t max_v = -128;
        int32_t sum = 0;
        int32_t headroom, bits_over_unit, scale;
        for (c = 0; c < p->depth; ++c) {
            max_v = x[c] > max_v ? x[c] : max_v;
        }
        for (c = 0; c < p->depth; ++c) {
            sum += te_rdbpot(p->exp_table[max_v - x[c]], 12);
        }
        headroom = te_clz32((uint32_t)sum);
        bits_over_unit = 12 - headroom;
        scale = te_one_over_one_plus_x((int32_t)(((uint32_t)sum << headroom) - ((uint32_t)1 << 31)));
        for (c = 0; c < p->depth; ++c) {
            const int32_t e = p->exp_table[max_v - x[c]];
            const int32_t v = te_rdbpot(te_srdhm(scale, e), bits_over_unit + 31 - 8) - 128;
            y[c] = te_clamp8(v, -128, 127);
        }
    }
}

/* ---- elementwise, layout ------------------------------------------------------- */

void te_lut_s8(const int8_t *table, const int8_t *in, int8_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = table[(int32_t)in[i] + 128];
    }
}

void te_pad_s8(const te_pad_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t o1 = p->dims[1] + p->before[1] + p->after[1];
    const int32_t o2 = p->dims[2] + p->before[2] + p->after[2];
    const int32_t o3 = p->dims[3] + p->before[3] + p->after[3];
    const int32_t o0 = p->dims[0] + p->before[0] + p->after[0];
    int32_t d0, d1, d2;
    memset(out, (unsigned char)p->pad_value, (size_t)(o0 * o1 * o2 * o3));
    for (d0 = 0; d0 < p->dims[0]; ++d0) {
        for (d1 = 0; d1 < p->dims[1]; ++d1) {
            for (d2 = 0; d2 < p->dims[2]; ++d2) {
                const int8_t *src = in + ((d0 * p->dims[1] + d1) * p->dims[2] + d2) * p->dims[3];
                int8_t *dst = out + (((d0 + p->before[0]) * o1 + d1 + p->before[1]) * o2 + d2 + p->before[2]) * o3 +
                              p->before[3];
                memcpy(dst, src, (size_t)p->dims[3]);
            }
        }
    }
}

void te_concat_s8(int32_t n_in, const int8_t *const *ins, const int32_t *copy, int32_t outer, int8_t *out)
{
    int32_t k, i;
    for (k = 0; k < outer; ++k) {
        for (i = 0; i < n_in; ++i) {
            memcpy(out, ins[i] + k * copy[i], (size_t)copy[i]);
            out += copy[i];
        }
    }
}

void te_copy_s8(const int8_t *in, int8_t *out, int32_t n)
{
    if (in != out) {
        memmove(out, in, (size_t)n);
    }
}
