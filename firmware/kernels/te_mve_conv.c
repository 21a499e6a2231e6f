/* tinyedge firmware: CONV_2D int8 on Helium (MVE); see te_mve.h.
 *
 * Three paths, by window (k_h * k_w * in_c bytes) and channel count:
 *  - windows of <= 12 bytes (1x1 on few channels: VWW's 8), out_c % 8 == 0: output channels in
 *    the lanes, one VMLA by scalar per window byte and 4 channels (te_mve_conv_small);
 *  - out_c % 4 == 0: per two output pixels every channel pair in one inline-assembly loop of
 *    16-byte VMLADAVA groups (te_mve_conv_pairs; other window sizes on zero-padded weight rows),
 *    the sums requantized 4 channels a vector;
 *  - else two output pixels x two output channels per pass (below).
 * Each pixel's receptive field is one contiguous run: the input itself for a 1x1 kernel whose
 * pixel lies inside the input, else a copy (zero-point padded, so the folded bias is exact at the
 * borders too).  Per 16 bytes of the run: two input loads, two weight loads, four VMLADAVA (64 MACs
 * in 8 instructions); the last run % 16 bytes predicated.  The four sums are requantized as one
 * vector and stored with one scatter. */
#include "te_mve.h"

#ifdef TE_HAVE_MVE

#define TE_MVE_WIN 1152 /* window bytes per pixel (two windows on the stack) */

/* n bytes from src to dst, 16 at a time */
static inline void te_mve_copy(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i += 16) {
        const mve_pred16_t pr = vctp8q((uint32_t)(n - i));
        vstrbq_p_s8(dst + i, vldrbq_z_s8(src + i, pr), pr);
    }
}

static inline void te_mve_fill(int8_t *dst, int8x16_t v, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i += 16) {
        vstrbq_p_s8(dst + i, v, vctp8q((uint32_t)(n - i)));
    }
}

/* the receptive field of output pixel (oy, ox): in place when a 1x1 kernel's pixel is inside the
 * input, else copied into buf */
static const int8_t *te_mve_window(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox,
                                   int8_t *buf)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h;
    const int32_t ix0 = ox * p->stride_w - p->pad_w;
    const int32_t ic = p->in_c, kc = p->k_w * ic;
    const int8x16_t zp = vdupq_n_s8((int8_t)(-p->in_offset));
    const int row_inside = p->dil_w == 1 && ix0 >= 0 && ix0 + p->k_w <= p->in_w;
    int8_t *b = buf;
    int32_t ky, kx;
    if (p->k_h == 1 && p->k_w == 1 && iy0 >= 0 && iy0 < p->in_h && row_inside) {
        return in_b + (iy0 * p->in_w + ix0) * ic;
    }
    for (ky = 0; ky < p->k_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= p->in_h) {
            te_mve_fill(b, zp, kc);
        } else if (row_inside) {
            te_mve_copy(b, in_b + (iy * p->in_w + ix0) * ic, kc);
        } else if (p->dil_w == 1) {
            /* a row cut by the border: zero points, then its inside columns in one copy */
            const int32_t c0 = ix0 < 0 ? -ix0 : 0;
            const int32_t c1 = ix0 + p->k_w > p->in_w ? p->in_w - ix0 : p->k_w;
            te_mve_fill(b, zp, kc);
            if (c1 > c0) {
                te_mve_copy(b + c0 * ic, in_b + (iy * p->in_w + ix0 + c0) * ic, (c1 - c0) * ic);
            }
        } else {
            for (kx = 0; kx < p->k_w; ++kx) {
                const int32_t ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= p->in_w) {
                    te_mve_fill(b + kx * ic, zp, ic);
                } else {
                    te_mve_copy(b + kx * ic, in_b + (iy * p->in_w + ix) * ic, ic);
                }
            }
        }
        b += kc;
    }
    return buf;
}

/* kh kernel rows of g 16-byte groups from src (rows rstep apart) to d, contiguous */
static inline __attribute__((always_inline)) void te_mve_rows16(int8_t *d, const int8_t *src, int32_t rstep,
                                                                 int32_t kh, int32_t g)
{
    int32_t ky, j;
    for (ky = 0; ky < kh; ++ky) {
        for (j = 0; j < g; ++j) {
            vstrbq_s8(d + 16 * j, vldrbq_s8(src + 16 * j));
        }
        src += rstep;
        d += 16 * g;
    }
}

