/* tinyedge firmware: DEPTHWISE_CONV_2D int8 (depth multiplier 1) on Helium (MVE); see te_mve.h.
 *
 * Rows of at least 8 output pixels (te_mve_dw_rows): the input rows an output row reads copied
 * into a band regrouped by 4 channels, 4 pixels x 4 channels a pass (3x3 kernels of stride 1 or 2
 * in inline assembly, te_mve_dw33: 1.2 instructions per MAC with the requantization), by output
 * columns instead when the image is narrower than tall (kws: 5 x 25).  Smaller images (VWW's
 * 6 x 6, 3 x 3): per output pixel, every kernel tap through a pointer (taps outside the input
 * read a row of input zero points, which the folded bias cancels exactly); channels 4 at a time
 * in 32-bit lanes: per tap and 4 channels a widening input load, a widening weight load, VMUL,
 * VADD.  Two output pixels share the weight loads.  The last out_c % 4 channels predicated. */
#include "te_mve.h"

#include <string.h>

#ifdef TE_HAVE_MVE

#define TE_MVE_DW_TAPS 64   /* kernel taps (pointer table on the stack) */
#define TE_MVE_DW_ZMAX 1024 /* channels (zero-point row on the stack) */

static void te_mve_dw_taps(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox,
                           const int8_t *zrow, const int8_t **tp)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    int32_t ky, kx, t = 0;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        const int row_ok = (uint32_t)iy < (uint32_t)p->in_h;
        for (kx = 0; kx < p->k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dil_w;
            tp[t++] = row_ok && (uint32_t)ix < (uint32_t)p->in_w ? in_b + (iy * p->in_w + ix) * p->in_c : zrow;
        }
    }
}

/* the first tap of output pixel px when its whole window lies inside the input, else NULL */
static inline const int8_t *te_mve_dw_origin(const te_conv_params_t *p, const int8_t *in_b, int32_t px)
{
    const int32_t iy0 = px / p->out_w * p->stride_h - p->pad_h;
    const int32_t ix0 = px % p->out_w * p->stride_w - p->pad_w;
    if (iy0 < 0 || iy0 + (p->k_h - 1) * p->dil_h >= p->in_h || ix0 < 0 || ix0 + (p->k_w - 1) * p->dil_w >= p->in_w) {
        return NULL;
    }
    return in_b + (iy0 * p->in_w + ix0) * p->in_c;
}

#define TE_MVE_DW_BAND 6144 /* bytes of the row band (k_h rows of the padded input, on the stack) */

/* One tap of a 3 x 3 kernel for four pixels: weight in W, pixel p's input at X + p * S + K
 * bytes (S the pixel step in the band, K the tap's), the product in q7 added into q0..q3. */
#define TE_DW_TAP(X, W, S, K)                                                                       \
    "vldrb.s32  q7, [%[" X "], #(0*" #S "+" #K ")]\n\tvmul.i32 q7, q7, " W "\n\tvadd.i32 q0, q0, q7\n\t" \
    "vldrb.s32  q7, [%[" X "], #(1*" #S "+" #K ")]\n\tvmul.i32 q7, q7, " W "\n\tvadd.i32 q1, q1, q7\n\t" \
    "vldrb.s32  q7, [%[" X "], #(2*" #S "+" #K ")]\n\tvmul.i32 q7, q7, " W "\n\tvadd.i32 q2, q2, q7\n\t" \
    "vldrb.s32  q7, [%[" X "], #(3*" #S "+" #K ")]\n\tvmul.i32 q7, q7, " W "\n\tvadd.i32 q3, q3, q7\n\t"

/* one kernel row: its three taps' weights (int32, from the block at wb + WO) then 12 taps */
#define TE_DW_ROW(X, WO, S)                                                                         \
    "vldrw.32   q4, [%[wb], #(" #WO "+0)]\n\t"                                                      \
    "vldrw.32   q5, [%[wb], #(" #WO "+16)]\n\t"                                                     \
    "vldrw.32   q6, [%[wb], #(" #WO "+32)]\n\t"                                                     \
    TE_DW_TAP(X, "q4", S, 0) TE_DW_TAP(X, "q5", S, 4) TE_DW_TAP(X, "q6", S, 8)

