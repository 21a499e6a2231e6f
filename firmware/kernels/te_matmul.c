/* tinyedge firmware: BATCH_MATMUL and ARG_MAX (aot runtime; API in te_kernels.h).
 *
 * BATCH_MATMUL computes what TFLite Micro's reference BatchMatMul computes for int8:
 * out[b][m][n] = sat8(rq(sum_k (lhs[b][m][k] - lhs_zp) * (rhs[b][k][n] - rhs_zp)) + out_zp),
 * with numpy-style broadcasting of up to three batch dims.  Both operands are brought to rows
 * along k (the right-hand side transposed into arena scratch unless it is already, as TFLM
 * transposes it too; a constant one is stored transposed), so every output is one contiguous
 * dot product (SMLAD on Cortex-M with DSP); the zero points are folded out of it with row sums. */
#include "te_kernel_helpers.h"

static void te_transpose2_s8(const int8_t *TE_RESTRICT in, int32_t rows, int32_t cols, int8_t *TE_RESTRICT out)
{
    int32_t r, c;
    for (r = 0; r < rows; ++r) {
        for (c = 0; c < cols; ++c) {
            out[c * rows + r] = in[r * cols + c];
        }
    }
}

void te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs, const int8_t *rhs, int8_t *out,
                        int8_t *scratch)
{
    const int32_t m_n = p->rows, n_n = p->cols, k_n = p->depth;
    int32_t *rsum = (int32_t *)(void *)scratch;              /* 4-aligned: the planner aligns scratch to 16 */
    int8_t *rt = scratch + 4 * n_n;                        /* rhs as [n][k] when it is not already */
    int8_t *lt = rt + (p->rhs_transpose ? (n_n * k_n + 3) / 4 * 4 : 0);   /* lhs as [m][k] (adj_x) */
    const int32_t kzz = k_n * p->lhs_zp * p->rhs_zp;
    int32_t b0, b1, b2, m, n;
    for (b0 = 0; b0 < p->batch[0]; ++b0) {
        for (b1 = 0; b1 < p->batch[1]; ++b1) {
            for (b2 = 0; b2 < p->batch[2]; ++b2) {
                const int8_t *l = lhs + b0 * p->lhs_bstride[0] + b1 * p->lhs_bstride[1] + b2 * p->lhs_bstride[2];
                const int8_t *r = rhs + b0 * p->rhs_bstride[0] + b1 * p->rhs_bstride[1] + b2 * p->rhs_bstride[2];
                if (p->rhs_transpose) {          /* rhs [k][n] -> [n][k] */
                    te_transpose2_s8(r, k_n, n_n, rt);
                    r = rt;
                }
                if (p->lhs_transpose) {          /* lhs [k][m] -> [m][k] */
                    te_transpose2_s8(l, k_n, m_n, lt);
                    l = lt;
                }
                for (n = 0; n < n_n; ++n) {
                    rsum[n] = te_sum8(r + n * k_n, k_n);
                }
                for (m = 0; m < m_n; ++m) {
                    const int8_t *lrow = l + m * k_n;
                    const int32_t lsum = te_sum8(lrow, k_n);
                    for (n = 0; n < n_n; ++n) {
                        /* sum (l - lz)(r - rz) = sum l r - rz sum l - lz sum r + k lz rz (mod 2^32; the
                         * true value fits in int32) */
                        const uint32_t acc = (uint32_t)te_dot(lrow, r + n * k_n, k_n) - (uint32_t)(p->rhs_zp * lsum)
                                             - (uint32_t)(p->lhs_zp * rsum[n]) + (uint32_t)kzz;
                        *out++ = te_clamp8(te_mbqm((int32_t)acc, p->out_mult, p->out_shift) + p->out_offset,
                                           -128, 127);
                    }
                }
            }
        }
    }
}

void te_arg_max_s8(int32_t outer, int32_t axis_size, int32_t inner, const int8_t *TE_RESTRICT in, int8_t *out,
                   int32_t out_bytes)
{
    int32_t o, i, k;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const int8_t *x = in + o * axis_size * inner + i;
            int32_t best = x[0], at = 0;
            for (k = 1; k < axis_size; ++k) {
                if (x[k * inner] > best) {   /* the first of equal maxima, as TFLite's Greater */
                    best = x[k * inner];
                    at = k;
                }
            }
            if (out_bytes == 8) {
                const int64_t v = at;
                memcpy(out, &v, 8);
            } else {
                memcpy(out, &at, 4);
            }
            out += out_bytes;
        }
    }
}