/* the window of output pixel (oy, ox) into buf when it lies inside the input (dil_w == 1: each
 * kernel row one run of kc = k_w * in_c <= TE_MVE_RUN bytes, one load and store per 16 bytes, the
 * last predicated), else te_mve_window's */
#define TE_MVE_RUN 64
static inline const int8_t *te_mve_win2(const te_conv_params_t *p, const int8_t *in_b, int32_t oy, int32_t ox,
                                        int8_t *buf)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_h, ix0 = ox * p->stride_w - p->pad_w;
    const int32_t kc = p->k_w * p->in_c;
    if (p->dil_w == 1 && kc <= TE_MVE_RUN && iy0 >= 0 && iy0 + (p->k_h - 1) * p->dil_h < p->in_h && ix0 >= 0 &&
        ix0 + p->k_w <= p->in_w) {
        const int32_t rstep = p->dil_h * p->in_w * p->in_c;
        const int8_t *src = in_b + (iy0 * p->in_w + ix0) * p->in_c;
        int8_t *d = buf;
        int32_t ky, j;
        if ((kc & 15) == 0) {
            /* whole 16-byte groups: the group count a constant per case, the row loop unrolled */
            switch (kc >> 4) {
            case 1:
                te_mve_rows16(d, src, rstep, p->k_h, 1);
                break;
            case 2:
                te_mve_rows16(d, src, rstep, p->k_h, 2);
                break;
            case 3:
                te_mve_rows16(d, src, rstep, p->k_h, 3);
                break;
            default:
                te_mve_rows16(d, src, rstep, p->k_h, 4);
                break;
            }
        } else if (kc <= 16) {
            const mve_pred16_t pr = vctp8q((uint32_t)kc);
            for (ky = 0; ky < p->k_h; ++ky) {
                vstrbq_p_s8(d, vldrbq_z_s8(src, pr), pr);
                src += rstep;
                d += kc;
            }
        } else {
            const int32_t full = kc & ~15;
            const mve_pred16_t pr = vctp8q((uint32_t)(kc - full));
            for (ky = 0; ky < p->k_h; ++ky) {
                for (j = 0; j < full; j += 16) {
                    vstrbq_s8(d + j, vldrbq_s8(src + j));
                }
                if (full < kc) {
                    vstrbq_p_s8(d + full, vldrbq_z_s8(src + full, pr), pr);
                }
                src += rstep;
                d += kc;
            }
        }
        return buf;
    }
    if (p->dil_w == 1 && kc <= 16) {
        /* rows of at most 16 bytes, inside or not: per row one predicated store of zero points
         * and / or one predicated copy of its inside columns [q0, q1) */
        const int32_t q0 = ix0 < 0 ? -ix0 : 0, q1 = ix0 + p->k_w > p->in_w ? p->in_w - ix0 : p->k_w;
        const mve_pred16_t pall = vctp8q((uint32_t)kc), pin = vctp8q((uint32_t)((q1 - q0) * p->in_c));
        const int8x16_t zp = vdupq_n_s8((int8_t)(-p->in_offset));
        const int partial = q0 > 0 || q1 < p->k_w;
        int8_t *d = buf;
        int32_t ky;
        if (q1 > q0) {
            for (ky = 0; ky < p->k_h; ++ky, d += kc) {
                const int32_t iy = iy0 + ky * p->dil_h;
                if (iy < 0 || iy >= p->in_h || partial) {
                    vstrbq_p_s8(d, zp, pall);
                }
                if (iy >= 0 && iy < p->in_h) {
                    vstrbq_p_s8(d + q0 * p->in_c, vldrbq_z_s8(in_b + (iy * p->in_w + ix0 + q0) * p->in_c, pin), pin);
                }
            }
            return buf;
        }
    }
    if (p->dil_w == 1 && kc > 16 && kc <= TE_MVE_RUN &&
        !(iy0 >= 0 && iy0 + (p->k_h - 1) * p->dil_h < p->in_h && ix0 >= 0 && ix0 + p->k_w <= p->in_w)) {
        /* a border window, rows of at most TE_MVE_RUN bytes: per row the zero points and / or its
         * inside columns, 16 bytes a predicated store */
        const int32_t q0 = ix0 < 0 ? -ix0 : 0, q1 = ix0 + p->k_w > p->in_w ? p->in_w - ix0 : p->k_w;
        const int32_t nin = (q1 - q0) * p->in_c;
        const int8x16_t zp = vdupq_n_s8((int8_t)(-p->in_offset));
        const int partial = q0 > 0 || q1 < p->k_w;
        int8_t *d = buf;
        int32_t ky, j;
        if (q1 > q0) {
            for (ky = 0; ky < p->k_h; ++ky, d += kc) {
                const int32_t iy = iy0 + ky * p->dil_h;
                if (iy < 0 || iy >= p->in_h || partial) {
                    for (j = 0; j < kc; j += 16) {
                        vstrbq_p_s8(d + j, zp, vctp8q((uint32_t)(kc - j)));
                    }
                }
                if (iy >= 0 && iy < p->in_h) {
                    const int8_t *src = in_b + (iy * p->in_w + ix0 + q0) * p->in_c;
                    int8_t *o = d + q0 * p->in_c;
                    for (j = 0; j < nin; j += 16) {
                        const mve_pred16_t pr = vctp8q((uint32_t)(nin - j));
                        vstrbq_p_s8(o + j, vldrbq_z_s8(src + j, pr), pr);
                    }
                }
            }
            return buf;
        }
    }
    return te_mve_window(p, in_b, oy, ox, buf);
}

