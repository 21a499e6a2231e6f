/* tinyedge firmware: AVERAGE_POOL_2D / MAX_POOL_2D int8 kernels (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"

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
