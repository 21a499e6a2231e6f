/* tinyedge firmware: TRANSPOSE_CONV and grouped CONV_2D, int8 (aot runtime; API in te_kernels.h).
 *
 * Both are written as a gather: every output value sums, over the kernel taps that land on the
 * input, an int8 dot product over input channels (te_dot: SMLAD on Cortex-M4/M7/M33) plus the
 * input offset times that tap's weight sum (tabled at generation time).  Integer sums do not
 * depend on their order, so this equals TFLite Micro's scatter-into-int32-scratch reference
 * bit for bit, without its scratch buffer; then bias and per-channel requantization as CONV_2D. */
#include "te_kernel_helpers.h"

void te_transpose_conv_s8(const te_conv_ext_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const te_conv_params_t *c = &p->conv;
    const int32_t taps = c->k_h * c->k_w, wlen = taps * c->in_c;
    int32_t b, oy, ox, oc, ky, kx;
    for (b = 0; b < c->batches; ++b) {
        const int8_t *img = in + b * c->in_h * c->in_w * c->in_c;
        for (oy = 0; oy < c->out_h; ++oy) {
            for (ox = 0; ox < c->out_w; ++ox) {
                for (oc = 0; oc < c->out_c; ++oc) {
                    const int8_t *w = c->weights + oc * wlen;
                    const int32_t *ts = p->tap_sums + oc * taps;
                    int32_t acc = c->bias[oc];
                    for (ky = 0; ky < c->k_h; ++ky) {
                        const int32_t ty = oy + c->pad_h - ky;
                        int32_t iy;
                        if (ty < 0 || ty % c->stride_h) {
                            continue;
                        }
                        iy = ty / c->stride_h;
                        if (iy >= c->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < c->k_w; ++kx) {
                            const int32_t tx = ox + c->pad_w - kx;
                            int32_t ix;
                            if (tx < 0 || tx % c->stride_w) {
                                continue;
                            }
                            ix = tx / c->stride_w;
                            if (ix >= c->in_w) {
                                continue;
                            }
                            acc += te_dot(img + (iy * c->in_w + ix) * c->in_c, w + (ky * c->k_w + kx) * c->in_c, c->in_c) +
                                   c->in_offset * ts[ky * c->k_w + kx];
                        }
                    }
                    *out++ = te_requant(acc, c->mult[oc], c->shift[oc], c->out_offset, c->act_min, c->act_max);
                }
            }
        }
    }
}

void te_conv2d_grouped_s8(const te_conv_ext_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const te_conv_params_t *c = &p->conv;
    const int32_t fd = c->in_c / p->groups, per_group = c->out_c / p->groups;
    const int32_t taps = c->k_h * c->k_w, wlen = taps * fd;
    int32_t b, oy, ox, oc, ky, kx;
    for (b = 0; b < c->batches; ++b) {
        const int8_t *img = in + b * c->in_h * c->in_w * c->in_c;
        for (oy = 0; oy < c->out_h; ++oy) {
            for (ox = 0; ox < c->out_w; ++ox) {
                const int32_t y0 = oy * c->stride_h - c->pad_h, x0 = ox * c->stride_w - c->pad_w;
                for (oc = 0; oc < c->out_c; ++oc) {
                    const int8_t *w = c->weights + oc * wlen;
                    const int32_t *ts = p->tap_sums + oc * taps;
                    const int32_t ch0 = (oc / per_group) * fd;
                    int32_t acc = c->bias[oc];
                    for (ky = 0; ky < c->k_h; ++ky) {
                        const int32_t iy = y0 + ky * c->dil_h;
                        if (iy < 0 || iy >= c->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < c->k_w; ++kx) {
                            const int32_t ix = x0 + kx * c->dil_w;
                            if (ix < 0 || ix >= c->in_w) {
                                continue;
                            }
                            acc += te_dot(img + (iy * c->in_w + ix) * c->in_c + ch0, w + (ky * c->k_w + kx) * fd, fd) +
                                   c->in_offset * ts[ky * c->k_w + kx];
                        }
                    }
                    *out++ = te_requant(acc, c->mult[oc], c->shift[oc], c->out_offset, c->act_min, c->act_max);
                }
            }
        }
    }
}
