/* tinyedge firmware: AVERAGE_POOL_2D int8 on Helium (MVE); see te_mve.h.
 *
 * Per output pixel and 4 channels the window's sum in 32-bit lanes (one widening load and one
 * VADD per tap, the last out of 4 channels predicated), then per channel te_avg_div's rounding
 * division (TFLite's: half away from zero) and the clamp, as te_pool.c. */
#include "te_kernel_helpers.h"
#include "te_mve.h"

#ifdef TE_HAVE_MVE

int te_mve_avg_pool_s8(const te_pool_params_t *p, const int8_t *in, int8_t *out)
{
    const int32_t ch = p->c;
    int32_t b, oy, ox, c, fy, fx, j;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t fy0 = te_tap_first(iy0), fy1 = te_tap_end(iy0, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t fx0 = te_tap_first(ix0), fx1 = te_tap_end(ix0, p->k_w, p->in_w);
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                const int8_t *x0 = in + ((b * p->in_h + iy0) * p->in_w + ix0) * ch;
                int8_t *o = out + ((b * p->out_h + oy) * p->out_w + ox) * ch;
                for (c = 0; c < ch; c += 4) {
                    const mve_pred16_t pr = vctp32q((uint32_t)(ch - c));
                    int32x4_t acc = vdupq_n_s32(0);
                    int32_t s[4];
                    for (fy = fy0; fy < fy1; ++fy) {
                        const int8_t *x = x0 + (fy * p->in_w + fx0) * ch + c;
                        for (fx = fx0; fx < fx1; ++fx, x += ch) {
                            acc = vaddq_s32(acc, vldrbq_z_s32(x, pr));
                        }
                    }
                    vstrwq_s32(s, acc);
                    for (j = 0; j < 4 && c + j < ch; ++j) {
                        o[c + j] = te_clamp8(te_avg_div(s[j], count), p->act_min, p->act_max);
                    }
                }
            }
        }
    }
    return 1;
}

#else
typedef int te_mve_pool_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
