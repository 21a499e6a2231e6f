/* tinyedge firmware: RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR, int8 (aot runtime; API in
 * te_kernels.h).  The source coordinates come from tables computed at generation time with TFLite's
 * float (nearest) and 10-bit fixed-point (bilinear) arithmetic; bilinear interpolates as TFLite's
 * ResizeBilinearInteger: four products of 10-bit weights, rounded half away from zero by 2^20
 * (|sum| < 2^29 even where half-pixel centres give a negative fraction, so int32 is exact). */
#include "te_kernel_helpers.h"

void te_resize_nearest_s8(const te_resize_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t c = p->c;
    int32_t b, y, x;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *img = in + b * p->in_h * p->in_w * c;
        for (y = 0; y < p->out_h; ++y) {
            const int8_t *row = img + p->y0[y] * p->in_w * c;
            for (x = 0; x < p->out_w; ++x) {
                memcpy(out, row + p->x0[x] * c, (size_t)c);
                out += c;
            }
        }
    }
}

void te_resize_bilinear_s8(const te_resize_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t c = p->c, pitch = p->in_w * c;
    int32_t b, y, x, ch;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *img = in + b * p->in_h * pitch;
        for (y = 0; y < p->out_h; ++y) {
            const int8_t *r0 = img + p->y0[y] * pitch;
            const int8_t *r1 = img + p->y1[y] * pitch;
            const int32_t wy1 = p->fy[y], wy0 = 1024 - wy1;
            for (x = 0; x < p->out_w; ++x) {
                const int32_t wx1 = p->fx[x], wx0 = 1024 - wx1;
                const int8_t *a = r0 + p->x0[x] * c, *bb = r0 + p->x1[x] * c;
                const int8_t *cc = r1 + p->x0[x] * c, *d = r1 + p->x1[x] * c;
                for (ch = 0; ch < c; ++ch) {
                    const int32_t v = a[ch] * wy0 * wx0 + cc[ch] * wy1 * wx0 + bb[ch] * wy0 * wx1 + d[ch] * wy1 * wx1;
                    const int32_t r = v > 0 ? (v + (1 << 19)) / (1 << 20) : (v - (1 << 19)) / (1 << 20);
                    *out++ = (int8_t)r;
                }
            }
        }
    }
}