/* 1 when output pixel px's window is input pixel px itself (a 1x1 kernel, stride 1, no padding,
 * the same image size) */
static inline int te_mve_flat(const te_conv_params_t *p)
{
    return p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0 &&
           p->in_h == p->out_h && p->in_w == p->out_w;
}

/* {x0.w0, x1.w0, x0.w1, x1.w1}: `rows` runs of `run` bytes (rows > 1 only when run % 16 == 0),
 * the inputs' runs `xs` bytes apart, each channel's weight rows contiguous (w0, w1).  Per run a
 * tail-predicated low-overhead loop (WLSTP / LETP: the last run % 16 bytes are predicated by the
 * hardware), 64 MACs in 9 instructions.  Inline assembly, as CMSIS-NN's own: GCC 12 compiles the
 * same loop from intrinsics to 14 instructions and spills the row loop's pointers. */
static inline int32x4_t te_mve_dot2x2(const int8_t *x0, const int8_t *x1, int32_t xs, const int8_t *w0,
                                      const int8_t *w1, int32_t run, int32_t rows)
{
    int32_t a00, a01, a10, a11;
    const int32_t skip = xs - run;
    int32x4_t sums = vdupq_n_s32(0);
    __asm__ volatile("   mov         %[a00], #0\n"
                     "   mov         %[a01], #0\n"
                     "   mov         %[a10], #0\n"
                     "   mov         %[a11], #0\n"
                     "3:\n"
                     "   wlstp.8     lr, %[run], 1f\n"
                     "2:\n"
                     "   vldrb.8     q0, [%[x0]], #16\n"
                     "   vldrb.8     q1, [%[x1]], #16\n"
                     "   vldrb.8     q2, [%[w0]], #16\n"
                     "   vmladava.s8 %[a00], q0, q2\n"
                     "   vmladava.s8 %[a01], q1, q2\n"
                     "   vldrb.8     q2, [%[w1]], #16\n"
                     "   vmladava.s8 %[a10], q0, q2\n"
                     "   vmladava.s8 %[a11], q1, q2\n"
                     "   letp        lr, 2b\n"
                     "1:\n"
                     "   add         %[x0], %[x0], %[skip]\n"
                     "   add         %[x1], %[x1], %[skip]\n"
                     "   subs        %[rows], %[rows], #1\n"
                     "   bne         3b\n"
                     : [x0] "+r"(x0), [x1] "+r"(x1), [w0] "+r"(w0), [w1] "+r"(w1), [rows] "+r"(rows),
                       [a00] "=&Te"(a00), [a01] "=&Te"(a01), [a10] "=&Te"(a10), [a11] "=&Te"(a11)
                     : [run] "r"(run), [skip] "r"(skip)
                     : "q0", "q1", "q2", "memory", "r14", "cc");
    sums = vsetq_lane_s32(a00, sums, 0);
    sums = vsetq_lane_s32(a01, sums, 1);
    sums = vsetq_lane_s32(a10, sums, 2);
    return vsetq_lane_s32(a11, sums, 3);
}

