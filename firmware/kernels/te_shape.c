/* tinyedge firmware: the layout ops TRANSPOSE, SLICE, STRIDED_SLICE, TILE (one strided copy),
 * SPLIT / SPLIT_V / UNPACK and GATHER (aot runtime; API in te_kernels.h).  Pure data movement:
 * the innermost run is a memcpy whenever it is contiguous. */
#include "te_kernel_helpers.h"

void te_strided_copy_s8(const te_strided_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int32_t idx[TE_STRIDED_MAX_DIMS];
    const int32_t r = p->rank;
    const int32_t inner = p->dims[r - 1];
    const int32_t is = p->strides[r - 1];
    int32_t outer = 1, src = p->start, k, d, j;
    for (d = 0; d < r; ++d) {
        idx[d] = 0;
    }
    for (d = 0; d < r - 1; ++d) {
        outer *= p->dims[d];
    }
    for (k = 0; k < outer; ++k) {
        const int8_t *s = in + src;
        if (is == 1) {
            memcpy(out, s, (size_t)inner);
        } else {
            for (j = 0; j < inner; ++j) {
                out[j] = s[j * is];
            }
        }
        out += inner;
        for (d = r - 2; d >= 0; --d) {   /* the odometer over the outer dims */
            src += p->strides[d];
            if (++idx[d] < p->dims[d]) {
                break;
            }
            src -= p->strides[d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

void te_split_s8(int32_t n_out, const int8_t *const *outs, const int32_t *copy, int32_t outer, const int8_t *in)
{
    int32_t k, i;
    for (k = 0; k < outer; ++k) {
        for (i = 0; i < n_out; ++i) {
            /* the table holds arena addresses (never const objects) */
            memcpy((int8_t *)(uintptr_t)(outs[i] + k * copy[i]), in, (size_t)copy[i]);
            in += copy[i];
        }
    }
}

void te_gather_s8(const te_gather_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        const int8_t *base = in + o * p->axis_size * p->inner;
        for (i = 0; i < p->n_idx; ++i) {
            memcpy(out, base + p->idx[i] * p->inner, (size_t)p->inner);
            out += p->inner;
        }
    }
}

/* GATHER with indices computed at run time (an int32 or int64 tensor): as te_gather_s8; an index
 * outside [0, axis_size) is clamped into it (TFLite Micro's kernel only DCHECKs the range and
 * reads past the input there; the converter's graphs never make one) */
void te_gather_dyn_s8(const te_gather_params_t *p, const int8_t *TE_RESTRICT in, const int8_t *idx,
                      int32_t idx_bytes, int8_t *TE_RESTRICT out)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        const int8_t *base = in + o * p->axis_size * p->inner;
        for (i = 0; i < p->n_idx; ++i) {
            int64_t k;
            if (idx_bytes == 8) {
                memcpy(&k, idx + 8 * i, 8);
            } else {
                int32_t k32;
                memcpy(&k32, idx + 4 * i, 4);
                k = k32;
            }
            k = k < 0 ? 0 : (k >= p->axis_size ? p->axis_size - 1 : k);
            memcpy(out, base + (int32_t)k * p->inner, (size_t)p->inner);
            out += p->inner;
        }
    }
}
