/* tinyedge firmware: CONV_2D int8 kernels (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"
#include "te_mve.h"

/* ---- CONV_2D ----------------------------------------------------------- */

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

/* Two output pixels x two output channels per pass (every CONV_2D whose kernel window is at
 * most TE_PAIR_MAX bytes, or TE_PAIR_GATHER when in_c % 4 != 0).  Each pixel's window is read
 * once (zero-point padded, so the folded bias is exact at the borders too) and sign-extended to
 * 16-bit lanes, interleaved as [px0 even, px0 odd, px1 even, px1 odd] per 4 input bytes; the
 * inner loop then loads each weight word once for two pixels: 16 MACs in 19 instructions. */
#define TE_PAIR_MAX 576    /* window bytes (in_c % 4 == 0): 4 * TE_PAIR_MAX bytes of stack */
#define TE_PAIR_GATHER 128 /* window bytes otherwise (gathered first) */

/* compiled for size: it runs once per output pixel, only for windows whose input channels are not
 * a multiple of 4 (a first layer), and its copies are memcpy / memset calls either way */
TE_SMALL static void te_window(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t *buf)
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

#ifdef TE_HAVE_DOT4_ROWS
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
TE_SMALL static void te_window_lanes(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t *g,
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

static void te_conv_pairs(const te_conv_params_t *p, const int8_t *in_b, int8_t *out_b, int32_t pitch)
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
        int8_t *o0 = out_b + px * pitch;
        int8_t *o1 = out_b + px1 * pitch;
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
#ifdef TE_HAVE_MVE
    if (te_mve_conv2d_s8(p, in, out)) {
        return;
    }
#endif
    int32_t b, oy, ox;
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
#ifdef TE_HAVE_DOT4_ROWS
        if (p->out_c >= 2 && p->k_h * p->k_w * p->in_c <= ((p->in_c & 3) == 0 ? TE_PAIR_MAX : TE_PAIR_GATHER)) {
            te_conv_pairs(p, in_b, out + b * p->out_h * p->out_w * pitch, pitch);
            continue;
        }
#endif
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t ky0, ky1;
            te_taps(iy0, p->k_h, p->dil_h, p->in_h, &ky0, &ky1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int8_t *o = out + ((b * p->out_h + oy) * p->out_w + ox) * pitch;
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

/* ---- CONV_2D on weights re-ordered at generation time (te_conv2d_s8_paired) ---------------
 *
 * Channels in pairs (c, c + 1), the window (zero padded to a multiple of 4 bytes) in groups of 4
 * bytes k..k+3, whose 16-bit lanes are xe = (x[k], x[k+2]) and xo = (x[k+1], x[k+3]).  Per pair and
 * group two words, for xe and for xo; per lane the low byte is channel c's weight w0 and the high
 * byte channel c + 1's w1 minus 1 when w0 < 0, so the lane as a signed 16-bit value is
 * 256 * w1 + w0.  SMLAD of the raw word accumulates f = 256 * S1 + S0, SMLAD of its SXTB16 e = S0:
 * 2 channels x 2 pixels x 4 bytes (16 MACs) in 13 instructions.  S1 = (f - e) >> 8 exactly
 * (modulo 2^32): the generator uses this layout only when 128 * sum |w1| < 2^23 on every second
 * channel (tinyedge.aot.codegen._conv_paired). */
#ifdef TE_HAVE_DOT4_ROWS
/* a[0..3] = f px0, e px0, f px1, e px1 of one channel pair over an even number of groups, up
 * to *xend (a memory operand set once per layer) */
static inline void te_mac2x2_paired(const uint32_t *xq, const int8_t *w, const uint32_t *const *xend, int32_t *a)
{
    int32_t f0 = a[0], e0 = a[1], f1 = a[2], e1 = a[3];
    uint32_t xe0, xo0, xe1, xo1, we, wo, t;
#define TE_MAC2X2P_GROUP                                 \
    "ldrd   %[we], %[wo], [%[w]], #8\n\t"               \
    "ldrd   %[xe0], %[xo0], [%[x]], #8\n\t"             \
    "ldrd   %[xe1], %[xo1], [%[x]], #8\n\t"             \
    "sxtb16 %[t], %[we]\n\t"                            \
    "smlad  %[f0], %[xe0], %[we], %[f0]\n\t"            \
    "smlad  %[e0], %[xe0], %[t], %[e0]\n\t"             \
    "smlad  %[f1], %[xe1], %[we], %[f1]\n\t"            \
    "smlad  %[e1], %[xe1], %[t], %[e1]\n\t"             \
    "sxtb16 %[t], %[wo]\n\t"                            \
    "smlad  %[f0], %[xo0], %[wo], %[f0]\n\t"            \
    "smlad  %[e0], %[xo0], %[t], %[e0]\n\t"             \
    "smlad  %[f1], %[xo1], %[wo], %[f1]\n\t"            \
    "smlad  %[e1], %[xo1], %[t], %[e1]\n\t"
    __asm__ volatile(
        "1:\n\t"
        TE_MAC2X2P_GROUP
        TE_MAC2X2P_GROUP
        "ldr    %[t], %[xend]\n\t"
        "cmp    %[x], %[t]\n\t"
        "bne    1b\n\t"
        : [x] "+r"(xq), [w] "+r"(w), [f0] "+r"(f0), [e0] "+r"(e0), [f1] "+r"(f1), [e1] "+r"(e1),
          [xe0] "=&r"(xe0), [xo0] "=&r"(xo0), [xe1] "=&r"(xe1), [xo1] "=&r"(xo1), [we] "=&r"(we), [wo] "=&r"(wo),
          [t] "=&r"(t)
        : [xend] "m"(*xend)
        : "cc", "memory");
#undef TE_MAC2X2P_GROUP
    a[0] = f0;
    a[1] = e0;
    a[2] = f1;
    a[3] = e1;
}

/* te_rq_right for |acc| < 2^30 (te_conv2d_s8_paired's precondition): SMMULR(2 * acc, mult) is
 * the rounded high product */
static inline int32_t te_rq_right30(int32_t acc, int32_t mult, int32_t em1)
{
    int32_t v;
    __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"((uint32_t)acc << 1), "r"(mult));
    return (((v + (v >> 31)) >> em1) + 1) >> 1;
}

/* per channel pair (p->eff_bias points at an array of them): folded biases, multipliers, shifts */
typedef struct {
    int32_t eff0, eff1, mult0, mult1;
    int8_t shift0, shift1, pad0, pad1;
} te_pair_head_t;

/* te_conv2d_s8_paired_fast_packed's per-pair constants, 16 bytes: eff0, then
 * eff1 * 2048 + (~shift1) * 32 + ~shift0 (the fast variants' shifts are -32..-1, so ~shift is
 * 0..31), mult0, mult1.  The generator packs them when |eff1| < 2^20 and |eff1| + 128 * sum |w1|
 * < 2^23 - 1: then, with d = f - e = 256 * S1, d + (word >> 3) = 256 * (S1 + eff1) + r, 0 <= r < 128,
 * whose >> 7 is exactly the 2 * acc that SMMULR takes.  One load and four ALU operations for the
 * second channel's bias and both shifts, where the 20-byte head takes three loads and four. */
#define TE_PAIR_WORDS(fast) ((fast) == 2 ? 4 : 5)

static inline __attribute__((always_inline)) void te_pair_shifts(const int32_t *hw, const int fast, int32_t *em0,
                                                                 int32_t *em1)
{
    if (fast == 2) {
        *em0 = hw[1] & 31;
        *em1 = (hw[1] >> 5) & 31;
    } else {
        const int8_t *sh = (const int8_t *)(const void *)(hw + 4);
        *em0 = ~(int32_t)sh[0];
        *em1 = ~(int32_t)sh[1];
    }
}

/* 2 * (eff1 + S1) of the second channel from d = f - e (256 * S1, modulo 2^32) */
static inline __attribute__((always_inline)) int32_t te_pair_acc2(const int32_t *hw, const int fast, uint32_t d)
{
    if (fast == 2) {
        return (int32_t)(d + (uint32_t)(hw[1] >> 3)) >> 7;
    }
    return (int32_t)((uint32_t)(hw[1] + ((int32_t)d >> 8)) << 1);
}

/* te_rq_right30 of an accumulator already doubled */
static inline int32_t te_rq_right30_x2(int32_t acc2, int32_t mult, int32_t em1)
{
    int32_t v;
    __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"(acc2), "r"(mult));
    return (((v + (v >> 31)) >> em1) + 1) >> 1;
}

/* fast (1, or 2 with the packed heads): every shift negative and the clamp the whole int8 range
 * (the generator checks), else (0) any */
static inline __attribute__((always_inline)) void te_conv_pairs_paired(const te_conv_params_t *p, const int8_t *in_b,
                                                                       int8_t *out_b, int32_t pitch, const int fast)
{
    int8_t g[TE_PAIR_GATHER];
    uint32_t xq[TE_PAIR_MAX + 4];
    int8_t t0[4] = {0, 0, 0, 0}, t1[4] = {0, 0, 0, 0};
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t full = n >> 2, groups = ((n + 7) >> 3) * 2;   /* the weights' groups: an even count */
    const int32_t step = 8 * groups;
    const uint32_t *xend = xq + 4 * groups;
    const int32_t npix = p->out_h * p->out_w;
    const int32_t oc_n = p->out_c;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int8_t *w;
    const te_pair_head_t *h;
    int32_t px, c;
    for (c = 4 * full; c < 4 * groups; ++c) {
        xq[c] = 0;   /* the padding groups; the partial one is rewritten per pixel */
    }
    for (px = 0; px < npix; px += 2) {
        const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
        int8_t *o0 = out_b + px * pitch;
        int8_t *o1 = out_b + px1 * pitch;
        te_window_lanes(p, in_b, px / p->out_w, px % p->out_w, g, xq, t0);
        te_window_lanes(p, in_b, px1 / p->out_w, px1 % p->out_w, g, xq + 2, t1);
        if (n & 3) {   /* the partial group, zero padded (t0/t1 past n % 4 stay 0) */
            const uint32_t v0 = te_load32(t0), v1 = te_load32(t1);
            xq[4 * full] = te_sxtb16(v0);
            xq[4 * full + 1] = te_sxtb16_ror8(v0);
            xq[4 * full + 2] = te_sxtb16(v1);
            xq[4 * full + 3] = te_sxtb16_ror8(v1);
        }
        w = p->weights;
        h = (const te_pair_head_t *)(const void *)p->eff_bias;
        if (fast) {
            const int32_t *hw = p->eff_bias;
            for (c = 0; c + 2 <= oc_n; c += 2, w += step, hw += TE_PAIR_WORDS(fast)) {
                int32_t a[4];
                a[0] = a[1] = a[2] = a[3] = hw[0];
                te_mac2x2_paired(xq, w, &xend, a);
                {
                    const int32_t m0 = hw[2], m1 = hw[3];
                    int32_t e0, e1;
                    te_pair_shifts(hw, fast, &e0, &e1);
                    const int32_t s0 = te_sat8(te_rq_right30(a[1], m0, e0) + oo);
                    const int32_t s1 = te_sat8(te_rq_right30(a[3], m0, e0) + oo);
                    const int32_t s2 = te_sat8(
                        te_rq_right30_x2(te_pair_acc2(hw, fast, (uint32_t)a[0] - (uint32_t)a[1]), m1, e1) + oo);
                    const int32_t s3 = te_sat8(
                        te_rq_right30_x2(te_pair_acc2(hw, fast, (uint32_t)a[2] - (uint32_t)a[3]), m1, e1) + oo);
                    o0[c] = (int8_t)s0;
                    o1[c] = (int8_t)s1;
                    o0[c + 1] = (int8_t)s2;
                    o1[c + 1] = (int8_t)s3;
                }
            }
            if (c < oc_n) {   /* an odd last channel (paired with a zero one): its own requantization */
                int32_t a[4], e0, e1;
                a[0] = a[1] = a[2] = a[3] = hw[0];
                te_mac2x2_paired(xq, w, &xend, a);
                te_pair_shifts(hw, fast, &e0, &e1);
                (void)e1;
                o0[c] = (int8_t)te_sat8(te_rq_right30(a[1], hw[2], e0) + oo);
                o1[c] = (int8_t)te_sat8(te_rq_right30(a[3], hw[2], e0) + oo);
            }
            continue;   /* the general loop below is the other variant's: not linked into this one */
        }
        for (c = 0; c < oc_n; c += 2, w += step, ++h) {
            int32_t a[4];
            a[0] = a[1] = a[2] = a[3] = h->eff0;
            te_mac2x2_paired(xq, w, &xend, a);
            o0[c] = te_requant(a[1], h->mult0, h->shift0, oo, lo, hi);
            o1[c] = te_requant(a[3], h->mult0, h->shift0, oo, lo, hi);
            if (c + 1 < oc_n) {   /* an odd last channel pairs with a zero one */
                const int32_t b1 = h->eff1;
                o0[c + 1] = te_requant(b1 + ((int32_t)((uint32_t)a[0] - (uint32_t)a[1]) >> 8), h->mult1,
                                       h->shift1, oo, lo, hi);
                o1[c + 1] = te_requant(b1 + ((int32_t)((uint32_t)a[2] - (uint32_t)a[3]) >> 8), h->mult1,
                                       h->shift1, oo, lo, hi);
            }
        }
    }
}
#else
typedef struct {
    int32_t eff0, eff1, mult0, mult1;
    int8_t shift0, shift1, pad0, pad1;
} te_pair_head_t;

/* portable: the window gathered per pixel, the weights decoded from the paired layout; packed: the
 * 16-byte heads of te_conv2d_s8_paired_fast_packed (see the DSP path) */
static void te_conv_paired_portable(const te_conv_params_t *p, const int8_t *in_b, int8_t *out_b, int32_t pitch,
                                    const int packed)
{
    int8_t g[TE_PAIR_MAX];
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t groups = ((n + 7) >> 3) * 2;   /* the weights' groups: an even count */
    const int32_t step = 8 * groups;
    int32_t oy, ox, c, k;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            int8_t *o = out_b + (oy * p->out_w + ox) * pitch;
            const int8_t *wp = p->weights;
            const int32_t *hw = p->eff_bias;
            te_window(p, in_b, oy, ox, g);
            for (c = 0; c < p->out_c; c += 2, wp += step, hw += packed ? 4 : 5) {
                const te_pair_head_t *h = (const te_pair_head_t *)(const void *)hw;
                const int32_t eff1 = packed ? hw[1] >> 11 : h->eff1;
                const int32_t shift0 = packed ? ~(hw[1] & 31) : h->shift0;
                const int32_t shift1 = packed ? ~((hw[1] >> 5) & 31) : h->shift1;
                const uint8_t *w = (const uint8_t *)wp;
                int32_t s0 = 0, s1 = 0;
                for (k = 0; k < n; ++k) {
                    /* input k: group k / 4, word (k & 1) (xe: k % 4 in {0, 2}), lane (k >> 1) & 1 */
                    const uint8_t *b = w + 8 * (k >> 2) + 4 * (k & 1) + 2 * ((k >> 1) & 1);
                    const int32_t w0 = (int8_t)b[0], w1 = (int8_t)b[1] + (w0 < 0);
                    s0 += g[k] * w0;
                    s1 += g[k] * w1;
                }
                o[c] = te_requant(h->eff0 + s0, h->mult0, shift0, p->out_offset, p->act_min, p->act_max);
                if (c + 1 < p->out_c) {
                    o[c + 1] = te_requant(eff1 + s1, h->mult1, shift1, p->out_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}
#endif

static inline __attribute__((always_inline)) void te_conv2d_paired(const te_conv_params_t *p, const int8_t *in,
                                                                   int8_t *out, const int fast)
{
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    int32_t b;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = out + b * p->out_h * p->out_w * pitch;
#ifdef TE_HAVE_DOT4_ROWS
        te_conv_pairs_paired(p, in_b, out_b, pitch, fast);
#else
        te_conv_paired_portable(p, in_b, out_b, pitch, fast == 2);
#endif
    }
}

void te_conv2d_s8_paired(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_conv2d_paired(p, in, out, 0);
}

void te_conv2d_s8_paired_fast(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_conv2d_paired(p, in, out, 1);
}

void te_conv2d_s8_paired_fast_packed(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                     int8_t *TE_RESTRICT out)
{
    te_conv2d_paired(p, in, out, 2);
}

void te_conv2d_s8_w(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                    const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_conv_params_t q = *p;
    int32_t c0;
    q.out_pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    q.weights = scratch;
    for (c0 = 0; c0 < p->out_c; c0 += block) {
        const int32_t nb = p->out_c - c0 < block ? p->out_c - c0 : block;
        te_weights_decode(w, c0, c0 + nb, scratch);
        q.out_c = nb;
        q.bias = p->bias + c0;
        q.eff_bias = p->eff_bias + c0;
        q.mult = p->mult + c0;
        q.shift = p->shift + c0;
        te_conv2d_s8(&q, in, out + c0);
    }
}

/* ---- CONV_2D on weights decoded to 16-bit lanes ------------------------------------------ */

#ifdef TE_HAVE_DOT4_ROWS
/* a[0] += px0 . ch0, a[1] += px1 . ch0, a[2] += px0 . ch1, a[3] += px1 . ch1 with both the
 * window (xq) and the weights (wa: ch0, wb: ch1) already in 16-bit lanes: 16 MACs in 12
 * instructions (groups > 0) */
static inline void te_mac2x2_wide(const uint32_t *xq, const uint32_t *wa, const uint32_t *wb, int32_t groups,
                                  int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
    const uint32_t *xend = xq + 4 * groups;
    const int32_t odd = groups & 1;
    uint32_t xe0, xo0, xe1, xo1, we, wo;
#define TE_MAC2X2W_GROUP                                 \
    "ldrd   %[xe0], %[xo0], [%[x]], #8\n\t"             \
    "ldrd   %[xe1], %[xo1], [%[x]], #8\n\t"             \
    "ldrd   %[we], %[wo], [%[wa]], #8\n\t"              \
    "smlad  %[a00], %[xe0], %[we], %[a00]\n\t"          \
    "smlad  %[a00], %[xo0], %[wo], %[a00]\n\t"          \
    "smlad  %[a01], %[xe1], %[we], %[a01]\n\t"          \
    "smlad  %[a01], %[xo1], %[wo], %[a01]\n\t"          \
    "ldrd   %[we], %[wo], [%[wb]], #8\n\t"              \
    "smlad  %[a10], %[xe0], %[we], %[a10]\n\t"          \
    "smlad  %[a10], %[xo0], %[wo], %[a10]\n\t"          \
    "smlad  %[a11], %[xe1], %[we], %[a11]\n\t"          \
    "smlad  %[a11], %[xo1], %[wo], %[a11]\n\t"
    __asm__ volatile(
        "ldr    %[we], %[odd]\n\t"
        "cmp    %[we], #0\n\t"
        "bne    3f\n\t"
        "1:\n\t"
        TE_MAC2X2W_GROUP
        "3:\n\t"
        TE_MAC2X2W_GROUP
        "ldr    %[we], %[xend]\n\t"
        "cmp    %[x], %[we]\n\t"
        "bne    1b\n\t"
        : [x] "+r"(xq), [wa] "+r"(wa), [wb] "+r"(wb), [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10),
          [a11] "+r"(a11), [xe0] "=&r"(xe0), [xo0] "=&r"(xo0), [xe1] "=&r"(xe1), [xo1] "=&r"(xo1), [we] "=&r"(we),
          [wo] "=&r"(wo)
        : [xend] "m"(xend), [odd] "m"(odd)
        : "cc", "memory");
#undef TE_MAC2X2W_GROUP
    a[0] = a00;
    a[1] = a01;
    a[2] = a10;
    a[3] = a11;
}

/* te_conv_pairs with lanes weights `wl` (n % 4 == 0) */
static void te_conv_pairs_wide(const te_conv_params_t *p, const uint32_t *wl, const int8_t *in_b, int8_t *out_b,
                               int32_t pitch)
{
    int8_t g[TE_PAIR_GATHER];
    uint32_t xq[TE_PAIR_MAX];
    int8_t t0[4], t1[4];
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t groups = n >> 2, half = n >> 1;
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
        int8_t *o0 = out_b + px * pitch;
        int8_t *o1 = out_b + px1 * pitch;
        te_window_lanes(p, in_b, px / p->out_w, px % p->out_w, g, xq, t0);
        te_window_lanes(p, in_b, px1 / p->out_w, px1 % p->out_w, g, xq + 2, t1);
        for (c = 0; c + 2 <= oc_n; c += 2) {
            const uint32_t *w = wl + c * half;
            int32_t a[4];
            a[0] = eff[c];
            a[1] = eff[c];
            a[2] = eff[c + 1];
            a[3] = eff[c + 1];
            te_mac2x2_wide(xq, w, w + half, groups, a);
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
            } else {
                const int8_t r0 = te_requant(a[0], mult[c], shift[c], oo, lo, hi);
                const int8_t r1 = te_requant(a[1], mult[c], shift[c], oo, lo, hi);
                const int8_t r2 = te_requant(a[2], mult[c + 1], shift[c + 1], oo, lo, hi);
                const int8_t r3 = te_requant(a[3], mult[c + 1], shift[c + 1], oo, lo, hi);
                o0[c] = r0;
                o1[c] = r1;
                o0[c + 1] = r2;
                o1[c + 1] = r3;
            }
        }
        if (c < oc_n) {
            const uint32_t *w = wl + c * half;
            int32_t a0 = eff[c], a1 = eff[c];
            for (i = 0; i < groups; ++i) {
                a0 = te_smlad(xq[4 * i], w[2 * i], a0);
                a0 = te_smlad(xq[4 * i + 1], w[2 * i + 1], a0);
                a1 = te_smlad(xq[4 * i + 2], w[2 * i], a1);
                a1 = te_smlad(xq[4 * i + 3], w[2 * i + 1], a1);
            }
            o0[c] = te_requant(a0, mult[c], shift[c], oo, lo, hi);
            o1[c] = te_requant(a1, mult[c], shift[c], oo, lo, hi);
        }
    }
}
#endif

/* portable (and the DSP build's path for shapes the paired kernel does not take): weight j of a
 * channel is lane (j >> 1) & 1 of word (j >> 2) * 2 + (j & 1) */
static inline int32_t te_lane(const uint32_t *wl, int32_t j)
{
    const uint32_t word = wl[(j >> 2) * 2 + (j & 1)];
    return (int32_t)(int16_t)(uint16_t)(((j >> 1) & 1) ? word >> 16 : word & 0xFFFFu);
}

static void te_conv_wide_portable(const te_conv_params_t *p, const uint32_t *wl, const int8_t *in_b, int8_t *out_b,
                                  int32_t pitch)
{
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t zp = -p->in_offset;
    int32_t oy, ox, c, ky, kx, i;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
            int8_t *o = out_b + (oy * p->out_w + ox) * pitch;
            for (c = 0; c < p->out_c; ++c) {
                const uint32_t *w = wl + c * (n / 2);
                int32_t acc = p->eff_bias[c];
                for (ky = 0; ky < p->k_h; ++ky) {
                    const int32_t iy = iy0 + ky * p->dil_h;
                    for (kx = 0; kx < p->k_w; ++kx) {
                        const int32_t ix = ix0 + kx * p->dil_w;
                        const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                        const int8_t *x = in_b + (iy * p->in_w + ix) * p->in_c;
                        const int32_t j0 = (ky * p->k_w + kx) * p->in_c;
                        for (i = 0; i < p->in_c; ++i) {
                            acc += (inside ? x[i] : zp) * te_lane(w, j0 + i);
                        }
                    }
                }
                o[c] = te_requant(acc, p->mult[c], p->shift[c], p->out_offset, p->act_min, p->act_max);
            }
        }
    }
}

