/* tinyedge firmware: SUB, SQUARED_DIFFERENCE, PRELU, MAXIMUM, MINIMUM (same shapes or 4-D
 * broadcast, as ADD in te_elementwise.c) and REDUCE_MAX (aot runtime; API in te_kernels.h).
 * Arithmetic as TFLite Micro's reference kernels: MultiplyByQuantizedMultiplier with double
 * rounding, the rescale parameters computed at generation time. */
#include "te_kernel_helpers.h"

static inline int8_t te_sub1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    const int32_t x1 = (int32_t)((uint32_t)(a + p->in1_offset) << p->left_shift);
    const int32_t x2 = (int32_t)((uint32_t)(b + p->in2_offset) << p->left_shift);
    const int32_t d = te_mbqm(x1, p->in1_mult, p->in1_shift) - te_mbqm(x2, p->in2_mult, p->in2_shift);
    return te_clamp8(te_mbqm(d, p->out_mult, p->out_shift) + p->out_offset, p->act_min, p->act_max);
}

static inline int8_t te_sqdiff1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    const int32_t x1 = (a + p->in1_offset) * (1 << p->left_shift);
    const int32_t x2 = (b + p->in2_offset) * (1 << p->left_shift);
    const int32_t d = te_mbqm(x1, p->in1_mult, p->in1_shift) - te_mbqm(x2, p->in2_mult, p->in2_shift);
    return te_clamp8(te_mbqm(d * d, p->out_mult, p->out_shift) + p->out_offset, p->act_min, p->act_max);
}

static inline int8_t te_prelu1(const te_binary_params_t *p, int32_t a, int32_t alpha)
{
    const int32_t x = a + p->in1_offset;
    const int32_t v = x >= 0 ? te_mbqm(x, p->out_mult, p->out_shift)
                             : te_mbqm(x * (alpha + p->in2_offset), p->in1_mult, p->in1_shift);
    return te_clamp8(v + p->out_offset, -128, 127);
}

static inline int8_t te_max1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    (void)p;
    return (int8_t)(a > b ? a : b);
}

static inline int8_t te_min1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    (void)p;
    return (int8_t)(a < b ? a : b);
}

/* one loop per op, so the element function inlines into it */
#define TE_BINARY_LOOP(NAME, FN)                                                                        \
    void NAME(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)           \
    {                                                                                                  \
        int32_t i, d0, d1, d2, d3;                                                                     \
        if (!p->broadcast) {                                                                           \
            for (i = 0; i < p->size; ++i) {                                                            \
                out[i] = FN(p, in1[i], in2[i]);                                                        \
            }                                                                                          \
            return;                                                                                    \
        }                                                                                              \
        i = 0;                                                                                         \
        for (d0 = 0; d0 < p->out_dims[0]; ++d0) {                                                      \
            for (d1 = 0; d1 < p->out_dims[1]; ++d1) {                                                  \
                for (d2 = 0; d2 < p->out_dims[2]; ++d2) {                                              \
                    const int32_t b1 = d0 * p->in1_strides[0] + d1 * p->in1_strides[1] + d2 * p->in1_strides[2]; \
                    const int32_t b2 = d0 * p->in2_strides[0] + d1 * p->in2_strides[1] + d2 * p->in2_strides[2]; \
                    for (d3 = 0; d3 < p->out_dims[3]; ++d3) {                                          \
                        out[i++] = FN(p, in1[b1 + d3 * p->in1_strides[3]], in2[b2 + d3 * p->in2_strides[3]]); \
                    }                                                                                  \
                }                                                                                      \
            }                                                                                          \
        }                                                                                              \
    }

TE_BINARY_LOOP(te_sub_s8, te_sub1)
TE_BINARY_LOOP(te_squared_difference_s8, te_sqdiff1)
TE_BINARY_LOOP(te_prelu_s8, te_prelu1)
TE_BINARY_LOOP(te_maximum_s8, te_max1)
TE_BINARY_LOOP(te_minimum_s8, te_min1)

void te_reduce_max_s8(const te_mean_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int32_t o0, o1, o2, o3, r0, r1, r2, r3;
    const int32_t *s = p->strides;
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                for (o3 = 0; o3 < p->out_dims[3]; ++o3) {
                    int32_t m = -128;
                    for (r0 = 0; r0 < p->red_dims[0]; ++r0) {
                        for (r1 = 0; r1 < p->red_dims[1]; ++r1) {
                            for (r2 = 0; r2 < p->red_dims[2]; ++r2) {
                                const int8_t *x = in + (o0 + r0) * s[0] + (o1 + r1) * s[1] + (o2 + r2) * s[2] + o3 * s[3];
                                for (r3 = 0; r3 < p->red_dims[3]; ++r3) {
                                    m = x[r3 * s[3]] > m ? x[r3 * s[3]] : m;
                                }
                            }
                        }
                    }
                    *out++ = (int8_t)m;
                }
            }
        }
    }
}