#define TE_DW_RQ(Q)                                                                                 \
    "vqrdmulh.s32 " Q ", " Q ", q4\n\tvand q6, " Q ", q5\n\tvshr.s32 q6, q6, #31\n\t"             \
    "vqadd.s32 " Q ", " Q ", q6\n\tvrshl.s32 " Q ", " Q ", q5\n\t"

/* n groups of four output pixels (S / 4 band columns apart) x four channels, 3 x 3 kernel: per
 * group 36 taps of 4 lanes from the band rows x0, x1, x2 (each tap one load, VMUL, VADD; the nine
 * weight vectors from the block) and the requantization (te_mve_requant's sequence) of the 16 sums,
 * stored as bytes d apart from out; 170 instructions for 144 MACs (177 with left shifts).  The
 * block wb (te_mve_dw_block): 9 x 4 int32 weights, then bias, multiplier, min(shift, 0), output
 * offset, act_min, act_max, max(shift, 0), 4 lanes each.  Inline assembly: GCC 12 spills the
 * accumulators of the same loop in intrinsics. */
#define TE_DW33(S, LEFT)                                                                            \
    __asm__ volatile("   dls        lr, %[n]\n"                                                     \
                     "1:\n\t"                                                                       \
                     "   vldrw.32   q0, [%[wb], #144]\n\t"                                          \
                     "   vmov       q1, q0\n\t"                                                     \
                     "   vmov       q2, q0\n\t"                                                     \
                     "   vmov       q3, q0\n\t"                                                     \
                     TE_DW_ROW("x0", 0, S) TE_DW_ROW("x1", 48, S) TE_DW_ROW("x2", 96, S)             \
                     "   add        %[x0], %[x0], #(4*" #S ")\n\t"                                  \
                     "   add        %[x1], %[x1], #(4*" #S ")\n\t"                                  \
                     "   add        %[x2], %[x2], #(4*" #S ")\n\t"                                  \
                     "   vldrw.32   q4, [%[wb], #160]\n\t"                                          \
                     "   vldrw.32   q5, [%[wb], #176]\n\t"                                          \
                     LEFT                                                                           \
                     TE_DW_RQ("q0") TE_DW_RQ("q1") TE_DW_RQ("q2") TE_DW_RQ("q3")                    \
                     "   vldrw.32   q7, [%[wb], #192]\n\t"                                          \
                     "   vadd.i32   q0, q0, q7\n\tvadd.i32 q1, q1, q7\n\t"                          \
                     "   vadd.i32   q2, q2, q7\n\tvadd.i32 q3, q3, q7\n\t"                          \
                     "   vldrw.32   q7, [%[wb], #208]\n\t"                                          \
                     "   vmax.s32   q0, q0, q7\n\tvmax.s32 q1, q1, q7\n\t"                          \
                     "   vmax.s32   q2, q2, q7\n\tvmax.s32 q3, q3, q7\n\t"                          \
                     "   vldrw.32   q7, [%[wb], #224]\n\t"                                          \
                     "   vmin.s32   q0, q0, q7\n\tvmin.s32 q1, q1, q7\n\t"                          \
                     "   vmin.s32   q2, q2, q7\n\tvmin.s32 q3, q3, q7\n\t"                          \
                     "   vstrb.32   q0, [%[out]]\n\tadd %[out], %[out], %[d]\n\t"                   \
                     "   vstrb.32   q1, [%[out]]\n\tadd %[out], %[out], %[d]\n\t"                   \
                     "   vstrb.32   q2, [%[out]]\n\tadd %[out], %[out], %[d]\n\t"                   \
                     "   vstrb.32   q3, [%[out]]\n\tadd %[out], %[out], %[d]\n\t"                   \
                     "   le         lr, 1b\n\t"                                                     \
                     : [x0] "+l"(x0), [x1] "+l"(x1), [x2] "+l"(x2), [out] "+l"(out)                 \
                     : [wb] "r"(wb), [n] "r"(n), [d] "r"(d)                                         \
                     : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "memory", "r14")