void te_conv2d_s8_wide(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                       const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    uint32_t *const wl = (uint32_t *)(void *)scratch;
    te_conv_params_t q = *p;
    int32_t c0, b;
#ifdef TE_HAVE_DOT4_ROWS
    const int32_t n = p->k_h * p->k_w * p->in_c;
    /* the paired kernel's shapes (the generator emits te_conv2d_s8_wide for these only); no call
     * into te_conv2d_s8, so a model whose convs are all stored links none of the dense paths */
    const int paired = p->out_c >= 2 && n <= ((p->in_c & 3) == 0 ? TE_PAIR_MAX : TE_PAIR_GATHER);
#endif
    for (c0 = 0; c0 < p->out_c; c0 += block) {
        const int32_t nb = p->out_c - c0 < block ? p->out_c - c0 : block;
        w->decode_wide(w, c0, c0 + nb, wl);
        q.out_c = nb;
        q.bias = NULL;   /* the paired kernel reads only the folded bias */
        q.eff_bias = p->eff_bias + c0;
        q.mult = p->mult + c0;
        q.shift = p->shift + c0;
        for (b = 0; b < p->batches; ++b) {
            const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
            int8_t *out_b = out + b * p->out_h * p->out_w * pitch + c0;
#ifdef TE_HAVE_DOT4_ROWS
            if (paired) {
                te_conv_pairs_wide(&q, wl, in_b, out_b, pitch);
                continue;
            }
#endif
            te_conv_wide_portable(&q, wl, in_b, out_b, pitch);
        }
    }
}