/* whether output pixel px's receptive field lies inside the input (dil_w == 1) */
static inline int te_mve_inside(const te_conv_params_t *p, int32_t px)
{
    const int32_t iy0 = px / p->out_w * p->stride_h - p->pad_h;
    const int32_t ix0 = px % p->out_w * p->stride_w - p->pad_w;
    return iy0 >= 0 && iy0 + (p->k_h - 1) * p->dil_h < p->in_h && ix0 >= 0 && ix0 + p->k_w <= p->in_w;
}

/* ---- small windows (k_h * k_w * in_c <= TE_MVE_SMALL: 1x1 on few channels, VWW's 8) ----
 * Output channels in the lanes: per window byte t one scalar load and, per 4 output channels, one
 * VMLA (vector by scalar) of the int32 weights of (t, those channels), from a table on the stack
 * (the weights transposed and widened once per 16 channels).  A 16-byte dot product would leave
 * most of its lanes idle on windows of 8 or 27 bytes. */
#define TE_MVE_SMALL 12 /* beyond, the 16-byte dot products cost less (VWW's 16- and 27-byte windows) */

#define TE_SM_RQ(Q, I)                                                                              \
    "vldrw.32     q4, [%[cfg], #(64+16*" #I ")]\n\t"                                              \
    "vldrw.32     q5, [%[cfg], #(128+16*" #I ")]\n\t"                                             \
    "vmov.i32     q7, #0\n\t"                                                                       \
    "vmax.s32     q6, q5, q7\n\t"                                                                   \
    "vmin.s32     q5, q5, q7\n\t"                                                                   \
    "vshl.s32     " Q ", " Q ", q6\n\t"                                                             \
    "vqrdmulh.s32 " Q ", " Q ", q4\n\t"                                                             \
    "vand         q6, " Q ", q5\n\t"                                                                \
    "vshr.s32     q6, q6, #31\n\t"                                                                  \
    "vqadd.s32    " Q ", " Q ", q6\n\t"                                                             \
    "vrshl.s32    " Q ", " Q ", q5\n\t"                                                             \
    "vadd.i32     " Q ", " Q ", %[oo]\n\t"

/* one output pixel x 16 (G = 4) or 8 (G = 2) output channels: n window bytes at x, the table wt
 * (n x 4G int32), sums from eb, requantized (te_mve_requant's sequence with each lane's
 * multiplier and shift), clamped and stored at y */
#define TE_SM_MAC4 "vldrw.32 q4, [%[wt]], #16\n\tvmla.s32 q0, q4, %[xs]\n\t"                             \
                   "vldrw.32 q4, [%[wt]], #16\n\tvmla.s32 q1, q4, %[xs]\n\t"                             \
                   "vldrw.32 q4, [%[wt]], #16\n\tvmla.s32 q2, q4, %[xs]\n\t"                             \
                   "vldrw.32 q4, [%[wt]], #16\n\tvmla.s32 q3, q4, %[xs]\n\t"
#define TE_SM_MAC2 "vldrw.32 q4, [%[wt]], #16\n\tvmla.s32 q0, q4, %[xs]\n\t"                             \
                   "vldrw.32 q4, [%[wt]], #16\n\tvmla.s32 q1, q4, %[xs]\n\t"
#define TE_SM_ASM(INIT, MAC, RQ, CLAMP)                                                              \
    __asm__ volatile(INIT                                                                           \
                     "   dls          lr, %[n]\n"                                                   \
                     "1:\n\t"                                                                       \
                     "   ldrsb        %[xs], [%[x]], #1\n\t"                                        \
                     MAC                                                                            \
                     "   le           lr, 1b\n\t"                                                   \
                     RQ CLAMP                                                                       \
                     : [x] "+r"(x), [wt] "+r"(w), [xs] "=&r"(xs)                                    \
                     : [n] "r"(n), [cfg] "r"(cfg), [oo] "r"(oo), [y] "l"(y)                          \
                     : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "memory", "r14")

