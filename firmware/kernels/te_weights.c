/* tinyedge firmware: decoders of compactly stored weights (aot runtime; API in te_kernels.h).
 * Exact by construction: the generator decodes every stored tensor back in Python and compares
 * it with the model's int8 weights before it emits the tables. */
#include "te_kernel_helpers.h"

/* bytes row r occupies in w->data */
static int32_t te_row_bytes(const te_weights_t *w, int32_t r)
{
    const int32_t n = w->row_len;
    if (w->kind == TE_W_SPARSE) {
        const int32_t nnz = w->row_nnz[r];
        return nnz == 0xFFFF ? n : (n + 7) / 8 + nnz;
    }
    if (w->kind == TE_W_INT4) {
        return w->table[r] ? (n + 1) / 2 : n;   /* step 0: a plain row */
    }
    if (!w->row_mode[r]) {
        return n;
    }
    return (n * w->bits + 7) / 8;
}

static int te_row_plain(const te_weights_t *w, int32_t r)
{
    return w->kind == TE_W_SPARSE ? w->row_nnz[r] == 0xFFFF : w->kind == TE_W_INT4 ? w->table[r] == 0 : !w->row_mode[r];
}

/* one row into dst[j * stride]; `pal`: the row's palette table */
static void te_decode_row(const te_weights_t *w, int32_t r, const uint8_t *src, const int8_t *pal, int8_t *dst,
                          int32_t stride)
{
    const int32_t n = w->row_len;
    int32_t j;
    if (te_row_plain(w, r)) {
        for (j = 0; j < n; ++j) {
            dst[j * stride] = (int8_t)src[j];
        }
        return;
    }
    if (w->kind == TE_W_SPARSE) {
        const uint8_t *mask = src;
        const int8_t *v = (const int8_t *)(src + (n + 7) / 8);
        for (j = 0; j < n; j += 8) {
            const uint32_t m = mask[j >> 3];
            const int32_t e = n - j < 8 ? n - j : 8;
            int32_t k;
            if (m == 0 && stride == 1 && e == 8) {
                memset(dst + j, 0, 8);
                continue;
            }
            for (k = 0; k < e; ++k) {
                dst[(j + k) * stride] = (m >> k) & 1u ? *v++ : 0;
            }
        }
        return;
    }
    {
        int8_t tab[16];
        const int8_t *t;
        if (w->kind == TE_W_INT4) {
            const int32_t step = w->table[r];
            int32_t q;
            for (q = 0; q < 16; ++q) {
                tab[q] = (int8_t)(((q ^ 8) - 8) * step);
            }
            t = tab;
        } else {
            t = pal;
        }
        if (w->kind == TE_W_INT4 || w->bits == 4) {
            if (stride == 1) {
                for (j = 0; j + 2 <= n; j += 2) {
                    const uint32_t b = *src++;
                    dst[j] = t[b & 15u];
                    dst[j + 1] = t[b >> 4];
                }
                if (j < n) {
                    dst[j] = t[*src & 15u];
                }
            } else {
                for (j = 0; j < n; ++j) {
                    dst[j * stride] = t[(src[j >> 1] >> ((j & 1) * 4)) & 15u];
                }
            }
        } else {
            for (j = 0; j < n; ++j) {
                dst[j * stride] = t[(src[j >> 2] >> ((j & 3) * 2)) & 3u];
            }
        }
    }
}

void te_weights_decode(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out)
{
    const uint8_t *src = w->data;
    const int8_t *pal = w->table;   /* palette: tables of the coded rows only, in row order */
    const int32_t step = w->kind == TE_W_PALETTE && !w->shared_table ? 1 << w->bits : 0;
    int32_t r;
    for (r = 0; r < r0; ++r) {
        src += te_row_bytes(w, r);
        if (!te_row_plain(w, r)) {
            pal += step;
        }
    }
    for (r = r0; r < r1; ++r) {
        if (w->transposed) {
            te_decode_row(w, r, src, pal, out + r, w->rows);
        } else {
            te_decode_row(w, r, src, pal, out + (r - r0) * w->row_len, 1);
        }
        src += te_row_bytes(w, r);
        if (!te_row_plain(w, r)) {
            pal += step;
        }
    }
}
