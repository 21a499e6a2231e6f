/* tinyedge firmware: AVERAGE_POOL_2D / MAX_POOL_2D int8 kernels (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"
#include "te_mve.h"

/* ---- pooling ------------------------------------------------------------ */

static void te_pool(const te_pool_params_t *p, const int8_t *in, int8_t *out, int is_max)
{
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t fy0 = te_tap_first(iy0), fy1 = te_tap_end(iy0, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t fx0 = te_tap_first(ix0), fx1 = te_tap_end(ix0, p->k_w, p->in_w);
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

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
static inline uint32_t te_sadd16(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* average pooling, 4 channels per word summed in 16-bit lanes (flushed to 32 bits every 256 taps:
 * |sum| <= 256 * 128 fits), about 2 instructions per input byte against 10; channels past the
 * last multiple of 4 one by one.  Compiled for size: at -O2 it is twice as large for 0.05% of kws's
 * instructions. */
TE_SMALL static void te_avg_pool_lanes(const te_pool_params_t *p, const int8_t *in,
                                                               int8_t *out)
{
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            const int32_t fy0 = te_tap_first(iy0), fy1 = te_tap_end(iy0, p->k_h, p->in_h);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int32_t fx0 = te_tap_first(ix0), fx1 = te_tap_end(ix0, p->k_w, p->in_w);
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                const int8_t *x0 = in + ((b * p->in_h + iy0) * p->in_w + ix0) * p->c;
                int8_t *o = out + ((b * p->out_h + oy) * p->out_w + ox) * p->c;
                for (c = 0; c + 4 <= p->c; c += 4) {
                    uint32_t se = 0, so = 0;
                    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, k = 0;
                    for (fy = fy0; fy < fy1; ++fy) {
                        const int8_t *x = x0 + (fy * p->in_w + fx0) * p->c + c;
                        for (fx = fx0; fx < fx1; ++fx, x += p->c) {
                            const uint32_t v = te_load32(x);
                            se = te_sadd16(se, te_sxtb16(v));
                            so = te_sadd16(so, te_sxtb16_ror8(v));
                            if (TE_UNLIKELY(++k == 256)) {
                                s0 += (int16_t)se;
                                s1 += (int16_t)so;
                                s2 += (int16_t)(se >> 16);
                                s3 += (int16_t)(so >> 16);
                                se = so = 0;
                                k = 0;
                            }
                        }
                    }
                    o[c] = te_clamp8(te_avg_div(s0 + (int16_t)se, count), p->act_min, p->act_max);
                    o[c + 1] = te_clamp8(te_avg_div(s1 + (int16_t)so, count), p->act_min, p->act_max);
                    o[c + 2] = te_clamp8(te_avg_div(s2 + (int16_t)(se >> 16), count), p->act_min, p->act_max);
                    o[c + 3] = te_clamp8(te_avg_div(s3 + (int16_t)(so >> 16), count), p->act_min, p->act_max);
                }
                for (; c < p->c; ++c) {
                    int32_t acc = 0;
                    for (fy = fy0; fy < fy1; ++fy) {
                        for (fx = fx0; fx < fx1; ++fx) {
                            acc += x0[(fy * p->in_w + fx) * p->c + c];
                        }
                    }
                    o[c] = te_clamp8(te_avg_div(acc, count), p->act_min, p->act_max);
                }
            }
        }
    }
}
#endif

/* AVERAGE_POOL_2D whose one window is the whole input (output 1x1, no padding: the generator
 * checks), the usual classifier-head pooling: one loop over the pixels instead of the windowed
 * kernel's bounds, a third of its code.  With DSP, 4 channels per word in 16-bit lanes as there. */
TE_SMALL void te_avg_pool_s8_global(const te_pool_params_t *p, const int8_t *TE_RESTRICT in,
                                    int8_t *TE_RESTRICT out)
{
    const int32_t n = p->in_h * p->in_w, nc = p->c;
    int32_t b, c, k;
    for (b = 0; b < p->batches; ++b, in += n * nc, out += nc) {
        c = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
        for (; c + 4 <= nc; c += 4) {
            int32_t s[4] = {0, 0, 0, 0};
            const int8_t *x = in + c;
            int32_t left;
            for (left = n; left > 0; left -= 256) {   /* |lane sum| <= 256 * 128 fits in 16 bits */
                const int32_t m = left < 256 ? left : 256;
                uint32_t se = 0, so = 0;
                for (k = 0; k < m; ++k, x += nc) {
                    const uint32_t v = te_load32(x);
                    se = te_sadd16(se, te_sxtb16(v));
                    so = te_sadd16(so, te_sxtb16_ror8(v));
                }
                s[0] += (int16_t)se;
                s[1] += (int16_t)so;
                s[2] += (int16_t)(se >> 16);
                s[3] += (int16_t)(so >> 16);
            }
            for (k = 0; k < 4; ++k) {
                out[c + k] = te_clamp8(te_avg_div(s[k], n), p->act_min, p->act_max);
            }
        }
#endif
        for (; c < nc; ++c) {
            int32_t acc = 0;
            for (k = 0; k < n; ++k) {
                acc += in[k * nc + c];
            }
            out[c] = te_clamp8(te_avg_div(acc, n), p->act_min, p->act_max);
        }
    }
}

void te_avg_pool_s8(const te_pool_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
#ifdef TE_HAVE_MVE
    if (te_mve_avg_pool_s8(p, in, out)) {
        return;
    }
#endif
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    te_avg_pool_lanes(p, in, out);
#else
    te_pool(p, in, out, 0);
#endif
}

void te_max_pool_s8(const te_pool_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    te_pool(p, in, out, 1);
}
