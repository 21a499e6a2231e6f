/* tinyedge firmware: CONV_2D int8 on Helium (MVE); see te_mve.h.
 *
 * Two output pixels x two output channels per pass.  Each pixel's receptive field is one
 * contiguous run of k_h * k_w * in_c bytes: the input itself for a 1x1 kernel whose pixel lies
 * inside the input, else a copy (zero-point padded, so the folded bias is exact at the borders
 * too).  Per 16 bytes of the run: two input loads, two weight loads, four VMLADAVA (64 MACs in
 * 8 instructions); the last run % 16 bytes predicated.  The four sums are requantized as one
 * vector and stored with one scatter. */
#include "te_mve.h"

#ifdef TE_HAVE_MVE

#define TE_MVE_WIN 1152 /* window bytes per pixel (two windows on the stack) */

/* n bytes from src to dst, 16 at a time */
static inline void te_mve_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)(n - i));
        vstrbq_p_s8(dst + i, vldrbq_z_s8(src + i, pr), pr);
    }
}

static inline void te_mve_fill(int8_t *dst, int8x16_t v, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i += 16) {
        vstrbq_p_s8(dst + i, v, vctp8q((uint32_t)(n - i)));
    }
}

/* the receptive field of output pixel (oy, ox): in place when a 1x1 kernel's pixel is inside the
 * input, else copied into buf */
static const int8_t *te_mve_window(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox,
                                   int8_t *buf)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    const int32_t ic = p->in_c, kc = p->k_w * ic;
    const int8x16_t zp = vdupq_n_s8((int8_t)(-p->in_offset));
    const int row_inside = p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w;
    int8_t *b = buf;
    int32_t ky, kx;
    if (p->k_h == 1 && p->k_w == 1 && iy0 >= 0 && iy0 < p->in_h && row_inside) {
        return in_b + (iy0 * p->in_w + ix0) * ic;
    }
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            te_mve_fill(b, zp, kc);
        } else if (row_inside) {
            te_mve_copy(b, in_b + (iy * p->in_w + ix0) * ic, kc);
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) {
                    te_mve_fill(b + kx * ic, zp, ic);
                } else {
                    te_mve_copy(b + kx * ic, in_b + (iy * p->in_w + ix) * ic, ic);
                }
            }
        }
        b += kc;
    }
    return buf;
}

/* {a, a, b, b} */
static inline int32x4_t te_mve_pair(int32_t a, int32_t b)
{
    int32x4_t v = vdupq_n_s32(a);
    v = vsetq_lane_s32(b, v, 2);
    return vsetq_lane_s32(b, v, 3);
}

/* {x0.w0, x1.w0, x0.w1, x1.w1} + acc over n bytes */
static inline int32x4_t te_mve_dot2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1,
                                      int32_t n, int32x4_t acc)
{
    int32_t a00 = vgetq_lane_s32(acc, 0), a01 = vgetq_lane_s32(acc, 1);
    int32_t a10 = vgetq_lane_s32(acc, 2), a11 = vgetq_lane_s32(acc, 3);
    int32_t i;
    for (i = 0; i + 16 <= n; i += 16) {
        const int8x16_t v0 = vldrbq_s8(x0 + i), v1 = vldrbq_s8(x1 + i);
        const int8x16_t u0 = vldrbq_s8(w0 + i), u1 = vldrbq_s8(w1 + i);
        a00 = vmladavaq_s8(a00, v0, u0);
        a01 = vmladavaq_s8(a01, v1, u0);
        a10 = vmladavaq_s8(a10, v0, u1);
        a11 = vmladavaq_s8(a11, v1, u1);
    }
    if (i < n) {
        const mve_pred16_t pr = vctp8q((uint32_t)(n - i));
        const int8x16_t v0 = vldrbq_z_s8(x0 + i, pr), v1 = vldrbq_z_s8(x1 + i, pr);
        const int8x16_t u0 = vldrbq_z_s8(w0 + i, pr), u1 = vldrbq_z_s8(w1 + i, pr);
        a00 = vmladavaq_s8(a00, v0, u0);
        a01 = vmladavaq_s8(a01, v1, u0);
        a10 = vmladavaq_s8(a10, v0, u1);
        a11 = vmladavaq_s8(a11, v1, u1);
    }
    acc = vsetq_lane_s32(a00, acc, 0);
    acc = vsetq_lane_s32(a01, acc, 1);
    acc = vsetq_lane_s32(a10, acc, 2);
    return vsetq_lane_s32(a11, acc, 3);
}

int te_mve_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int8_t buf0[TE_MVE_WIN], buf1[TE_MVE_WIN];
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    const int32_t npix = p->out_h * p->out_w;
    const int32_t oc_n = p->out_c;
    const int32_t oo = p->out_offset;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int right;
    int32_t b, px, c;
    if (n > TE_MVE_WIN || oc_n < 2) {
        return 0;
    }
    right = te_mve_right_only(p->shift, oc_n);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = out + b * npix * pitch;
        for (px = 0; px < npix; px += 2) {
            const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
            const int8_t *x0 = te_mve_window(p, in_b, px / p->out_w, px % p->out_w, buf0);
            const int8_t *x1 = te_mve_window(p, in_b, px1 / p->out_w, px1 % p->out_w, buf1);
            /* lanes: (px, c), (px1, c), (px, c1), (px1, c1) */
            const uint32_t d1 = (uint32_t)((px1 - px) * pitch);
            uint32x4_t dst = vdupq_n_u32(0);
            dst = vsetq_lane_u32(d1, dst, 1);
            dst = vsetq_lane_u32(1u, dst, 2);
            dst = vsetq_lane_u32(d1 + 1u, dst, 3);
            dst = vaddq_n_u32(dst, (uint32_t)(px * pitch));
            for (c = 0; c < oc_n; c += 2) {
                /* an odd last channel runs in both lane pairs; only the first pair is stored */
                const int32_t c1 = c + 1 < oc_n ? c + 1 : c;
                const int8_t *w0 = p->weights + c * n, *w1 = p->weights + c1 * n;
                const int32x4_t mult = te_mve_pair(p->mult[c], p->mult[c1]);
                const int32x4_t shift = te_mve_pair(p->shift[c], p->shift[c1]);
                int32x4_t acc = te_mve_pair(p->eff_bias[c], p->eff_bias[c1]);
                acc = te_mve_dot2x2(x0, x1, w0, w1, n, acc);
                acc = right ? te_mve_requant_r(acc, mult, shift, oo, lo, hi)
                            : te_mve_requant(acc, mult, shift, oo, lo, hi);
                if (c1 != c) {
                    vstrbq_scatter_offset_s32(out_b + c, dst, acc);
                } else {
                    vstrbq_scatter_offset_p_s32(out_b + c, dst, acc, vctp32q(2));
                }
            }
        }
    }
    return 1;
}

#else
typedef int te_mve_conv_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