static inline void te_mve_small_px(const int8_t *x, const int32_t *wt, int32_t n, int g4, const int32_t *cfg,
                                   int32_t oo, int8_t *y)
{
    const int32_t *w = wt;
    int32_t xs;
    if (g4) {
        TE_SM_ASM("vldrw.32 q0, [%[cfg]]\n\tvldrw.32 q1, [%[cfg], #16]\n\t"
                  "vldrw.32 q2, [%[cfg], #32]\n\tvldrw.32 q3, [%[cfg], #48]\n\t",
                  TE_SM_MAC4, TE_SM_RQ("q0", 0) TE_SM_RQ("q1", 1) TE_SM_RQ("q2", 2) TE_SM_RQ("q3", 3),
                  "vldrw.32 q7, [%[cfg], #208]\n\tvmax.s32 q0, q0, q7\n\tvmax.s32 q1, q1, q7\n\t"
                  "vmax.s32 q2, q2, q7\n\tvmax.s32 q3, q3, q7\n\t"
                  "vldrw.32 q7, [%[cfg], #224]\n\tvmin.s32 q0, q0, q7\n\tvmin.s32 q1, q1, q7\n\t"
                  "vmin.s32 q2, q2, q7\n\tvmin.s32 q3, q3, q7\n\t"
                  "vstrb.32 q0, [%[y]]\n\tvstrb.32 q1, [%[y], #4]\n\t"
                  "vstrb.32 q2, [%[y], #8]\n\tvstrb.32 q3, [%[y], #12]\n\t");
    } else {
        TE_SM_ASM("vldrw.32 q0, [%[cfg]]\n\tvldrw.32 q1, [%[cfg], #16]\n\t", TE_SM_MAC2,
                  TE_SM_RQ("q0", 0) TE_SM_RQ("q1", 1),
                  "vldrw.32 q7, [%[cfg], #208]\n\tvmax.s32 q0, q0, q7\n\tvmax.s32 q1, q1, q7\n\t"
                  "vldrw.32 q7, [%[cfg], #224]\n\tvmin.s32 q0, q0, q7\n\tvmin.s32 q1, q1, q7\n\t"
                  "vstrb.32 q0, [%[y]]\n\tvstrb.32 q1, [%[y], #4]\n\t");
    }
}

/* CONV_2D with windows of at most TE_MVE_SMALL bytes and out_c % 8 == 0: per 16 (or a last 8)
 * output channels the table, then every output pixel (its window in place for a 1x1 kernel inside
 * the input, else copied, te_mve_window) */
static __attribute__((noinline)) int te_mve_conv_small(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                                       int8_t *TE_RESTRICT out)
{
    int32_t wt[TE_MVE_SMALL * 16] __attribute__((aligned(8)));
    int32_t cfg[60] __attribute__((aligned(8))); /* per 16 channels: bias, multiplier, shift; out offset, min, max */
    int8_t buf[TE_MVE_SMALL];
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    const int32_t npix = p->out_h * p->out_w;
    const uint32x4_t rows4 = vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)n); /* 4 channels' weight rows */
    const int flat = te_mve_flat(p);
    int32_t b, px, ob, t, g;
    for (ob = 0; ob < p->out_c; ob += 16) {
        const int g4 = p->out_c - ob >= 16;
        const int32_t ng = g4 ? 4 : 2;
        for (t = 0; t < n; ++t) {
            for (g = 0; g < ng; ++g) {
                vstrwq_s32(wt + (t * ng + g) * 4,
                           vldrbq_gather_offset_s32(p->weights + (ob + 4 * g) * n + t, rows4));
            }
        }
        for (g = 0; g < ng; ++g) {
            vstrwq_s32(cfg + 4 * g, vldrwq_s32(p->eff_bias + ob + 4 * g));
            vstrwq_s32(cfg + 16 + 4 * g, vldrwq_s32(p->mult + ob + 4 * g));
            vstrwq_s32(cfg + 32 + 4 * g, vldrbq_s32(p->shift + ob + 4 * g));
        }
        vstrwq_s32(cfg + 52, vdupq_n_s32(p->act_min));
        vstrwq_s32(cfg + 56, vdupq_n_s32(p->act_max));
        for (b = 0; b < p->batches; ++b) {
            const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
            int8_t *out_b = out + b * npix * pitch + ob;
            for (px = 0; px < npix; ++px) {
                const int8_t *x = flat ? in_b + px * n : te_mve_window(p, in_b, px / p->out_w, px % p->out_w, buf);
                te_mve_small_px(x, wt, n, g4, cfg, p->out_offset, out_b + px * pitch);
            }
        }
    }
    return 1;
}

