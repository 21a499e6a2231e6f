/* tinyedge firmware: ADD, MUL, MEAN and the layout ops (PAD, CONCATENATION, copies) (aot runtime; API in te_kernels.h). */
#include "te_kernel_helpers.h"
#include "te_mve.h"

/* ---- ADD / MUL ------------------------------------------------------------ */

static inline int8_t te_add1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    const int32_t x1 = (int32_t)((uint32_t)(a + p->in1_offset) << p->left_shift);
    const int32_t x2 = (int32_t)((uint32_t)(b + p->in2_offset) << p->left_shift);
    const int32_t s1 = te_mbqm_pos(x1, p->in1_mult, p->in1_shift);
    const int32_t s2 = te_mbqm_pos(x2, p->in2_mult, p->in2_shift);
    return te_clamp8(te_mbqm_pos(s1 + s2, p->out_mult, p->out_shift) + p->out_offset, p->act_min, p->act_max);
}

static inline int8_t te_mul1(const te_binary_params_t *p, int32_t a, int32_t b)
{
    const int32_t prod = (a + p->in1_offset) * (b + p->in2_offset);
    return te_clamp8(te_mbqm_pos(prod, p->out_mult, p->out_shift) + p->out_offset, p->act_min, p->act_max);
}

/* te_mbqm_pos for shift <= 0: shift 0 is the rounded high product alone (the larger-scale
 * input of an ADD has multiplier 0.5, that is shift 0) */
static inline int32_t te_rq_nonpos(int32_t x, int32_t mult, int32_t shift)
{
    if (shift == 0) {
        return (int32_t)(((int64_t)x * mult + ((int64_t)1 << 30)) >> 31);
    }
    return te_rq_right(x, mult, ~shift);
}

/* ADD over same shapes when no rescale shifts left (the usual case): parameters in locals and
 * te_rq_nonpos instead of the general MultiplyByQuantizedMultiplier */
static void te_add_flat_right(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    const int32_t o1 = p->in1_offset, o2 = p->in2_offset, ls = p->left_shift;
    const int32_t m1 = p->in1_mult, s1 = p->in1_shift, m2 = p->in2_mult, s2 = p->in2_shift;
    const int32_t mo = p->out_mult, so = p->out_shift;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const int32_t n = p->size;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t x1 = (int32_t)((uint32_t)(in1[i] + o1) << ls);
        const int32_t x2 = (int32_t)((uint32_t)(in2[i] + o2) << ls);
        const int32_t sum = te_rq_nonpos(x1, m1, s1) + te_rq_nonpos(x2, m2, s2);
        out[i] = te_clamp8(te_rq_nonpos(sum, mo, so) + oo, lo, hi);
    }
}

TE_SMALL static void te_binary(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out, int is_mul)
{
    int32_t i, d0, d1, d2, d3;
    if (!p->broadcast && !is_mul && p->in1_shift <= 0 && p->in2_shift <= 0 && p->out_shift <= 0) {
        te_add_flat_right(p, in1, in2, out);
        return;
    }
    if (!p->broadcast) {
        for (i = 0; i < p->size; ++i) {
            out[i] = is_mul ? te_mul1(p, in1[i], in2[i]) : te_add1(p, in1[i], in2[i]);
        }
        return;
    }
    i = 0;
    for (d0 = 0; d0 < p->out_dims[0]; ++d0) {
        for (d1 = 0; d1 < p->out_dims[1]; ++d1) {
            for (d2 = 0; d2 < p->out_dims[2]; ++d2) {
                const int32_t b1 = d0 * p->in1_strides[0] + d1 * p->in1_strides[1] + d2 * p->in1_strides[2];
                const int32_t b2 = d0 * p->in2_strides[0] + d1 * p->in2_strides[1] + d2 * p->in2_strides[2];
                for (d3 = 0; d3 < p->out_dims[3]; ++d3) {
                    const int32_t a = in1[b1 + d3 * p->in1_strides[3]];
                    const int32_t b = in2[b2 + d3 * p->in2_strides[3]];
                    out[i++] = is_mul ? te_mul1(p, a, b) : te_add1(p, a, b);
                }
            }
        }
    }
}

void te_add_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
#ifdef TE_HAVE_MVE
    if (te_mve_add_s8(p, in1, in2, out)) {
        return;
    }
#endif
    te_binary(p, in1, in2, out, 0);
}

/* te_add_s8 when the shapes match and in1_shift, in2_shift, out_shift are <= 0 (the generator
 * checks): only that loop, so te_binary's general code is not linked */
void te_add_s8_flat(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
#ifdef TE_HAVE_MVE
    if (te_mve_add_s8(p, in1, in2, out)) {
        return;
    }
#endif
    te_add_flat_right(p, in1, in2, out);
}

void te_mul_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    te_binary(p, in1, in2, out, 1);
}

/* ---- MEAN ------------------------------------------------------------------ */

void te_mean_s8(const te_mean_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int32_t o0, o1, o2, o3, r0, r1, r2, r3;
    const int32_t *s = p->strides;
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                for (o3 = 0; o3 < p->out_dims[3]; ++o3) {
                    int32_t acc = 0;
                    for (r0 = 0; r0 < p->red_dims[0]; ++r0) {
                        for (r1 = 0; r1 < p->red_dims[1]; ++r1) {
                            for (r2 = 0; r2 < p->red_dims[2]; ++r2) {
                                const int8_t *x = in + (o0 + r0) * s[0] + (o1 + r1) * s[1] + (o2 + r2) * s[2] + o3 * s[3];
                                for (r3 = 0; r3 < p->red_dims[3]; ++r3) {
                                    acc += x[r3 * s[3]];
                                }
                            }
                        }
                    }
                    acc = te_mbqm(acc - p->in_zp * p->count, p->mult, p->shift) + p->out_zp;
                    *out++ = te_clamp8(acc, -128, 127);
                }
            }
        }
    }
}

void te_pad_s8(const te_pad_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t o1 = p->dims[1] + p->before[1] + p->after[1];
    const int32_t o2 = p->dims[2] + p->before[2] + p->after[2];
    const int32_t o3 = p->dims[3] + p->before[3] + p->after[3];
    const int32_t o0 = p->dims[0] + p->before[0] + p->after[0];
    int32_t d0, d1, d2;
    memset(out, (unsigned char)p->pad_value, (size_t)(o0 * o1 * o2 * o3));
    for (d0 = 0; d0 < p->dims[0]; ++d0) {
        for (d1 = 0; d1 < p->dims[1]; ++d1) {
            for (d2 = 0; d2 < p->dims[2]; ++d2) {
                const int8_t *src = in + ((d0 * p->dims[1] + d1) * p->dims[2] + d2) * p->dims[3];
                int8_t *dst = out + (((d0 + p->before[0]) * o1 + d1 + p->before[1]) * o2 + d2 + p->before[2]) * o3 +
                              p->before[3];
                memcpy(dst, src, (size_t)p->dims[3]);
            }
        }
    }
}

void te_concat_s8(int32_t n_in, const int8_t *const *ins, const int32_t *copy, int32_t outer, int8_t *out)
{
    int32_t k, i;
    for (k = 0; k < outer; ++k) {
        for (i = 0; i < n_in; ++i) {
            memcpy(out, ins[i] + k * copy[i], (size_t)copy[i]);
            out += copy[i];
        }
    }
}

void te_copy_s8(const int8_t *in, int8_t *out, int32_t n)
{
    if (in != out) {
        memmove(out, in, (size_t)n);
    }
}
