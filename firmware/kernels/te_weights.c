/* tinyedge firmware: decoders of compactly stored weights (aot runtime; API in te_kernels.h).
 * Exact by construction: the generator decodes every stored tensor back in Python and compares
 * it with the model's int8 weights before it emits the tables.
 *
 * One decoder per storage (and per output form), each its own function: the generator puts the
 * ones a tensor needs into its descriptor (te_weights_t.decode / decode_wide), so with
 * -ffunction-sections / --gc-sections a firmware links only the decoders its model uses.
 * Two output forms: int8 ([rows][row_len], or [row_len][rows] when transposed) for the dense
 * kernels, and "wide" 16-bit lanes for te_conv2d_s8_wide: per 4 weights w0..w3 of a row the two
 * words (w0 | w2 << 16, w1 | w3 << 16), exactly what SXTB16 makes of 4 input bytes, so the conv's
 * inner loop multiplies them without widening them again (row_len % 4 == 0). */
#include "te_kernel_helpers.h"

/* a plain int8 row as lanes */
static void te_plain_wide(const uint8_t *src, int32_t n, uint32_t *o)
{
    int32_t j;
    for (j = 0; j < n; j += 4) {
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
        uint32_t v;
        memcpy(&v, src + j, 4);
        o[0] = te_sxtb16(v);
        o[1] = te_sxtb16_ror8(v);
#else
        const int8_t *s = (const int8_t *)src + j;
        o[0] = te_pack16(s[0], s[2]);
        o[1] = te_pack16(s[1], s[3]);
#endif
        o += 2;
    }
}

/* ---- palette (and int4, a palette computed from the row's step) ------------------------- */

/* the data of row r0 and the palette table of the first coded row from r0 on */
static const uint8_t *te_pal_seek(const te_weights_t *w, int32_t r0, const int8_t **pal)
{
    const uint8_t *src = w->data;
    const int32_t step = w->kind == TE_W_PALETTE && !w->shared_table ? 1 << w->bits : 0;
    int32_t r;
    *pal = w->table;
    for (r = 0; r < r0; ++r) {
        src += te_pal_row_bytes(w, r);
        if (te_pal_row_coded(w, r)) {
            *pal += step;
        }
    }
    return src;
}

/* the row's 16 values: the palette's (4 bits), or q * step (int4) into tab */
static const int8_t *te_pal_table(const te_weights_t *w, int32_t r, const int8_t *pal, int8_t *tab)
{
    if (w->kind == TE_W_INT4) {
        const int32_t step = w->table[r];
        int32_t q;
        for (q = 0; q < 16; ++q) {
            tab[q] = (int8_t)(((q ^ 8) - 8) * step);
        }
        return tab;
    }
    return pal;
}