/* ---- windows of whole 16-byte groups (n % 16 == 0): two pixels, every pair of channels in one loop ----
 * The sums of two output pixels' windows (x0, x1: n contiguous bytes each, n % 16 == 0) with np
 * pairs of weight rows from w, in one inline-assembly loop: per pair the first 16-byte group
 * (two input loads, two weight loads, four VMLADAV: 64 MACs in 8 instructions), a low-overhead
 * loop of the others (the same with VMLADAVA, 9) and 9 instructions around them; each pair's four sums stored at acc as (x0, c), (x1, c),
 * (x0, c + 1), (x1, c + 1).  The requantization then runs over 4 channels a vector
 * (te_mve_conv_pairs), without per-pair gathers and scatters. */
static inline void te_mve_pairs(const int8_t *x0, const int8_t *x1, const int8_t *w, int32_t n, int32_t np,
                                int32_t *acc)
{
    const int8_t *w1 = w + n;
    __asm__ volatile("1:\n"
                     "   vldrb.8     q0, [%[x0]], #16\n"
                     "   vldrb.8     q1, [%[x1]], #16\n"
                     "   vldrb.8     q2, [%[w0]], #16\n"
                     "   vmladav.s8  r0, q0, q2\n"
                     "   vmladav.s8  r8, q1, q2\n"
                     "   vldrb.8     q2, [%[w1]], #16\n"
                     "   vmladav.s8  r10, q0, q2\n"
                     "   vmladav.s8  r12, q1, q2\n"
                     "   sub         lr, %[n], #16\n"
                     "   wlstp.8     lr, lr, 3f\n"
                     "2:\n"
                     "   vldrb.8     q0, [%[x0]], #16\n"
                     "   vldrb.8     q1, [%[x1]], #16\n"
                     "   vldrb.8     q2, [%[w0]], #16\n"
                     "   vmladava.s8 r0, q0, q2\n"
                     "   vmladava.s8 r8, q1, q2\n"
                     "   vldrb.8     q2, [%[w1]], #16\n"
                     "   vmladava.s8 r10, q0, q2\n"
                     "   vmladava.s8 r12, q1, q2\n"
                     "   letp        lr, 2b\n"
                     "3:\n"
                     "   sub         %[x0], %[x0], %[n]\n"
                     "   sub         %[x1], %[x1], %[n]\n"
                     "   mov         %[w0], %[w1]\n"
                     "   add         %[w1], %[w1], %[n]\n"
                     "   stmia       %[acc]!, {r0, r8, r10, r12}\n"
                     "   subs        %[np], %[np], #1\n"
                     "   bne         1b\n"
                     : [x0] "+r"(x0), [x1] "+r"(x1), [w0] "+r"(w), [w1] "+r"(w1), [acc] "+r"(acc), [np] "+r"(np)
                     : [n] "r"(n)
                     : "r0", "r8", "r10", "r12", "q0", "q1", "q2", "memory", "r14", "cc");
}

#define TE_MVE_PAIRS_MAX 256 /* output channels of te_mve_conv_pairs (the sums on the stack) */
#define TE_MVE_WPAD 3072     /* bytes of padded weight rows (n % 16 != 0) on the stack */

/* CONV_2D, out_c % 4 == 0 (<= TE_MVE_PAIRS_MAX; when n % 16 != 0 a kernel of more than one tap
 * and out_c x n rounded up to 16 <= TE_MVE_WPAD bytes): per two output pixels their windows
 * (in place for a 1x1 kernel inside the input, else copied: te_mve_window), te_mve_pairs over all
 * the channels, then the requantization 4 channels a vector (VLD2 splits the two pixels' sums) */