/* ---- L2_NORMALIZATION --------------------------------------------------------------------- */

static int32_t te_sat_shl_m(int32_t x, int32_t e)
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

/* TFLite's GetInvSqrtQuantizedMultiplierExp (gemmlowp Newton-Raphson on F3 fixed point):
 * 1 / sqrt(input) as a Q31 multiplier and a shift (left positive) */
static void te_inv_sqrt(int32_t input, int32_t *mult, int32_t *shift)
{
    int32_t s = 11, pairs, clz = 0, x, half_in, i;
    uint32_t u;
    if (input <= 1) {
        *mult = INT32_MAX;
        *shift = 0;
        return;
    }
    while (input >= (1 << 29)) {
        input /= 4;
        ++s;
    }
    for (u = (uint32_t)input; !(u & 0x80000000u); u <<= 1) {
        ++clz;
    }
    pairs = (clz - 1) / 2 - 1;
    s -= pairs;
    input = (int32_t)((uint32_t)input << (2 * pairs));
    half_in = te_rdbpot(input >> 1, 1);
    x = 1 << 28;
    for (i = 0; i < 5; ++i) {
        const int32_t x3 = te_sat_shl_m(te_srdhm(te_srdhm(x, x), x), 6);
        const int32_t d = (int32_t)((uint32_t)te_srdhm((1 << 28) + (1 << 27), x) - (uint32_t)te_srdhm(half_in, x3));
        x = te_sat_shl_m(d, 3);
    }
    x = te_srdhm(x, 1518500250);   /* times sqrt(2) / 2 */
    if (s < 0) {
        x = (int32_t)((uint32_t)x << -s);
        s = 0;
    }
    *mult = x;
    *shift = -s;
}

void te_l2norm_s8(int32_t outer, int32_t depth, int32_t in_zp, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int32_t o, i;
    for (o = 0; o < outer; ++o) {
        const int8_t *x = in + o * depth;
        int32_t acc = 0, mult, shift;
        for (i = 0; i < depth; ++i) {
            const int32_t v = x[i] - in_zp;
            acc += v * v;
        }
        te_inv_sqrt(acc, &mult, &shift);
        for (i = 0; i < depth; ++i) {
            *out++ = te_clamp8(te_mbqm(x[i] - in_zp, mult, shift + 7), -128, 127);
        }
    }
}

/* ---- QUANTIZE (float32 -> int8) and DEQUANTIZE (int8 -> float32) at a model's edges ---------- */

/* TFLite's AffineQuantize: round(x / scale) half away from zero (TfLiteRound), + zero point,
 * clamped.  The division is a float division, as TFLite Micro's; the rounding is exact (the
 * fraction of a float is a float).  NaN and |x / scale| >= 512 saturate without the cast, whose
 * out-of-range result C leaves undefined (TFLite Micro's x86 build gives INT32_MIN there: the
 * same -128 for NaN and -inf). */
void te_quantize_f32_s8(const int8_t *in, int8_t *out, int32_t n, float scale, int32_t zp)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        float x, r, t;
        int32_t v;
        memcpy(&x, in + 4 * i, 4);
        r = x / scale;
        if (!(r > -512.0f)) {
            out[i] = -128;
            continue;
        }
        if (r >= 512.0f) {
            out[i] = 127;
            continue;
        }
        v = (int32_t)r;                  /* toward zero */
        t = r - (float)v;                /* exact */
        if (t >= 0.5f) {
            ++v;
        } else if (t <= -0.5f) {
            --v;
        }
        out[i] = te_clamp8(v + zp, -128, 127);
    }
}

/* TFLite's Dequantize: (float)(scale * (x - zero_point)) in double; the product of a float and
 * an integer below 2^9 is exact in double, so one float multiply rounds it the same way. */
void te_dequantize_s8_f32(const int8_t *in, int8_t *out, int32_t n, float scale, int32_t zp)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const float y = (float)(in[i] - zp) * scale;
        memcpy(out + 4 * i, &y, 4);
    }
}