#define TE_DW_LEFT                                                                                  \
    "   vldrw.32   q6, [%[wb], #240]\n\t"                                                           \
    "   vshl.s32   q0, q0, q6\n\tvshl.s32 q1, q1, q6\n\tvshl.s32 q2, q2, q6\n\tvshl.s32 q3, q3, q6\n\t"

static inline void te_mve_dw33(const int8_t *x0, const int8_t *x1, const int8_t *x2, const int32_t *wb, int32_t n,
                               int st2, int right, int8_t *out, int32_t d)
{
    if (right && st2) {
        TE_DW33(8, "");
    } else if (right) {
        TE_DW33(4, "");
    } else if (st2) {
        TE_DW33(8, TE_DW_LEFT);
    } else {
        TE_DW33(4, TE_DW_LEFT);
    }
}

/* the block te_mve_dw33 reads for the 4 channels at c: weights w + t * ws (t = 0..8, the kernel's
 * taps in the band's row-major order) widened to int32, then the requantization constants */
static inline void te_mve_dw_block(const te_conv_params_t *p, int32_t c, const int8_t *w, int32_t ws_q,
                                   int32_t ws_r, int32_t *wb)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t sh = vldrbq_s32(p->shift + c);
    int32_t r, q;
    for (r = 0; r < 3; ++r) {
        for (q = 0; q < 3; ++q) {
            vstrwq_s32(wb + (r * 3 + q) * 4, vldrbq_s32(w + r * ws_r + q * ws_q));
        }
    }
    vstrwq_s32(wb + 36, vldrwq_s32(p->eff_bias + c));
    vstrwq_s32(wb + 40, vldrwq_s32(p->mult + c));
    vstrwq_s32(wb + 44, vminq_s32(sh, zero));
    vstrwq_s32(wb + 48, vdupq_n_s32(p->out_offset));
    vstrwq_s32(wb + 52, vdupq_n_s32(p->act_min));
    vstrwq_s32(wb + 56, vdupq_n_s32(p->act_max));
    vstrwq_s32(wb + 60, vmaxq_s32(sh, zero));
}

/* four output pixels x four channels (one group of the band, see te_mve_dw_rows): xb the first
 * pixel's tap (0, 0), pixels sw * 4 bytes apart, taps dil * 4 bytes apart in a row and rs bytes
 * apart between rows; kw, sw and dil are constants where the caller can give them (the loads then
 * take immediate offsets).  The four sums requantized and stored at out0 + d * pixel, the last
 * group of channels predicated by pr (tail != 0). */
static inline __attribute__((always_inline)) void
te_mve_dw_px4(const te_conv_params_t *p, const int8_t *const *rows, int32_t xo, int32_t kw, int32_t sw, int32_t dil,
              const int8_t *w, int32x4_t bias, int32x4_t mult, int32x4_t shift, int right, int8_t *out0,
              int32_t d, int tail, mve_pred16_t pr)
{
    const int32_t oc_n = p->out_c, oo = p->out_offset;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32x4_t a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    int32_t ky, kx;
    for (ky = 0; ky < p->k_h; ++ky) {
        const int8_t *x = rows[ky] + xo;
        for (kx = 0; kx < kw; ++kx) {
            const int32x4_t wv = tail ? vldrbq_z_s32(w, pr) : vldrbq_s32(w);
            a0 = vaddq_s32(a0, vmulq_s32(vldrbq_s32(x), wv));
            a1 = vaddq_s32(a1, vmulq_s32(vldrbq_s32(x + 4 * sw), wv));
            a2 = vaddq_s32(a2, vmulq_s32(vldrbq_s32(x + 8 * sw), wv));
            a3 = vaddq_s32(a3, vmulq_s32(vldrbq_s32(x + 12 * sw), wv));
            x += 4 * dil;
            w += oc_n;
        }
    }
    if (right) {
        a0 = te_mve_requant_r(a0, mult, shift, oo, lo, hi);
        a1 = te_mve_requant_r(a1, mult, shift, oo, lo, hi);
        a2 = te_mve_requant_r(a2, mult, shift, oo, lo, hi);
        a3 = te_mve_requant_r(a3, mult, shift, oo, lo, hi);
    } else {
        a0 = te_mve_requant(a0, mult, shift, oo, lo, hi);
        a1 = te_mve_requant(a1, mult, shift, oo, lo, hi);
        a2 = te_mve_requant(a2, mult, shift, oo, lo, hi);
        a3 = te_mve_requant(a3, mult, shift, oo, lo, hi);
    }
    if (tail) {
        vstrbq_p_s32(out0, a0, pr);
        vstrbq_p_s32(out0 + d, a1, pr);
        vstrbq_p_s32(out0 + 2 * d, a2, pr);
        vstrbq_p_s32(out0 + 3 * d, a3, pr);
    } else {
        vstrbq_s32(out0, a0);
        vstrbq_s32(out0 + d, a1);
        vstrbq_s32(out0 + 2 * d, a2);
        vstrbq_s32(out0 + 3 * d, a3);
    }
}