static __attribute__((noinline)) int te_mve_conv_pairs(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                                       int8_t *TE_RESTRICT out, int right)
{
    int8_t buf0[TE_MVE_WIN], buf1[TE_MVE_WIN];
    int32_t acc[2 * TE_MVE_PAIRS_MAX] __attribute__((aligned(8)));
    int8_t wpad[TE_MVE_WPAD] __attribute__((aligned(4)));
    const int32_t n = p->k_h * p->k_w * p->in_c, rs = (n + 15) & ~15;
    const int8_t *wts = p->weights;
    const int32_t *const ebs = p->eff_bias, *const mus = p->mult;
    const int8_t *const shs = p->shift;
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    const int32_t npix = p->out_h * p->out_w;
    const int32_t oc_n = p->out_c, oo = p->out_offset;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int flat = te_mve_flat(p);
    int32_t b, px, c;
    if (rs != n) {
        /* weight rows zero padded to whole 16-byte groups: the windows' bytes beyond n (copies,
         * never in place here) meet zero weights */
        te_mve_fill(wpad, vdupq_n_s8(0), oc_n * rs);
        for (c = 0; c < oc_n; ++c) {
            te_mve_copy(wpad + c * rs, p->weights + c * n, n);
        }
        wts = wpad;
    }
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = out + b * npix * pitch;
        for (px = 0; px < npix; px += 2) {
            const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
            const int8_t *x0 = flat ? in_b + px * n : te_mve_win2(p, in_b, px / p->out_w, px % p->out_w, buf0);
            const int8_t *x1 = flat ? in_b + px1 * n : te_mve_win2(p, in_b, px1 / p->out_w, px1 % p->out_w, buf1);
            int8_t *y0 = out_b + px * pitch, *y1 = out_b + px1 * pitch;
            te_mve_pairs(x0, x1, wts, rs, oc_n / 2, acc);
            if (right) {
                for (c = 0; c < oc_n; c += 4) {
                    const int32x4x2_t sums = vld2q_s32(acc + 2 * c);
                    const int32x4_t eb = vldrwq_s32(ebs + c), mult = vldrwq_s32(mus + c);
                    const int32x4_t shift = vldrbq_s32(shs + c);
                    vstrbq_s32(y0 + c, te_mve_requant_r(vaddq_s32(sums.val[0], eb), mult, shift, oo, lo, hi));
                    vstrbq_s32(y1 + c, te_mve_requant_r(vaddq_s32(sums.val[1], eb), mult, shift, oo, lo, hi));
                }
            } else {
                for (c = 0; c < oc_n; c += 4) {
                    const int32x4x2_t sums = vld2q_s32(acc + 2 * c);
                    const int32x4_t eb = vldrwq_s32(ebs + c), mult = vldrwq_s32(mus + c);
                    const int32x4_t shift = vldrbq_s32(shs + c);
                    vstrbq_s32(y0 + c, te_mve_requant(vaddq_s32(sums.val[0], eb), mult, shift, oo, lo, hi));
                    vstrbq_s32(y1 + c, te_mve_requant(vaddq_s32(sums.val[1], eb), mult, shift, oo, lo, hi));
                }
            }
        }
    }
    return 1;
}

