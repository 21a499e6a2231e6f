/* tinyedge firmware: CONV_2D and FULLY_CONNECTED that skip zero weights (aot runtime; API in
 * te_kernels.h).  Their weights are TE_W_SPARSE (bit mask + non-zeros per output channel); int8
 * weights are symmetric (zero point 0), so a skipped zero weight contributes exactly nothing. */
#include "te_kernel_helpers.h"

/* non-zeros of rows [r0, r1) as one list per row: a count, then (index << 8 | weight byte) words;
 * returns the words written.  `src` points at row r0's bytes. */
static int32_t te_sparse_lists(const te_weights_t *w, const uint8_t *src, int32_t r0, int32_t r1, int32_t *list)
{
    const int32_t n = w->row_len;
    int32_t r, j, k = 0, nnz;
    for (r = r0; r < r1; ++r) {
        const int32_t code = te_sparse_code(w, r);
        const int32_t bytes = te_sparse_row_bytes(w, r, src, &nnz);
        int32_t *count = list + k++;
        int32_t c = 0;
        if (code == TE_SP_PLAIN) {
            for (j = 0; j < n; ++j) {
                if (src[j]) {
                    list[k++] = (int32_t)((uint32_t)j << 8 | src[j]);
                    ++c;
                }
            }
        } else if (code == TE_SP_MASK) {
            const uint8_t *v = src + (n + 7) / 8;
            for (j = 0; j < n; ++j) {
                if ((src[j >> 3] >> (j & 7)) & 1u) {
                    list[k++] = (int32_t)((uint32_t)j << 8 | *v++);
                    ++c;
                }
            }
        } else {
            const uint8_t *p = src;
            int32_t s, q;
            for (s = 0; s < n; s += 256) {
                const int32_t cs = *p++;
                for (q = 0; q < cs; ++q) {
                    list[k++] = (int32_t)((uint32_t)(s + p[q]) << 8 | p[cs + q]);
                }
                c += cs;
                p += 2 * cs;
            }
        }
        *count = c;
        src += bytes;
    }
    return k;
}

/* index of the lowest set bit, m != 0 */
static inline int32_t te_ctz32(uint32_t m)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(m);
#else
    int32_t k = 0;
    while (!(m & 1u)) {
        m >>= 1;
        ++k;
    }
    return k;
#endif
}

/* the kernel window of output pixel (oy, ox) into buf ([k_h][k_w][in_c]), taps outside the input
 * set to the input zero point (whose offset-corrected value is 0, so the folded bias is exact) */
static void te_sparse_window(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox, int8_t *buf)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    const unsigned char zp = (unsigned char)(int8_t)(-p->in_offset);
    const size_t ic = (size_t)p->in_c;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
                memset(buf, zp, ic);
            } else {
                memcpy(buf, in_b + (iy * p->in_w + ix) * p->in_c, ic);
            }
            buf += ic;
        }
    }
}

void te_conv2d_s8_sparse(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                         const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    const int32_t n = w->row_len;
    const int32_t pointwise = p->k_h == 1 && p->k_w == 1 && p->pad_h == 0 && p->pad_w == 0;
    const int32_t win = pointwise ? 0 : (2 * n + 3) & ~3;
    int8_t *const w0 = scratch, *const w1 = scratch + (pointwise ? 0 : n);
    int32_t *const list = (int32_t *)(void *)(scratch + win);
    const int32_t npix = p->out_h * p->out_w;
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    const int32_t oo = p->out_offset, lo = p->act_min, hi = p->act_max;
    const uint8_t *src = w->data;
    int32_t b, c0, px, c, k;
    for (c0 = 0; c0 < p->out_c; c0 += block) {
        const int32_t nb = p->out_c - c0 < block ? p->out_c - c0 : block;
        if (c0 == 0) {
            src = te_sparse_seek(w, 0);
        }
        te_sparse_lists(w, src, c0, c0 + nb, list);
        src = te_sparse_seek(w, c0 + nb);
        for (b = 0; b < p->batches; ++b) {
            const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
            int8_t *out_b = out + b * npix * pitch;
            px = 0;
            if (pointwise) {
                /* 1x1: the window is the input pixel itself; four output pixels per pass */
                for (; px + 4 <= npix; px += 4) {
                    const int8_t *xs[4];
                    const int32_t *e = list;
                    int32_t q;
                    for (q = 0; q < 4; ++q) {
                        const int32_t oy = (px + q) / p->out_w, ox = (px + q) % p->out_w;
                        xs[q] = in_b + (oy * p->stride_h * p->in_w + ox * p->stride_w) * p->in_c;
                    }
                    {
                        const int8_t *x0 = xs[0], *x1 = xs[1], *x2 = xs[2], *x3 = xs[3];
                        int8_t *o0 = out_b + px * pitch;
                        for (c = c0; c < c0 + nb; ++c) {
                            int32_t a0 = p->eff_bias[c], a1 = a0, a2 = a0, a3 = a0;
                            const int32_t cnt = *e++;
                            const int32_t *end = e + cnt;
                            for (; e < end; ++e) {
                                const int32_t v = *e;
                                const int32_t idx = v >> 8;
                                const int32_t wv = (int8_t)(v & 0xFF);
                                a0 += x0[idx] * wv;
                                a1 += x1[idx] * wv;
                                a2 += x2[idx] * wv;
                                a3 += x3[idx] * wv;
                            }
                            o0[c] = te_requant(a0, p->mult[c], p->shift[c], oo, lo, hi);
                            o0[pitch + c] = te_requant(a1, p->mult[c], p->shift[c], oo, lo, hi);
                            o0[2 * pitch + c] = te_requant(a2, p->mult[c], p->shift[c], oo, lo, hi);
                            o0[3 * pitch + c] = te_requant(a3, p->mult[c], p->shift[c], oo, lo, hi);
                        }
                    }
                }
            }
            for (; px < npix; px += 2) {
                const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
                const int8_t *x0, *x1;
                const int32_t *e = list;
                int8_t *o0 = out_b + px * pitch, *o1 = out_b + px1 * pitch;
                if (pointwise) {
                    const int32_t oy0 = px / p->out_w, ox0 = px % p->out_w;
                    const int32_t oy1 = px1 / p->out_w, ox1 = px1 % p->out_w;
                    x0 = in_b + (oy0 * p->stride_h * p->in_w + ox0 * p->stride_w) * p->in_c;
                    x1 = in_b + (oy1 * p->stride_h * p->in_w + ox1 * p->stride_w) * p->in_c;
                } else {
                    te_sparse_window(p, in_b, px / p->out_w, px % p->out_w, w0);
                    te_sparse_window(p, in_b, px1 / p->out_w, px1 % p->out_w, w1);
                    x0 = w0;
                    x1 = w1;
                }
                for (c = c0; c < c0 + nb; ++c) {
                    int32_t a0 = p->eff_bias[c], a1 = a0;
                    const int32_t cnt = *e++;
                    for (k = 0; k < cnt; ++k) {
                        const int32_t v = e[k];
                        const int32_t idx = v >> 8;
                        const int32_t wv = (int8_t)(v & 0xFF);
                        a0 += x0[idx] * wv;
                        a1 += x1[idx] * wv;
                    }
                    e += cnt;
                    o0[c] = te_requant(a0, p->mult[c], p->shift[c], oo, lo, hi);
                    o1[c] = te_requant(a1, p->mult[c], p->shift[c], oo, lo, hi);
                }
            }
        }
    }
}