/* band columns [c0, c1) of a band row (bw columns of ng groups) set to the input zero point zp */
static inline void te_mve_dw_zp(int8_t *brow, int32_t bw, int32_t c0, int32_t c1, int32_t ng, uint32x4_t goff,
                                int32x4_t zp)
{
    int32_t col, j;
    for (col = c0; col < c1; ++col) {
        int32_t *dst = (int32_t *)(void *)(brow + col * 4);
        for (j = 0; j < ng; j += 4) {
            vstrwq_scatter_offset_p_s32(dst + j * bw, goff, zp, vctp32q((uint32_t)(ng - j)));
        }
    }
}

/* ncols input pixels (ic bytes each, src_q apart) into consecutive band columns from brow: per 16
 * bytes one load and one scatter of its 4 words to 4 groups (offsets goff) */
static inline void te_mve_dw_copy(int8_t *brow, int32_t bw, const int8_t *src, int32_t src_q, int32_t ncols,
                                  int32_t ic, uint32x4_t goff)
{
    int32_t *dst = (int32_t *)(void *)brow;
    int32_t col, j;
    if (ic < 16) {
        const mve_pred16_t p8 = vctp8q((uint32_t)ic), p32 = vctp32q((uint32_t)((ic + 3) / 4));
        for (col = 0; col < ncols; ++col) {
            vstrwq_scatter_offset_p_s32(dst, goff, vreinterpretq_s32_s8(vldrbq_z_s8(src, p8)), p32);
            src += src_q;
            dst += 1;
        }
    } else if ((ic & 15) == 0) {
        for (col = 0; col < ncols; ++col) {
            int32_t *d = dst;
            for (j = 0; j < ic; j += 16) {
                vstrwq_scatter_offset_s32(d, goff, vreinterpretq_s32_s8(vldrbq_s8(src + j)));
                d += 4 * bw;
            }
            src += src_q;
            dst += 1;
        }
    } else {
        for (col = 0; col < ncols; ++col) {
            for (j = 0; j < ic; j += 16) {
                vstrwq_scatter_offset_p_s32(dst + j * bw / 4, goff,
                                            vreinterpretq_s32_s8(vldrbq_z_s8(src + j, vctp8q((uint32_t)(ic - j)))),
                                            vctp32q((uint32_t)((ic - j + 3) / 4)));
            }
            src += src_q;
            dst += 1;
        }
    }
}

/* Per output row, the k_h input rows it reads are copied into a band on the stack, regrouped by
 * 4 channels: band[slot][channel group][column][4], the columns from ix = -pad_w, input zero
 * points in the padding (the folded bias cancels them exactly); one 16-byte load and one word
 * scatter per 16 input bytes.  With dilation 1 the slots are a ring (input row iy in slot
 * iy mod k_h), so an input row is copied once for all the output rows that read it (stride 1).
 * Then per group of 4 channels and 4 output pixels of the row (a last group of 1-3 pixels is the
 * row's last 4, recomputed), per tap one weight load shared by the 4 pixels and the 4 inputs
 * loaded at fixed offsets: 3 x 3 kernels of stride 1 or 2 and dilation 1 in te_mve_dw33, the
 * others (and the last out_c % 4 channels) in te_mve_dw_px4.  With vert != 0 the same on the
 * transposed image (rows and columns swapped: per output column, 4 output rows a group), which
 * wastes less on images narrower than tall (kws: 5 x 25); taken only where te_mve_dw33 runs every
 * group of channels.  0 when the band does not fit (or the row has fewer than 8 pixels). */
