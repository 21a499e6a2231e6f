/* tinyedge firmware: DEPTHWISE_CONV_2D int8 (depth multiplier 1) on Helium (MVE); see te_mve.h.
 *
 * Per output pixel, every kernel tap through a pointer (taps outside the input read a row of
 * input zero points, which the folded bias cancels exactly); channels 4 at a time in 32-bit
 * lanes: per tap and 4 channels a widening input load, a widening weight load, VMUL, VADD.  Two
 * output pixels share the weight loads.  The last out_c % 4 channels predicated. */
#include "te_mve.h"

#include <string.h>

#ifdef TE_HAVE_MVE

#define TE_MVE_DW_TAPS 64   /* kernel taps (pointer table on the stack) */
#define TE_MVE_DW_ZMAX 1024 /* channels (zero-point row on the stack) */

static void te_mve_dw_taps(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox,
                           const int8_t *zrow, const int8_t **tp)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    int32_t ky, kx, t = 0;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        const int row_ok = (uint32_t)iy < (uint32_t)p->in_h;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            tp[t++] = row_ok && (uint32_t)ix < (uint32_t)p->in_w ? in_b + (iy * p->in_w + ix) * p->in_c : zrow;
        }
    }
}

/* the first tap of output pixel px when its whole window lies inside the input, else NULL */
static inline const int8_t *te_mve_dw_origin(const te_conv_params_t *p, const int8_t *in_b, int32_t px)
{
    const int32_t iy0 = px / p->out_w * p->stride_h - p->pad_h;
    const int32_t ix0 = px % p->out_w * p->stride_w - p->pad_w;
    if (iy0 < 0 || iy0 + (p->k_h - 1) * p->dil_h >= p->in_h || ix0 < 0 || ix0 + (p->k_w - 1) * p->dil_w >= p->in_w) {
        return NULL;
    }
    return in_b + (iy0 * p->in_w + ix0) * p->in_c;
}

int te_mve_depthwise_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int8_t zrow[TE_MVE_DW_ZMAX];
    const int8_t *tp0[TE_MVE_DW_TAPS], *tp1[TE_MVE_DW_TAPS];
    int32_t off[TE_MVE_DW_TAPS];
    const int32_t ntaps = p->k_h * p->k_w;
    const int32_t oc_n = p->out_c;
    const int32_t npix = p->out_h * p->out_w;
    const int32_t oo = p->out_offset;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int right;
    int32_t b, px, c, t;
    if (p->depth_mult != 1 || ntaps > TE_MVE_DW_TAPS || oc_n > TE_MVE_DW_ZMAX) {
        return 0;
    }
    right = te_mve_right_only(p->shift, oc_n);
    for (t = 0; t < ntaps; ++t) {
        off[t] = (t / p->k_w * p->dil_h * p->in_w + t % p->k_w * p->dil_w) * p->in_c;
    }
    memset(zrow, (unsigned char)(int8_t)(-p->in_offset), (size_t)oc_n);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = out + b * npix * oc_n;
        for (px = 0; px < npix; px += 2) {
            const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
            int8_t *o0 = out_b + px * oc_n, *o1 = out_b + px1 * oc_n;
            const int8_t *b0 = te_mve_dw_origin(p, in_b, px), *b1 = te_mve_dw_origin(p, in_b, px1);
            if (b0 != NULL && b1 != NULL) {
                for (t = 0; t < ntaps; ++t) {   /* both windows inside: fixed tap offsets */
                    tp0[t] = b0 + off[t];
                    tp1[t] = b1 + off[t];
                }
            } else {
                te_mve_dw_taps(p, in_b, px / p->out_w, px % p->out_w, zrow, tp0);
                te_mve_dw_taps(p, in_b, px1 / p->out_w, px1 % p->out_w, zrow, tp1);
            }
            c = 0;
            /* 8 channels (two lane groups) per pass, no predication */
            for (; c + 8 <= oc_n; c += 8) {
                const int8_t *w = p->weights + c;
                int32x4_t a0 = vldrwq_s32(p->eff_bias + c), b0 = vldrwq_s32(p->eff_bias + c + 4);
                int32x4_t a1 = a0, b1 = b0;
                int32x4_t mult, shift;
                for (t = 0; t < ntaps; ++t) {
                    const int8_t *x0 = tp0[t] + c, *x1 = tp1[t] + c;
                    const int32x4_t wa = vldrbq_s32(w), wb = vldrbq_s32(w + 4);
                    a0 = vaddq_s32(a0, vmulq_s32(vldrbq_s32(x0), wa));
                    b0 = vaddq_s32(b0, vmulq_s32(vldrbq_s32(x0 + 4), wb));
                    a1 = vaddq_s32(a1, vmulq_s32(vldrbq_s32(x1), wa));
                    b1 = vaddq_s32(b1, vmulq_s32(vldrbq_s32(x1 + 4), wb));
                    w += oc_n;
                }
                mult = vldrwq_s32(p->mult + c);
                shift = vldrbq_s32(p->shift + c);
                if (right) {
                    a0 = te_mve_requant_r(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant_r(a1, mult, shift, oo, lo, hi);
                } else {
                    a0 = te_mve_requant(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant(a1, mult, shift, oo, lo, hi);
                }
                vstrbq_s32(o0 + c, a0);
                vstrbq_s32(o1 + c, a1);
                mult = vldrwq_s32(p->mult + c + 4);
                shift = vldrbq_s32(p->shift + c + 4);
                if (right) {
                    b0 = te_mve_requant_r(b0, mult, shift, oo, lo, hi);
                    b1 = te_mve_requant_r(b1, mult, shift, oo, lo, hi);
                } else {
                    b0 = te_mve_requant(b0, mult, shift, oo, lo, hi);
                    b1 = te_mve_requant(b1, mult, shift, oo, lo, hi);
                }
                vstrbq_s32(o0 + c + 4, b0);
                vstrbq_s32(o1 + c + 4, b1);
            }
            for (; c < oc_n; c += 4) {
                const mve_pred16_t pr = vctp32q((uint32_t)(oc_n - c));
                const int8_t *w = p->weights + c;
                int32x4_t a0 = vldrwq_z_s32(p->eff_bias + c, pr);
                int32x4_t a1 = a0;
                int32x4_t mult, shift;
                for (t = 0; t < ntaps; ++t) {
                    const int32x4_t wv = vldrbq_z_s32(w, pr);
                    a0 = vaddq_s32(a0, vmulq_s32(vldrbq_z_s32(tp0[t] + c, pr), wv));
                    a1 = vaddq_s32(a1, vmulq_s32(vldrbq_z_s32(tp1[t] + c, pr), wv));
                    w += oc_n;
                }
                mult = vldrwq_z_s32(p->mult + c, pr);
                shift = vldrbq_z_s32(p->shift + c, pr);
                if (right) {
                    a0 = te_mve_requant_r(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant_r(a1, mult, shift, oo, lo, hi);
                } else {
                    a0 = te_mve_requant(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant(a1, mult, shift, oo, lo, hi);
                }
                vstrbq_p_s32(o0 + c, a0, pr);
                vstrbq_p_s32(o1 + c, a1, pr);
            }
        }
    }
    return 1;
}

#else
typedef int te_mve_depthwise_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