/* x[idx[k]] * val[k] summed over k < c (one list segment) */
static inline int32_t te_list_dot(const int8_t *x, const uint8_t *idx, const int8_t *val, int32_t c)
{
    int32_t acc = 0, k = 0;
    for (; k + 4 <= c; k += 4) {
        uint32_t iw, vw;
        memcpy(&iw, idx + k, 4);
        memcpy(&vw, val + k, 4);
        acc += x[iw & 0xFFu] * (int32_t)(int8_t)(vw & 0xFFu);
        acc += x[(iw >> 8) & 0xFFu] * (int32_t)(int8_t)((vw >> 8) & 0xFFu);
        acc += x[(iw >> 16) & 0xFFu] * (int32_t)(int8_t)((vw >> 16) & 0xFFu);
        acc += x[iw >> 24] * (int32_t)(int8_t)(vw >> 24);
    }
    for (; k < c; ++k) {
        acc += x[idx[k]] * val[k];
    }
    return acc;
}

void te_fully_connected_s8_sparse(const te_fc_params_t *p, const te_weights_t *w, const int8_t *TE_RESTRICT in,
                                  int8_t *TE_RESTRICT out)
{
    const int32_t n = p->in_n;
    const int32_t qs = p->per_channel ? 1 : 0;
    const int32_t mlen = (n + 7) / 8;
    int32_t b, o, j, nnz;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *x = in + b * n;
        const uint8_t *src = w->data;
        for (o = 0; o < p->out_n; ++o) {
            const int32_t code = te_sparse_code(w, o);
            int32_t acc = p->eff_bias[o];
            if (code == TE_SP_PLAIN) {
                acc += te_dot(x, (const int8_t *)src, n);
                src += n;
            } else if (code == TE_SP_LIST) {
                int32_t s;
                for (s = 0; s < n; s += 256) {
                    const int32_t c = *src++;
                    acc += te_list_dot(x + s, src, (const int8_t *)(src + c), c);
                    src += 2 * c;
                }
            } else {
                const int8_t *v = (const int8_t *)(src + mlen);
                for (j = 0; j < n; j += 32) {
                    uint32_t m = 0;
                    const int32_t bytes = mlen - (j >> 3);
                    if (bytes >= 4) {
                        memcpy(&m, src + (j >> 3), 4);   /* one LDR; little-endian: bit k is weight j + k */
                    } else {
                        int32_t q;
                        for (q = 0; q < bytes; ++q) {
                            m |= (uint32_t)src[(j >> 3) + q] << (8 * q);
                        }
                    }
                    while (m) {
                        const int32_t k = te_ctz32(m);
                        acc += x[j + k] * *v++;
                        m &= m - 1u;
                    }
                }
                nnz = (int32_t)(v - (const int8_t *)(src + mlen));
                src += mlen + nnz;
            }
            out[b * p->out_n + o] = te_requant(acc, p->mult[o * qs], p->shift[o * qs], p->out_offset, p->act_min,
                                               p->act_max);
        }
    }
}