static __attribute__((noinline)) int te_mve_dw_rows(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                                    int8_t *TE_RESTRICT out, int right, int vert)
{
    int8_t band[TE_MVE_DW_BAND] __attribute__((aligned(4)));
    int32_t wb[64] __attribute__((aligned(8)));
    int32_t tag[TE_MVE_DW_TAPS];
    const int8_t *rows[TE_MVE_DW_TAPS];
    /* the logical image: rows (r) and columns (q), the physical ones or swapped */
    const int32_t ic = p->in_c, oc_n = p->out_c;
    const int32_t in_r = vert ? p->in_w : p->in_h, in_q = vert ? p->in_h : p->in_w;
    const int32_t o_r = vert ? p->out_w : p->out_h, o_q = vert ? p->out_h : p->out_w;
    const int32_t k_r = vert ? p->k_w : p->k_h, k_q = vert ? p->k_h : p->k_w;
    const int32_t s_r = vert ? p->stride_w : p->stride_h, s_q = vert ? p->stride_h : p->stride_w;
    const int32_t d_r = vert ? p->dil_w : p->dil_h, d_q = vert ? p->dil_h : p->dil_w;
    const int32_t p_r = vert ? p->pad_w : p->pad_h, p_q = vert ? p->pad_h : p->pad_w;
    const int32_t src_r = vert ? ic : p->in_w * ic, src_q = vert ? p->in_w * ic : ic; /* input steps */
    const int32_t dst_r = vert ? oc_n : p->out_w * oc_n, dst_q = vert ? p->out_w * oc_n : oc_n;
    const int32_t w_r = vert ? oc_n : p->k_w * oc_n, w_q = vert ? p->k_w * oc_n : oc_n; /* weight steps */
    const int32_t bw = (o_q - 1) * s_q + (k_q - 1) * d_q + 1; /* band columns, from q = -p_q */
    const int32_t ng = (ic + 3) / 4;                          /* channel groups */
    const int32_t gs = bw * 4, rs = ng * gs;                  /* bytes per group, per band row */
    const int32_t x0 = -p_q, x1 = x0 + bw;                    /* band columns [x0, x1) */
    const int32_t c0 = x0 < 0 ? 0 : x0, c1 = x1 > in_q ? in_q : x1; /* inside columns */
    const int32x4_t zp = vreinterpretq_s32_s8(vdupq_n_s8((int8_t)(-p->in_offset)));
    const uint32x4_t goff = vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)gs); /* 4 groups' offsets */
    const int k33 = k_q == 3 && k_r == 3 && (s_q == 1 || s_q == 2) && d_q == 1 && d_r == 1;
    const int32_t full = o_q / 4, last = o_q % 4 ? o_q - 4 : -1; /* groups from 0; a shifted last one */
    int32_t b, oy, ky, c;
    /* rows of fewer than 8 pixels: the per-pixel path costs less than a recomputed last group plus
     * the per-row constants (VWW's 6 x 6 layers) */
    if (o_q < 8 || k_r > TE_MVE_DW_TAPS || (int64_t)k_r * rs > TE_MVE_DW_BAND ||
        (vert && (!k33 || (oc_n & 3) != 0))) {
        return 0;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * ic;
        int8_t *out_b = out + b * p->out_h * p->out_w * oc_n;
        for (ky = 0; ky < k_r; ++ky) {
            tag[ky] = INT32_MIN;
        }
        for (oy = 0; oy < o_r; ++oy) {
            int8_t *out_r = out_b + oy * dst_r;
            for (ky = 0; ky < k_r; ++ky) {
                const int32_t iy = oy * s_r - p_r + ky * d_r;
                const int32_t slot = d_r == 1 ? (iy % k_r + k_r) % k_r : ky;
                int8_t *brow = band + slot * rs;
                rows[ky] = brow;
                if (d_r == 1 && tag[slot] == iy) {
                    continue; /* already in the ring */
                }
                tag[slot] = d_r == 1 ? iy : INT32_MIN;
                if (iy < 0 || iy >= in_r) {
                    te_mve_dw_zp(brow, bw, 0, bw, ng, goff, zp);
                } else {
                    te_mve_dw_zp(brow, bw, 0, c0 - x0, ng, goff, zp);
                    te_mve_dw_copy(brow + (c0 - x0) * 4, bw, in_b + iy * src_r + c0 * src_q, src_q, c1 - c0, ic, goff);
                    te_mve_dw_zp(brow, bw, c1 - x0, bw, ng, goff, zp);
                }
            }
            for (c = 0; c < oc_n; c += 4) {
                const int32_t go = c / 4 * gs;
                const int8_t *w = p->weights + c;
                if (k33 && oc_n - c >= 4) {
                    te_mve_dw_block(p, c, w, w_q, w_r, wb);
                    te_mve_dw33(rows[0] + go, rows[1] + go, rows[2] + go, wb, full, s_q == 2, right, out_r + c, dst_q);
                    if (last >= 0) {
                        const int32_t xo = go + last * s_q * 4;
                        te_mve_dw33(rows[0] + xo, rows[1] + xo, rows[2] + xo, wb, 1, s_q == 2, right,
                                    out_r + last * dst_q + c, dst_q);
                    }
                } else {
                    const int tail = oc_n - c < 4;
                    const mve_pred16_t pr = vctp32q((uint32_t)(oc_n - c));
                    const int32x4_t bias = vldrwq_z_s32(p->eff_bias + c, pr);
                    const int32x4_t mult = vldrwq_z_s32(p->mult + c, pr);
                    const int32x4_t shift = vldrbq_z_s32(p->shift + c, pr);
                    int32_t ox;
                    for (ox = 0; ox < o_q; ox += 4) {
                        const int32_t o = ox + 4 <= o_q ? ox : o_q - 4;
                        const int32_t xo = go + o * s_q * 4;
                        int8_t *o0 = out_r + o * dst_q + c;
                        if (tail) {
                            te_mve_dw_px4(p, rows, xo, k_q, s_q, d_q, w, bias, mult, shift, right, o0, dst_q, 1, pr);
                        } else {
                            te_mve_dw_px4(p, rows, xo, k_q, s_q, d_q, w, bias, mult, shift, right, o0, dst_q, 0, pr);
                        }
                    }
                }
            }
        }
    }
    return 1;
}

