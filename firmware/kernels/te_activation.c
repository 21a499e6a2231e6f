/* tinyedge firmware: table-driven activations (lookup tables) and SOFTMAX (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"

/* ---- elementwise, layout ------------------------------------------------------- */

void te_lut_s8(const int8_t *table, const int8_t *in, int8_t *out, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = table[(int32_t)in[i] + 128];
    }
}

/* ---- SOFTMAX ---------------------------------------------------------------- */

static int32_t te_clz32(uint32_t x)
{
#if defined(__GNUC__)
    return x == 0 ? 32 : __builtin_clz(x);
#else
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

/* te_srdhm out of line: SOFTMAX calls it about 10 times per row plus once per element, and each
 * inlined copy is some 30 bytes of 64-bit arithmetic */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int32_t te_srdhm_call(int32_t a, int32_t b)
{
    return te_srdhm(a, b);
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
    int32_t x = 1515870810 + te_srdhm_call(half_den, -1010580540);   /* Q2.29 */
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t hdx = te_srdhm_call(half_den, x);
        const int32_t one_minus = (1 << 29) - hdx;
        x = x + te_sat_shl(te_srdhm_call(x, one_minus), 2);
    }
    return te_sat_shl(x, 1);
}

/* the exp table's entry k (0..255); the generator stores only those that can change an output
 * (tinyedge.aot.quant.softmax_exp_reach): the rest are 0 */
static inline int32_t te_softmax_exp(const te_softmax_params_t *p, int32_t k)
{
    return k < p->exp_len ? p->exp_table[k] : 0;
}

TE_SMALL void te_softmax_s8(const te_softmax_params_t *p, const int8_t *in, int8_t *out)
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
            sum += te_rdbpot(te_softmax_exp(p, max_v - x[c]), 12);
        }
        headroom = te_clz32((uint32_t)sum);
        bits_over_unit = 12 - headroom;
        scale = te_one_over_one_plus_x((int32_t)(((uint32_t)sum << headroom) - ((uint32_t)1 << 31)));
        for (c = 0; c < p->depth; ++c) {
            const int32_t e = te_softmax_exp(p, max_v - x[c]);
            const int32_t v = te_rdbpot(te_srdhm_call(scale, e), bits_over_unit + 31 - 8) - 128;
            y[c] = te_clamp8(v, -128, 127);
        }
    }
}