static void te_pal_row(const uint8_t *src, const int8_t *t, int32_t bits, int32_t n, int8_t *dst, int32_t stride)
{
    int32_t j;
    if (bits == 4) {
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

static void te_decode_pal_any(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out)
{
    const int32_t n = w->row_len;
    const int32_t step = w->kind == TE_W_PALETTE && !w->shared_table ? 1 << w->bits : 0;
    const int32_t bits = w->kind == TE_W_INT4 ? 4 : w->bits;
    const int8_t *pal;
    const uint8_t *src = te_pal_seek(w, r0, &pal);
    int8_t tab[16];
    int32_t r, j;
    for (r = r0; r < r1; ++r) {
        int8_t *dst = w->transposed ? out + r : out + (r - r0) * n;
        const int32_t stride = w->transposed ? w->rows : 1;
        if (te_pal_row_coded(w, r)) {
            te_pal_row(src, te_pal_table(w, r, pal, tab), bits, n, dst, stride);
            pal += step;
        } else {
            for (j = 0; j < n; ++j) {
                dst[j * stride] = (int8_t)src[j];
            }
        }
        src += te_pal_row_bytes(w, r);
    }
}

void te_decode_palette(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out)
{
    te_decode_pal_any(w, r0, r1, out);
}

/* int4 with one step for the tensor: the rows are one stream of nibbles, weight j of row r at
 * nibble r * row_len + j */
static void te_int4_table(int32_t step, int8_t *tab)
{
    int32_t q;
    for (q = 0; q < 16; ++q) {
        tab[q] = (int8_t)(((q ^ 8) - 8) * step);
    }
}

void te_decode_int4(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out)
{
    const int32_t n = w->row_len;
    int8_t tab[16];
    int32_t r, j;
    if (!w->shared_table) {
        te_decode_pal_any(w, r0, r1, out);
        return;
    }
    te_int4_table(w->table[0], tab);
    for (r = r0; r < r1; ++r) {
        int8_t *dst = w->transposed ? out + r : out + (r - r0) * n;
        const int32_t stride = w->transposed ? w->rows : 1;
        const int32_t k0 = r * n;
        if ((k0 & 1) == 0 && stride == 1) {
            te_pal_row(w->data + (k0 >> 1), tab, 4, n, dst, 1);
            continue;
        }
        for (j = 0; j < n; ++j) {
            const int32_t k = k0 + j;
            dst[j * stride] = tab[(w->data[k >> 1] >> ((k & 1) * 4)) & 15u];
        }
    }
}

/* 4-bit indices into t, n % 4 == 0, as lanes: 8 weights per 32-bit load */
static void te_pal4_row_wide(const uint8_t *src, const int8_t *t, int32_t n, uint32_t *o)
{
    int32_t j;
    for (j = 0; j + 8 <= n; j += 8) {
        uint32_t v;
        memcpy(&v, src, 4);
        src += 4;
        o[0] = te_pack16(t[v & 15u], t[(v >> 8) & 15u]);
        o[1] = te_pack16(t[(v >> 4) & 15u], t[(v >> 12) & 15u]);
        o[2] = te_pack16(t[(v >> 16) & 15u], t[(v >> 24) & 15u]);
        o[3] = te_pack16(t[(v >> 20) & 15u], t[v >> 28]);
        o += 4;
    }
    if (j < n) {
        const uint32_t v = (uint32_t)src[0] | (uint32_t)src[1] << 8;
        o[0] = te_pack16(t[v & 15u], t[(v >> 8) & 15u]);
        o[1] = te_pack16(t[(v >> 4) & 15u], t[v >> 12]);
    }
}

static void te_pal2_row_wide(const uint8_t *src, const int8_t *t, int32_t n, uint32_t *o)
{
    int32_t j;
    for (j = 0; j < n; j += 4) {
        const uint32_t b = *src++;
        o[0] = te_pack16(t[b & 3u], t[(b >> 4) & 3u]);
        o[1] = te_pack16(t[(b >> 2) & 3u], t[b >> 6]);
        o += 2;
    }
}

static void te_decode_pal_wide_any(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out)
{
    const int32_t n = w->row_len;
    const int32_t step = w->kind == TE_W_PALETTE && !w->shared_table ? 1 << w->bits : 0;
    const int32_t bits = w->kind == TE_W_INT4 ? 4 : w->bits;
    const int8_t *pal;
    const uint8_t *src = te_pal_seek(w, r0, &pal);
    int8_t tab[16];
    int32_t r;
    for (r = r0; r < r1; ++r) {
        uint32_t *o = out + (r - r0) * (n / 2);
        if (te_pal_row_coded(w, r)) {
            const int8_t *t = te_pal_table(w, r, pal, tab);
            if (bits == 4) {
                te_pal4_row_wide(src, t, n, o);
            } else {
                te_pal2_row_wide(src, t, n, o);
            }
            pal += step;
        } else {
            te_plain_wide(src, n, o);
        }
        src += te_pal_row_bytes(w, r);
    }
}

void te_decode_palette_wide(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out)
{
    te_decode_pal_wide_any(w, r0, r1, out);
}

void te_decode_int4_wide(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out)
{
    const int32_t n = w->row_len;   /* n % 4 == 0: every row starts on a byte */
    int8_t tab[16];
    int32_t r;
    if (!w->shared_table) {
        te_decode_pal_wide_any(w, r0, r1, out);
        return;
    }
    te_int4_table(w->table[0], tab);
    for (r = r0; r < r1; ++r) {
        te_pal4_row_wide(w->data + ((r * n) >> 1), tab, n, out + (r - r0) * (n / 2));
    }
}

/* ---- sparse: bit mask + non-zeros per row ------------------------------------------------ */

void te_decode_sparse(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out)
{
    const int32_t n = w->row_len;
    const int32_t stride = w->transposed ? w->rows : 1;
    const uint8_t *src = te_sparse_seek(w, r0);
    int32_t r, j, nnz;
    for (r = r0; r < r1; ++r) {
        int8_t *dst = w->transposed ? out + r : out + (r - r0) * n;
        const int32_t code = te_sparse_code(w, r);
        const int32_t bytes = te_sparse_row_bytes(w, r, src, &nnz);
        if (code == TE_SP_PLAIN) {
            for (j = 0; j < n; ++j) {
                dst[j * stride] = (int8_t)src[j];
            }
        } else if (code == TE_SP_MASK) {
            const int8_t *v = (const int8_t *)(src + (n + 7) / 8);
            for (j = 0; j < n; j += 8) {
                const uint32_t m = src[j >> 3];
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
        } else {
            const uint8_t *p = src;
            int32_t s;
            for (j = 0; j < n; ++j) {
                dst[j * stride] = 0;
            }
            for (s = 0; s < n; s += 256) {
                const int32_t c = *p++;
                int32_t k;
                for (k = 0; k < c; ++k) {
                    dst[(s + p[k]) * stride] = (int8_t)p[c + k];
                }
                p += 2 * c;
            }
        }
        src += bytes;
    }
}

void te_decode_sparse_wide(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out)
{
    const int32_t n = w->row_len;
    const uint8_t *src = te_sparse_seek(w, r0);
    int32_t r, j, nnz;
    for (r = r0; r < r1; ++r) {
        uint32_t *o = out + (r - r0) * (n / 2);
        const int32_t code = te_sparse_code(w, r);
        const int32_t bytes = te_sparse_row_bytes(w, r, src, &nnz);
        if (code == TE_SP_PLAIN) {
            te_plain_wide(src, n, o);
        } else if (code == TE_SP_MASK) {
            const uint8_t *mask = src;
            const int8_t *v = (const int8_t *)(src + (n + 7) / 8);
            for (j = 0; j < n; j += 4) {
                /* 4 weights from the mask's nibble: non-zeros taken in order */
                const uint32_t m = (uint32_t)mask[j >> 3] >> (j & 4);
                int32_t w0 = 0, w1 = 0, w2 = 0, w3 = 0;
                if (m & 1u) {
                    w0 = *v++;
                }
                if (m & 2u) {
                    w1 = *v++;
                }
                if (m & 4u) {
                    w2 = *v++;
                }
                if (m & 8u) {
                    w3 = *v++;
                }
                o[0] = te_pack16(w0, w2);
                o[1] = te_pack16(w1, w3);
                o += 2;
            }
        } else {
            /* lane of weight j: half (j >> 1) & 1 of word (j >> 2) * 2 + (j & 1) */
            const uint8_t *p = src;
            int32_t s;
            memset(o, 0, (size_t)n * 2);
            for (s = 0; s < n; s += 256) {
                const int32_t c = *p++;
                int32_t k;
                for (k = 0; k < c; ++k) {
                    const int32_t jj = s + p[k];
                    const uint32_t sh = ((uint32_t)jj & 2u) * 8u;
                    uint32_t *word = o + (jj >> 2) * 2 + (jj & 1);
                    *word = (*word & ~(0xFFFFu << sh)) | ((uint32_t)(uint16_t)(int16_t)(int8_t)p[c + k] << sh);
                }
                p += 2 * c;
            }
        }
        src += bytes;
    }
}

/* ---- public entry --------------------------------------------------------------------------- */

void te_weights_decode(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out)
{
    w->decode(w, r0, r1, out);
}
