/* tinyedge firmware: inline helpers shared by the aot kernel files (te_conv.c, te_fc.c, ...):
 * the Cortex-M DSP intrinsics, the int8 dot products (portable C and SMLAD paths), requantization,
 * and the kernel-window helpers.  Internal to firmware/kernels; the public API is te_kernels.h. */
#ifndef TE_KERNEL_HELPERS_H
#define TE_KERNEL_HELPERS_H

#include "te_kernels.h"

#include <string.h>

/* compiled for size: kernels whose instructions hardly count (softmax, pooling, the C around an
 * asm inner loop), so flash goes to weights (GCC; other compilers use their -O level) */
#if defined(__GNUC__) && !defined(__clang__)
#define TE_SMALL __attribute__((optimize("Os")))
#else
#define TE_SMALL
#endif

/* ---- dot products ---------------------------------------------------- */

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
static inline uint32_t te_sxtb16(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t te_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline int32_t te_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    int32_t r;
    __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
}
static inline uint32_t te_load32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
#endif

static inline int32_t te_dot(const int8_t *TE_RESTRICT a, const int8_t *TE_RESTRICT b, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    for (; i + 4 <= n; i += 4) {
        const uint32_t va = te_load32(a + i);
        const uint32_t vb = te_load32(b + i);
        acc = te_smlad(te_sxtb16(va), te_sxtb16(vb), acc);
        acc = te_smlad(te_sxtb16_ror8(va), te_sxtb16_ror8(vb), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* two output channels share each input load */
static inline void te_dot2(const int8_t *TE_RESTRICT x, const int8_t *TE_RESTRICT w0,
                           const int8_t *TE_RESTRICT w1, int32_t n, int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = 0, a1 = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    for (; i + 4 <= n; i += 4) {
        const uint32_t vx = te_load32(x + i);
        const uint32_t xe = te_sxtb16(vx), xo = te_sxtb16_ror8(vx);
        const uint32_t v0 = te_load32(w0 + i);
        const uint32_t v1 = te_load32(w1 + i);
        a0 = te_smlad(xe, te_sxtb16(v0), a0);
        a0 = te_smlad(xo, te_sxtb16_ror8(v0), a0);
        a1 = te_smlad(xe, te_sxtb16(v1), a1);
        a1 = te_smlad(xo, te_sxtb16_ror8(v1), a1);
    }
#endif
    for (; i < n; ++i) {
        const int32_t xv = x[i];
        a0 += xv * w0[i];
        a1 += xv * w1[i];
    }
    *acc0 += a0;
    *acc1 += a1;
}

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
/* The weight side of a 4-channel dot-product step: 4 inputs already widened to
 * 16-bit pairs in xe/xo, times the weight words of channels 0/1 (at wa + ws,
 * loaded into wv by the step itself, then wa) and 2/3 (at wb + ws, wb), widened
 * with SXTB16 and accumulated with SMLAD into a0..a3.  Shared by the conv
 * (te_dot4, te_dot4_rows) and FC steps; the operand names are the asm blocks' own. */
#define TE_ASM_W4_MACS \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a1], %[xe], %[t], %[a1]\n\t" \
    "smlad  %[a1], %[xo], %[wv], %[a1]\n\t" \
    "ldr    %[wv], [%[wa]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a0], %[xe], %[t], %[a0]\n\t" \
    "smlad  %[a0], %[xo], %[wv], %[a0]\n\t" \
    "ldr    %[wv], [%[wb], %[ws]]\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a3], %[xe], %[t], %[a3]\n\t" \
    "smlad  %[a3], %[xo], %[wv], %[a3]\n\t" \
    "ldr    %[wv], [%[wb]], #4\n\t" \
    "sxtb16 %[t], %[wv]\n\t" \
    "sxtb16 %[wv], %[wv], ror #8\n\t" \
    "smlad  %[a2], %[xe], %[t], %[a2]\n\t" \
    "smlad  %[a2], %[xo], %[wv], %[a2]\n\t"

/* conv: 4 int8 inputs from one word at x, widened to 16-bit pairs in xe/xo (the first
 * weight load sits between the input load and its use, to hide the load latency) */
#define TE_ASM_DOT4_STEP \
    "ldr    %[xo], [%[x]], #4\n\t" \
    "ldr    %[wv], [%[wa], %[ws]]\n\t" \
    "sxtb16 %[xe], %[xo]\n\t" \
    "sxtb16 %[xo], %[xo], ror #8\n\t" \
    TE_ASM_W4_MACS

#endif

/* four output channels share each input load */
static inline void te_dot4(const int8_t *TE_RESTRICT x, const int8_t *TE_RESTRICT w0, int32_t wstride, int32_t n,
                           int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
    /* Cortex-M4/M7/M33: 16 MACs in 25 instructions, everything in registers.
     * Channels 0/1 are read at wa and wa + wstride, channels 2/3 at wb and wb + wstride. */
    const int8_t *wa = w0;
    const int8_t *wb = w0 + 2 * wstride;
    int32_t groups = n >> 2;
    if (groups > 0) {
        uint32_t xe, xo, wv, t;
        __asm__ volatile(
            "1:\n\t"
            TE_ASM_DOT4_STEP
            "subs   %[g], %[g], #1\n\t"
            "bne    1b\n\t"
            : [x] "+r"(x), [wa] "+r"(wa), [wb] "+r"(wb), [g] "+r"(groups), [a0] "+r"(a0), [a1] "+r"(a1),
              [a2] "+r"(a2), [a3] "+r"(a3), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv), [t] "=&r"(t)
            : [ws] "r"(wstride)
            : "cc", "memory");
    }
    for (i = 0; i < (n & 3); ++i) {
        const int32_t xv = x[i];
        a0 += xv * wa[i];
        a1 += xv * wa[wstride + i];
        a2 += xv * wb[i];
        a3 += xv * wb[wstride + i];
    }
#else
    const int8_t *TE_RESTRICT w1 = w0 + wstride;
    const int8_t *TE_RESTRICT w2 = w1 + wstride;
    const int8_t *TE_RESTRICT w3 = w2 + wstride;
    for (; i < n; ++i) {
        const int32_t xv = x[i];
        a0 += xv * w0[i];
        a1 += xv * w1[i];
        a2 += xv * w2[i];
        a3 += xv * w3[i];
    }
#endif
    acc[0] += a0;
    acc[1] += a1;
    acc[2] += a2;
    acc[3] += a3;
}

#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__) && defined(__OPTIMIZE__)
#define TE_HAVE_DOT4_ROWS 1
/* 4 channels x `nrows` kernel rows of `run` bytes (run % 4 == 0, run > 0, nrows > 0):
 * input rows are `xrow` bytes apart, each channel's weight rows are contiguous
 * (full kernel window), channel c at w0 + c * wstride.  Accumulates into acc[0..3]. */
static inline void te_dot4_rows(const int8_t *x, int32_t xrow, const int8_t *w0, int32_t wstride, int32_t run,
                                int32_t nrows, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *wa = w0;
    const int8_t *wb = w0 + 2 * wstride;
    int32_t groups_init = run >> 2;
    int32_t xskip = xrow - run;
    int32_t rows = nrows;
    int32_t g;
    uint32_t xe, xo, wv, t;
    __asm__ volatile(
        "2:\n\t"
        "ldr    %[g], %[gi]\n\t"
        "1:\n\t"
        TE_ASM_DOT4_STEP
        "subs   %[g], %[g], #1\n\t"
        "bne    1b\n\t"
        "ldr    %[t], %[xs]\n\t"
        "add    %[x], %[x], %[t]\n\t"
        "ldr    %[t], %[rw]\n\t"
        "subs   %[t], %[t], #1\n\t"
        "str    %[t], %[rw]\n\t"
        "bne    2b\n\t"
        : [x] "+r"(x), [wa] "+r"(wa), [wb] "+r"(wb), [g] "=&r"(g), [a0] "+r"(a0), [a1] "+r"(a1),
          [a2] "+r"(a2), [a3] "+r"(a3), [xe] "=&r"(xe), [xo] "=&r"(xo), [wv] "=&r"(wv), [t] "=&r"(t),
          [rw] "+m"(rows)
        : [ws] "r"(wstride), [gi] "m"(groups_init), [xs] "m"(xskip)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

static inline int8_t te_requant(int32_t acc, int32_t mult, int32_t shift, int32_t out_offset,
                                int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    /* Common case, right shift e = -shift >= 1 and |acc| < 2^30: SMMULR(2 * acc, mult)
     * = floor((acc * mult + 2^30) / 2^31) is exactly te_mbqm_pos's rounded high product v, and
     * RoundingDivideByPOT(v, e) = (((v - (v < 0)) >> (e - 1)) + 1) >> 1 (nested floors; no
     * overflow since |v| <= 2^31 - 2).  About half the instructions of the general path. */
    const int32_t em1 = ~shift; /* e - 1 */
    const int32_t a2 = (int32_t)((uint32_t)acc << 1);
    if (em1 >= 0 && (a2 >> 1) == acc) {
        int32_t v;
        __asm__("smmulr %0, %1, %2" : "=r"(v) : "r"(a2), "r"(mult));
        v = (((v + (v >> 31)) >> em1) + 1) >> 1;
        return te_clamp8(v + out_offset, lo, hi);
    }
#endif
    return te_clamp8(te_mbqm_pos(acc, mult, shift) + out_offset, lo, hi);
}

/* te_mbqm_pos for a right shift (em1 = -shift - 1 >= 0), exact for every acc: the rounded high
 * product v = floor((acc * mult + 2^30) / 2^31) (one SMLAL), then RoundingDivideByPOT(v, em1 + 1)
 * = (((v - (v < 0)) >> em1) + 1) >> 1 by nested floors; no overflow since
 * -2^31 < v <= 2^31 - 2 for 0 <= mult < 2^31. */
static inline int32_t te_rq_right(int32_t acc, int32_t mult, int32_t em1)
{
    const int32_t v = (int32_t)(((int64_t)acc * mult + ((int64_t)1 << 30)) >> 31);
    return (((v + (v >> 31)) >> em1) + 1) >> 1;
}

/* saturate to int8 (the clamp when the activation range is the whole int8 range) */
static inline int32_t te_sat8(int32_t v)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* 1 when every channel's requantization is a right shift and the activation clamp is the
 * whole int8 range (the common case): kernels then use te_rq_right + te_sat8 */
static inline int te_fast_requant(const int8_t *shift, int32_t n, int32_t lo, int32_t hi)
{
    int32_t i;
    if (lo != -128 || hi != 127) {
        return 0;
    }
    for (i = 0; i < n; ++i) {
        if (shift[i] >= 0) {
            return 0;
        }
    }
    return 1;
}

static inline int32_t te_sum8(const int8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    for (; n >= 16 && i + 4 <= n; i += 4) {
        const uint32_t v = te_load32(w + i);
        acc = te_smlad(te_sxtb16(v), 0x00010001u, acc);
        acc = te_smlad(te_sxtb16_ror8(v), 0x00010001u, acc);
    }
#endif
    for (; i < n; ++i) {
        acc += w[i];
    }
    return acc;
}

/* first and one-past-last kernel tap k with 0 <= origin + k * dil < size */
static inline void te_taps(int32_t origin, int32_t k, int32_t dil, int32_t size, int32_t *k0, int32_t *k1)
{
    int32_t lo = origin < 0 ? (-origin + dil - 1) / dil : 0;
    int32_t hi = size - origin <= 0 ? 0 : (size - origin + dil - 1) / dil;
    *k1 = hi < k ? hi : k;
    *k0 = lo < *k1 ? lo : *k1;   /* never an inverted (negative-length) range */
}

/* ---- compact weight storage: row walking ------------------------------------ */

/* (uint16)lo | hi << 16 */
static inline uint32_t te_pack16(int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_DSP) && defined(__GNUC__)
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
    return r;
#else
    return (uint32_t)(uint16_t)lo | ((uint32_t)hi << 16);
#endif
}

/* palette / int4 (per-row steps) rows: bytes of row r and whether it is coded */
static inline int32_t te_pal_row_bytes(const te_weights_t *w, int32_t r)
{
    if (w->kind == TE_W_INT4) {
        return w->table[r] ? (w->row_len + 1) / 2 : w->row_len;   /* step 0: a plain row */
    }
    return (w->row_mode[r >> 3] >> (r & 7)) & 1u ? (w->row_len * w->bits + 7) / 8 : w->row_len;
}

static inline int te_pal_row_coded(const te_weights_t *w, int32_t r)
{
    return w->kind == TE_W_INT4 ? w->table[r] != 0 : (w->row_mode[r >> 3] >> (r & 7)) & 1u;
}

/* set bits in n bytes */
static inline int32_t te_popcount_bytes(const uint8_t *p, int32_t n)
{
    int32_t c = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t v;
        memcpy(&v, p + i, 4);
        v = v - ((v >> 1) & 0x55555555u);
        v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
        c += (int32_t)((((v + (v >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
    }
    for (; i < n; ++i) {
        uint32_t v = p[i];
        v = v - ((v >> 1) & 0x55u);
        v = (v & 0x33u) + ((v >> 2) & 0x33u);
        c += (int32_t)((v + (v >> 4)) & 0x0Fu);
    }
    return c;
}

/* TE_SP_* code of sparse row r */
static inline int32_t te_sparse_code(const te_weights_t *w, int32_t r)
{
    return (w->row_mode[r >> 2] >> ((r & 3) * 2)) & 3;
}

/* bytes of sparse row r, whose data starts at src; *nnz: its non-zeros */
static inline int32_t te_sparse_row_bytes(const te_weights_t *w, int32_t r, const uint8_t *src, int32_t *nnz)
{
    const int32_t n = w->row_len;
    const int32_t code = te_sparse_code(w, r);
    if (code == TE_SP_MASK) {
        const int32_t m = (n + 7) / 8;
        *nnz = te_popcount_bytes(src, m);
        return m + *nnz;
    }
    if (code == TE_SP_LIST) {
        int32_t s, b = 0, k = 0;
        for (s = 0; s < n; s += 256) {
            const int32_t c = src[b];
            k += c;
            b += 1 + 2 * c;
        }
        *nnz = k;
        return b;
    }
    *nnz = n;
    return n;
}

/* the data of sparse row r0 */
static inline const uint8_t *te_sparse_seek(const te_weights_t *w, int32_t r0)
{
    const uint8_t *src = w->data;
    int32_t r, k;
    for (r = 0; r < r0; ++r) {
        src += te_sparse_row_bytes(w, r, src, &k);
    }
    return src;
}

/* ---- pooling windows (te_pool.c, te_mve_pool.c) ------------------------- */

/* The first tap of a window starting at input index i0 (negative: in the padding) that lies inside. */
static inline int32_t te_tap_first(int32_t i0)
{
    return i0 < 0 ? -i0 : 0;
}

/* One past the last tap of a k-tap window starting at i0 that lies inside an input of n. */
static inline int32_t te_tap_end(int32_t i0, int32_t k, int32_t n)
{
    return n - i0 < k ? n - i0 : k;
}

/* TFLite's average: the sum over `count` taps, rounded half away from zero (0 for no taps). */
static inline int32_t te_avg_div(int32_t acc, int32_t count)
{
    if (count == 0) {
        return 0;
    }
    return acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
}

#endif /* TE_KERNEL_HELPERS_H */