/* two output pixels x two output channels a pass (the shapes the paths above do not take) */
static __attribute__((noinline)) int te_mve_conv_2x2(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                                     int8_t *TE_RESTRICT out)
{
    int8_t buf0[TE_MVE_WIN], buf1[TE_MVE_WIN];
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t pitch = p->out_pitch > 0 ? p->out_pitch : p->out_c;
    const int32_t npix = p->out_h * p->out_w;
    const int32_t oc_n = p->out_c;
    const int32_t oo = p->out_offset;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    const int32_t *const eb = p->eff_bias, *const mu = p->mult;
    const int8_t *const sh = p->shift, *const wts = p->weights;
    uint32x4_t pair = vdupq_n_u32(0); /* lane offsets 0, 0, 1, 1 */
    int right, direct;
    int32_t b, px, c;
    pair = vsetq_lane_u32(1u, pair, 2);
    pair = vsetq_lane_u32(1u, pair, 3);
    right = te_mve_right_only(p->shift, oc_n);
    /* kernel rows of whole 16-byte groups (or a 1x1 kernel) are read in place where the window is inside */
    direct = p->dil_w == 1 && (((p->k_w * p->in_c) & 15) == 0 || p->k_h == 1);
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = in + b * p->in_h * p->in_w * p->in_c;
        int8_t *out_b = out + b * npix * pitch;
        for (px = 0; px < npix; px += 2) {
            const int32_t px1 = px + 1 < npix ? px + 1 : px; /* an odd last pixel runs twice */
            const int8_t *x0, *x1;
            int32_t xs = 0, run = n, rows = 1;
            if (direct && te_mve_inside(p, px) && te_mve_inside(p, px1)) {
                /* both windows inside the input: their kernel rows read in place */
                x0 = in_b + ((px / p->out_w * p->stride_h - p->pad_h) * p->in_w + px % p->out_w * p->stride_w -
                             p->pad_w) * p->in_c;
                x1 = in_b + ((px1 / p->out_w * p->stride_h - p->pad_h) * p->in_w + px1 % p->out_w * p->stride_w -
                             p->pad_w) * p->in_c;
                xs = p->dil_h * p->in_w * p->in_c;
                run = p->k_w * p->in_c;
                rows = p->k_h;
            } else {
                x0 = te_mve_window(p, in_b, px / p->out_w, px % p->out_w, buf0);
                x1 = te_mve_window(p, in_b, px1 / p->out_w, px1 % p->out_w, buf1);
            }
            /* lanes: (px, c), (px1, c), (px, c1), (px1, c1) */
            const uint32_t d1 = (uint32_t)((px1 - px) * pitch);
            uint32x4_t dst = vdupq_n_u32(0);
            dst = vsetq_lane_u32(d1, dst, 1);
            dst = vsetq_lane_u32(1u, dst, 2);
            dst = vsetq_lane_u32(d1 + 1u, dst, 3);
            dst = vaddq_n_u32(dst, (uint32_t)(px * pitch));
            for (c = 0; c + 2 <= oc_n; c += 2) {
                /* the sums first (the assembly clobbers q0-q2), then bias, multiplier and shift of
                 * (c, c, c + 1, c + 1): one gather each */
                const int32x4_t sums = te_mve_dot2x2(x0, x1, xs, wts + c * n, wts + (c + 1) * n, run, rows);
                const int32x4_t acc = vaddq_s32(vldrwq_gather_shifted_offset_s32(eb + c, pair), sums);
                const int32x4_t mult = vldrwq_gather_shifted_offset_s32(mu + c, pair);
                const int32x4_t shift = vldrbq_gather_offset_s32(sh + c, pair);
                vstrbq_scatter_offset_s32(out_b + c, dst, right ? te_mve_requant_r(acc, mult, shift, oo, lo, hi)
                                                               : te_mve_requant(acc, mult, shift, oo, lo, hi));
            }
            if (c < oc_n) {
                /* an odd last channel in both lane pairs; only the first pair is stored */
                const uint32x4_t same = vdupq_n_u32(0);
                const int32x4_t sums = te_mve_dot2x2(x0, x1, xs, wts + c * n, wts + c * n, run, rows);
                const int32x4_t acc = vaddq_s32(vldrwq_gather_shifted_offset_s32(eb + c, same), sums);
                const int32x4_t mult = vldrwq_gather_shifted_offset_s32(mu + c, same);
                const int32x4_t shift = vldrbq_gather_offset_s32(sh + c, same);
                vstrbq_scatter_offset_p_s32(out_b + c, dst, te_mve_requant(acc, mult, shift, oo, lo, hi), vctp32q(2));
            }
        }
    }
    return 1;
}

int te_mve_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out)
{
    /* each path a function of its own: only its buffers on the stack */
    const int32_t n = p->k_h * p->k_w * p->in_c;
    const int32_t oc_n = p->out_c;
    if (n > TE_MVE_WIN || oc_n < 2) {
        return 0;
    }
    if (n <= TE_MVE_SMALL && (oc_n & 7) == 0) {
        return te_mve_conv_small(p, in, out);
    }
    /* windows copied per pixel (kernel rows longer than TE_MVE_RUN bytes: te_mve_window) cost more
     * than the old path's in-place rows (whole 16-byte groups) below 32 channels; windows of other
     * sizes the old path copies too (but a 1x1 one is read in
     * place there, where the padded groups would read past it) */
    if ((oc_n & 3) == 0 && oc_n <= TE_MVE_PAIRS_MAX &&
        ((n & 15) == 0 ? te_mve_flat(p) || oc_n >= 32 || p->k_w * p->in_c <= TE_MVE_RUN ||
                             !(p->dil_w == 1 && ((p->k_w * p->in_c) & 15) == 0)
                       : p->k_h * p->k_w > 1 && oc_n * ((n + 15) & ~15) <= TE_MVE_WPAD)) {
        return te_mve_conv_pairs(p, in, out, te_mve_right_only(p->shift, oc_n));
    }
    return te_mve_conv_2x2(p, in, out);
}

#else
typedef int te_mve_conv_unused; /* no MVE: nothing here (ISO C wants a declaration) */
#endif