/* the per-pixel path (see the file's head) */
static __attribute__((noinline)) int te_mve_dw_pixels(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                                      int8_t *TE_RESTRICT out, int right)
{
    int8_t zrow[TE_MVE_DW_ZMAX];
    const int8_t *tp0[TE_MVE_DW_TAPS], *tp1[TE_MVE_DW_TAPS];
    int32_t off[TE_MVE_DW_TAPS];
    const int32_t ntaps = p->k_h * p->k_w;
    const int32_t oc_n = p->out_c;
    const int32_t npix = p->out_h * p->out_w;
    const int32_t oo = p->out_offset;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32_t b, px, c, t;
    for (t = 0; t < ntaps; ++t) {
        off[t] = (t / p->k_w * p->dil_h * p->in_w + t % p->k_w * p->dil_w) * p->in_c;
    }
    memset(zrow, (unsigned char)(int8_t)(-p->in_offset), (size_t)oc_n);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = out + b * npix * oc_n;
        for (px = 0; px < npix; px += 2) {
            const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
            int8_t *o0 = out_b + px * oc_n, *o1 = out_b + px1 * oc_n;
            const int8_t *b0 = te_mve_dw_origin(p, in_b, px), *b1 = te_mve_dw_origin(p, in_b, px1);
            if (b0 != NULL && b1 != NULL) {
                for (t = 0; t < ntaps; ++t) {   /* both windows inside: fixed tap offsets */
                    tp0[t] = b0 + off[t];
                    tp1[t] = b1 + off[t];
                }
            } else {
                te_mve_dw_taps(p, in_b, px / p->out_w, px % p->out_w, zrow, tp0);
                te_mve_dw_taps(p, in_b, px1 / p->out_w, px1 % p->out_w, zrow, tp1);
            }
            c = 0;
            /* 8 channels (two lane groups) per pass, no predication */
            for (; c + 8 <= oc_n; c += 8) {
                const int8_t *w = p->weights + c;
                int32x4_t a0 = vldrwq_s32(p->eff_bias + c), b0 = vldrwq_s32(p->eff_bias + c + 4);
                int32x4_t a1 = a0, b1 = b0;
                int32x4_t mult, shift;
                for (t = 0; t < ntaps; ++t) {
                    const int8_t *x0 = tp0[t] + c, *x1 = tp1[t] + c;
                    const int32x4_t wa = vldrbq_s32(w), wb = vldrbq_s32(w + 4);
                    a0 = vaddq_s32(a0, vmulq_s32(vldrbq_s32(x0), wa));
                    b0 = vaddq_s32(b0, vmulq_s32(vldrbq_s32(x0 + 4), wb));
                    a1 = vaddq_s32(a1, vmulq_s32(vldrbq_s32(x1), wa));
                    b1 = vaddq_s32(b1, vmulq_s32(vldrbq_s32(x1 + 4), wb));
                    w += oc_n;
                }
                mult = vldrwq_s32(p->mult + c);
                shift = vldrbq_s32(p->shift + c);
                if (right) {
                    a0 = te_mve_requant_r(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant_r(a1, mult, shift, oo, lo, hi);
                } else {
                    a0 = te_mve_requant(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant(a1, mult, shift, oo, lo, hi);
                }
                vstrbq_s32(o0 + c, a0);
                vstrbq_s32(o1 + c, a1);
                mult = vldrwq_s32(p->mult + c + 4);
                shift = vldrbq_s32(p->shift + c + 4);
                if (right) {
                    b0 = te_mve_requant_r(b0, mult, shift, oo, lo, hi);
                    b1 = te_mve_requant_r(b1, mult, shift, oo, lo, hi);
                } else {
                    b0 = te_mve_requant(b0, mult, shift, oo, lo, hi);
                    b1 = te_mve_requant(b1, mult, shift, oo, lo, hi);
                }
                vstrbq_s32(o0 + c + 4, b0);
                vstrbq_s32(o1 + c + 4, b1);
            }
            for (; c < oc_n; c += 4) {
                const mve_pred16_t pr = vctp32q((uint32_t)(oc_n - c));
                const int8_t *w = p->weights + c;
                int32x4_t a0 = vldrwq_z_s32(p->eff_bias + c, pr);
                int32x4_t a1 = a0;
                int32x4_t mult, shift;
                for (t = 0; t < ntaps; ++t) {
                    const int32x4_t wv = vldrbq_z_s32(w, pr);
                    a0 = vaddq_s32(a0, vmulq_s32(vldrbq_z_s32(tp0[t] + c, pr), wv));
                    a1 = vaddq_s32(a1, vmulq_s32(vldrbq_z_s32(tp1[t] + c, pr), wv));
                    w += oc_n;
                }
                mult = vldrwq_z_s32(p->mult + c, pr);
                shift = vldrbq_z_s32(p->shift + c, pr);
                if (right) {
                    a0 = te_mve_requant_r(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant_r(a1, mult, shift, oo, lo, hi);
                } else {
                    a0 = te_mve_requant(a0, mult, shift, oo, lo, hi);
                    a1 = te_mve_requant(a1, mult, shift, oo, lo, hi);
                }
                vstrbq_p_s32(o0 + c, a0, pr);
                vstrbq_p_s32(o1 + c, a1, pr);
            }
        }
    }
    return 1;
}

int te_mve_depthwise_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    /* each path a function of its own: only its buffers on the stack */
    int right;
    if (p->depth_mult != 1 || p->k_h * p->k_w > TE_MVE_DW_TAPS || p->out_c > TE_MVE_DW_ZMAX) {
        return 0;
    }
    right = te_mve_right_only(p->shift, p->out_c);
    /* columns of 4 output pixels when that computes fewer (a last partial group is recomputed) */
    if (te_mve_dw_rows(p, in, out, right,
                       (p->out_h + 3) / 4 * p->out_w < (p->out_w + 3) / 4 * p->out_h) ||
        te_mve_dw_rows(p, in, out, right, 0)) {
        return 1;
    }
    return te_mve_dw_pixels(p, in, out, right);
}

#else
typedef int te_mve_depthwise_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
