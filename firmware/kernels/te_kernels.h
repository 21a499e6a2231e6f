/* tinyedge firmware: the int8 kernels of the ahead-of-time (aot) runtime.
 *
 * Arithmetic follows the TFLite int8 quantization specification and the
 * TFLite Micro reference kernels bit for bit: int32 accumulation, per-channel
 * requantization with a Q31 multiplier and a power-of-two shift (computed on
 * the host at generation time), TFLite's "double rounding"
 * MultiplyByQuantizedMultiplier, and the fused activation as an output clamp.
 * Input-offset x weight-sum terms are folded into an effective bias on the
 * host, so interior windows run a plain int8 dot product.
 *
 * Portable C99, no heap, no libc beyond stdint/string.
 */
#ifndef TE_KERNELS_H
#define TE_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define TE_ALIGNED(n) __attribute__((aligned(n)))
#define TE_RESTRICT __restrict__
#define TE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#elif defined(_MSC_VER)
#define TE_ALIGNED(n) __declspec(align(n))
#define TE_RESTRICT __restrict
#define TE_UNLIKELY(x) (x)
#else
#define TE_ALIGNED(n)
#define TE_RESTRICT
#define TE_UNLIKELY(x) (x)
#endif

/* ---- fixed-point helpers (TFLite / gemmlowp semantics) ---------------- */

/* SaturatingRoundingDoublingHighMul */
static inline int32_t te_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (int64_t)(1 << 30) : (int64_t)(1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* RoundingDivideByPOT, exponent in 0..31 */
static inline int32_t te_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier (double rounding), shift > 0 is a left shift */
static inline int32_t te_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return te_rdbpot(te_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* te_mbqm for a positive multiplier (always true for requantization), in fewer
 * instructions: with b > 0 the saturating case of SRDHM cannot occur, and
 * TFLite's sign-dependent nudge with truncating division equals
 * floor((a * b + 2^30) / 2^31) -- one SMLAL and a shift on Cortex-M. */
static inline int32_t te_mbqm_pos(int32_t x, int32_t multiplier, int32_t shift)
{
    int32_t v, e, mask, rem, thr;
    if (TE_UNLIKELY(shift > 0)) {
        x = (int32_t)((uint32_t)x << shift);
        e = 0;
    } else {
        e = -shift;
    }
    v = (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << 30)) >> 31);
    /* RoundingDivideByPOT without branches (e == 0 leaves v unchanged) */
    mask = (int32_t)(((uint32_t)1 << e) - 1u);
    rem = v & mask;
    thr = (mask >> 1) + (int32_t)((uint32_t)v >> 31);
    return (v >> e) + (rem > thr ? 1 : 0);
}

static inline int8_t te_clamp8(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* ---- op parameters (filled by the generator as const tables) ------------ */

/* Sizes and offsets in 16 bits where the Cortex-M DSP kernels read them (the generator rejects a
 * convolution or pool with a size above 65535): 64 bytes a conv layer instead of 104.  Elsewhere
 * (Helium, RISC-V, the host) 32 bits: there GCC's conv loops ran 0.2-0.4% more instructions on
 * 16-bit fields, signed or not.  The kernels compute in int32_t either way. */
#if defined(__ARM_FEATURE_DSP) && !defined(__ARM_FEATURE_MVE)
typedef uint16_t te_dim_t;
typedef int16_t te_off_t;
#else
typedef int32_t te_dim_t;
typedef int32_t te_off_t;
#endif

typedef struct {
    te_dim_t batches;
    te_dim_t in_h, in_w, in_c;
    te_dim_t out_h, out_w, out_c;
    te_dim_t k_h, k_w;
    te_dim_t stride_h, stride_w;
    te_dim_t dil_h, dil_w;
    te_dim_t pad_h, pad_w;       /* top / left padding */
    te_dim_t depth_mult;         /* depthwise only */
    te_off_t in_offset;          /* -input zero point */
    te_off_t out_offset;         /* output zero point */
    te_off_t act_min, act_max;
    const int8_t *weights;       /* conv: [out_c][k_h][k_w][in_c]; depthwise: [k_h][k_w][out_c] */
    const int32_t *bias;         /* model bias (0 when absent) */
    const int32_t *eff_bias;     /* bias + in_offset * sum(weights of the channel) */
    const int32_t *mult;         /* per output channel */
    const int8_t *shift;         /* per output channel, -31..30 */
    te_dim_t out_pitch;          /* conv: output channels between two output pixels (0: out_c) */
} te_conv_params_t;

typedef struct {
    int32_t batches, in_n, out_n;
    int32_t out_offset, act_min, act_max;
    const int8_t *weights;       /* [out_n][in_n] */
    const int32_t *eff_bias;     /* bias + in_offset * row sum */
    const int32_t *mult;         /* per output, or one value when per_channel == 0 */
    const int8_t *shift;
    int32_t per_channel;
} te_fc_params_t;

typedef struct {                 /* sizes as te_conv_params_t's */
    te_dim_t batches, in_h, in_w, c, out_h, out_w;
    te_dim_t k_h, k_w, stride_h, stride_w, pad_h, pad_w;
    te_off_t act_min, act_max;
} te_pool_params_t;

typedef struct {
    int32_t size;                /* elements of the output when no broadcast */
    int32_t broadcast;           /* 0: same shapes (flat loop), 1: 4-D broadcast */
    int32_t out_dims[4];
    int32_t in1_strides[4], in2_strides[4];  /* element strides, 0 on broadcast dims */
    int32_t in1_offset, in2_offset, out_offset;
    int32_t left_shift;          /* ADD only */
    int32_t in1_mult, in1_shift, in2_mult, in2_shift;  /* ADD only */
    int32_t out_mult, out_shift;
    int32_t act_min, act_max;
} te_binary_params_t;

typedef struct {
    int32_t outer, depth;
    int32_t exp_len;             /* entries stored (1..256): an index at or past it reads 0 */
    const int32_t *exp_table;    /* [exp_len]: exp(diff) in Q0.31 for diff = -index, 0 below diff_min */
} te_softmax_params_t;

typedef struct {
    int32_t dims[4];             /* input dims, padded to 4-D at the front */
    int32_t before[4], after[4];
    int8_t pad_value;
} te_pad_params_t;

typedef struct {
    int32_t out_dims[4];         /* kept dims (1 on reduced axes), input rank padded to 4 */
    int32_t red_dims[4];         /* reduced dims (1 on kept axes) */
    int32_t strides[4];          /* input element strides */
    int32_t count;               /* elements reduced per output */
    int32_t in_zp, out_zp;
    int32_t mult, shift;         /* in_scale / out_scale / count, as TFLite Micro computes it */
} te_mean_params_t;

/* ---- compact weight storage (decoded exactly to int8 before use) --------- */

/* A constant weight tensor stored compactly, as the generator chose per tensor.  Its dense
 * layout is [rows][row_len] (rows = output channels); depthwise weights ([taps][out_c]) are
 * stored channel by channel and decoded transposed.  Every row is coded or, when coding it
 * would not save bytes, stored as plain int8.  Rows lie back to back in `data`:
 *  - TE_W_PALETTE: `bits` (4 or 2) per weight, indices into a table of 2^bits int8 values,
 *    packed low bits first (weight j of a row in byte j * bits / 8), rows padded to a byte;
 *    a table per coded row (in row order) or one for the tensor (shared_table); row_mode: one
 *    bit per row (bit r % 8 of byte r / 8): 1 coded, 0 plain int8.
 *  - TE_W_INT4: two weights per byte, low nibble first (CMSIS-NN s4 layout), value
 *    q * step with q the signed nibble (-8..7).  shared_table: table[0] is the step of every
 *    row and the rows are one stream of nibbles (weight j of row r at nibble r * row_len + j);
 *    else `table` holds the per-row step (0: the row is plain int8) and rows start on a byte.
 *  - TE_W_SPARSE: row_mode holds 2 bits per row (bits 2 * (r % 4) of byte r / 4):
 *    TE_SP_PLAIN the row's int8 bytes; TE_SP_MASK a bit mask of row_len bits (bit j of byte
 *    j / 8, low bit first: weight j is non-zero), then the non-zero values in order;
 *    TE_SP_LIST per 256 weights of the row a count c, the c indices (within those 256) and
 *    the c values, the smaller where few weights are non-zero. */
#define TE_W_PALETTE 1
#define TE_W_INT4 2
#define TE_W_SPARSE 3
#define TE_SP_PLAIN 0
#define TE_SP_MASK 1
#define TE_SP_LIST 2

typedef struct te_weights te_weights_t;

struct te_weights {
    int32_t kind;
    int32_t rows, row_len;
    int32_t bits;                /* palette: 4 or 2 */
    int32_t shared_table;        /* palette: 1 when one table serves every row */
    int32_t transposed;          /* 1: element j of row r decodes to out[j * rows + r] */
    const uint8_t *data;
    const uint8_t *row_mode;     /* palette: 1 bit per row; sparse: 2 bits per row */
    const int8_t *table;         /* palette tables, or int4 steps */
    /* the decoders of this storage (te_decode_<storage>[_wide]), set by the generator so that
     * only the decoders a model uses are linked; decode_wide may be NULL */
    void (*decode)(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out);
    void (*decode_wide)(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out);
};

/* rows [r0, r1) of `w` as dense int8 into out ([r1 - r0][row_len]; transposed: r0 == 0 and
 * r1 == rows, out is [row_len][rows]) */
void te_weights_decode(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out);
void te_decode_palette(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out);
void te_decode_int4(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out);
void te_decode_sparse(const te_weights_t *w, int32_t r0, int32_t r1, int8_t *TE_RESTRICT out);
/* rows [r0, r1) (not transposed, row_len % 4 == 0) as 16-bit lanes: per 4 weights w0..w3 the
 * words (w0 | w2 << 16) and (w1 | w3 << 16); out holds (r1 - r0) * row_len / 2 words */
void te_decode_palette_wide(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out);
void te_decode_int4_wide(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out);
void te_decode_sparse_wide(const te_weights_t *w, int32_t r0, int32_t r1, uint32_t *TE_RESTRICT out);

/* ---- kernels ------------------------------------------------------------ */

void te_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* CONV_2D on weights the generator re-ordered (tinyedge.aot.codegen._conv_paired: channels in
 * pairs, the window zero padded to a multiple of 4 bytes, per 16-bit lane channel c's weight in
 * the low byte and channel c + 1's, minus 1 when the first is negative, in the high byte), for
 * windows of at most 576 bytes (128 when in_c % 4 != 0): 2 pixels x 2 channels x 4 bytes in 13
 * instructions on Cortex-M DSP cores.  p->eff_bias points at the per-pair constants (a te_conv.c
 * te_pair_head_t each: int32 folded biases, int32 multipliers, int8 shifts, 2 bytes padding);
 * p->bias, p->mult and p->shift are not read (NULL). */
void te_conv2d_s8_paired(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* the same when every shift is negative and the clamp is the whole int8 range (the generator picks
 * it then; only the variant a model uses is linked) */
void te_conv2d_s8_paired_fast(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* te_conv2d_s8_paired_fast with 16-byte per-pair constants (the shifts packed into the second folded
 * bias: te_conv.c), when every second channel's folded bias is small enough (the generator checks) */
void te_conv2d_s8_paired_fast_packed(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* DEPTHWISE_CONV_2D, depth multiplier 1, out_c % 4 == 0 (4..1024), at most 25 taps, on weights the
 * generator grouped as [out_c / 4][taps][4] (tinyedge.aot.codegen._dw_g4), which also proves every
 * accumulator below 2^30; p->bias is not read (may be NULL). */
void te_depthwise_conv2d_s8_g4(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* the same when every shift is negative and the clamp is the whole int8 range (the generator picks
 * it then; only the variant a model uses is linked) */
void te_depthwise_conv2d_s8_g4_fast(const te_conv_params_t *p, const int8_t *TE_RESTRICT in,
                                    int8_t *TE_RESTRICT out);
/* the same for 9-tap kernels (3x3): the loop for other tap counts not linked */
void te_depthwise_conv2d_s8_g4_fast9(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_depthwise_conv2d_s8(const te_conv_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_fully_connected_s8(const te_fc_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* FULLY_CONNECTED on weights the generator re-ordered (tinyedge.aot.codegen._fc_paired: rows and
 * inputs zero padded to multiples of 4, in_n <= 1024, rows in groups of 4 as two pairs, each pair's first weight + 128 in the low
 * byte of a 16-bit lane and the second's in the high byte): 16 MACs in 16 instructions on Cortex-M
 * DSP cores (SMLAD on the raw word and on its UXTB16); p->weights is that layout. */
void te_fully_connected_s8_paired(const te_fc_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* FULLY_CONNECTED, plain layout, compiled for size (the generator's choice for layers of at most
 * 4096 MACs on DSP cores) */
void te_fully_connected_s8_small(const te_fc_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_avg_pool_s8(const te_pool_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_avg_pool_s8_global(const te_pool_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_max_pool_s8(const te_pool_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_add_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_add_s8_flat(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_mul_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_mean_s8(const te_mean_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_softmax_s8(const te_softmax_params_t *p, const int8_t *in, int8_t *out);
/* out[i] = table[in[i] + 128]; in-place is allowed */
void te_lut_s8(const int8_t *table, const int8_t *in, int8_t *out, int32_t n);
void te_pad_s8(const te_pad_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* Concatenate `n_in` tensors along an axis: each input contributes
 * `copy[i]` bytes per outer step; `outer` steps. */
void te_concat_s8(int32_t n_in, const int8_t *const *ins, const int32_t *copy, int32_t outer, int8_t *out);
/* The same ops with compactly stored weights: the weights of `block` output channels at a
 * time are decoded into `scratch` (block x row_len bytes, in the arena, free during the op) and
 * used for every output pixel; p->weights is not read. */
void te_conv2d_s8_w(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                    const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* CONV_2D on weights decoded `block` output channels at a time into 16-bit lanes
 * (w->decode_wide, row_len % 4 == 0) in `scratch` (2 x block x row_len bytes, 4-byte aligned):
 * the inner loop then multiplies without widening the weights, 16 MACs in 12 instructions on
 * Cortex-M4 against 16 for int8 weights; p->bias is not read (may be NULL).  Paired on
 * Cortex-M DSP cores when the window is at most 576 bytes (128 when in_c % 4 != 0) and
 * out_c >= 2, else (and without DSP) a plain C loop over the lanes. */
void te_conv2d_s8_wide(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                       const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_depthwise_conv2d_s8_w(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch,
                              const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_fully_connected_s8_w(const te_fc_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                             const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* CONV_2D / FULLY_CONNECTED on TE_W_SPARSE weights, skipping the zeros.  The conv builds, for
 * `block` output channels at a time, lists of (index, weight) of the non-zeros in `scratch`
 * (two zero-point padded kernel windows of row_len bytes, unless the conv is 1x1 without padding,
 * then 4 * (1 + non-zeros) bytes per channel), and runs two output pixels per pass; FC walks
 * each row's bit mask once. */
void te_conv2d_s8_sparse(const te_conv_params_t *p, const te_weights_t *w, int8_t *scratch, int32_t block,
                         const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_fully_connected_s8_sparse(const te_fc_params_t *p, const te_weights_t *w, const int8_t *TE_RESTRICT in,
                                  int8_t *TE_RESTRICT out);
/* FULLY_CONNECTED on TE_W_PALETTE / TE_W_INT4 weights, each weight decoded where it is used
 * (a weight is used once per batch, so there is nothing to amortise a decode over): about 3.4
 * instructions per weight on Cortex-M4 against 1.4 dense, no scratch. */
void te_fully_connected_s8_pal(const te_fc_params_t *p, const te_weights_t *w, const int8_t *TE_RESTRICT in,
                               int8_t *TE_RESTRICT out);
/* copy n bytes (RESHAPE whose buffers could not be shared) */
void te_copy_s8(const int8_t *in, int8_t *out, int32_t n);

/* ---- layout, resize, math and transposed-convolution ops (te_shape.c, te_resize.c, te_math.c,
 * te_transpose_conv.c) ---------------------------------------------------------------------- */

#define TE_STRIDED_MAX_DIMS 8

/* out (contiguous, dims[0] outermost) = in[start + sum_d i_d * strides[d]]: TRANSPOSE, SLICE,
 * STRIDED_SLICE (negative strides too) and TILE (a repeat is a dim of stride 0) */
typedef struct {
    int32_t rank;                /* 1..TE_STRIDED_MAX_DIMS */
    int32_t dims[TE_STRIDED_MAX_DIMS];
    int32_t strides[TE_STRIDED_MAX_DIMS];   /* input elements per step of each output dim */
    int32_t start;
} te_strided_params_t;

typedef struct {
    int32_t outer, axis_size, inner;   /* the input as [outer][axis_size][inner] */
    int32_t n_idx;                     /* output: [outer][n_idx][inner] */
    const int32_t *idx;                /* constant indices, 0 <= idx < axis_size */
} te_gather_params_t;

/* RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR: the source rows / columns (and, bilinear, the 10-bit
 * fractions of the upper neighbour) of every output row and column, computed at generation time */
typedef struct {
    int32_t batches, in_h, in_w, c, out_h, out_w;
    const int32_t *y0, *y1, *x0, *x1;  /* nearest: y0 / x0 only */
    const int32_t *fy, *fx;            /* bilinear: weight of y1 / x1 in 1/1024 */
} te_resize_params_t;

/* TRANSPOSE_CONV and grouped CONV_2D (per-channel requantization as te_conv_params_t; the
 * transposed conv's weights are [out_c][k_h][k_w][in_c], the grouped conv's
 * [out_c][k_h][k_w][in_c / groups]) */
typedef struct {
    te_conv_params_t conv;
    int32_t groups;              /* grouped conv: input channel groups (transposed conv: 1) */
    const int32_t *tap_sums;     /* [out_c][k_h][k_w]: sum of the weights of a tap over its input channels */
} te_conv_ext_params_t;

void te_strided_copy_s8(const te_strided_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* SPLIT / SPLIT_V / UNPACK, the mirror of te_concat_s8: output i takes copy[i] bytes per outer
 * step (the output pointers are arena addresses, const only in the table's type) */
void te_split_s8(int32_t n_out, const int8_t *const *outs, const int32_t *copy, int32_t outer, const int8_t *in);
void te_gather_s8(const te_gather_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_resize_nearest_s8(const te_resize_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_resize_bilinear_s8(const te_resize_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* te_binary_params_t as ADD; SQUARED_DIFFERENCE: left_shift 7, out_mult / out_shift the squared
 * rescale; PRELU: in2 is alpha, out_mult / out_shift for x >= 0, in1_mult / in1_shift for x < 0;
 * MAXIMUM / MINIMUM compare the raw values (equal quantization) */
void te_sub_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_squared_difference_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_prelu_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_maximum_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void te_minimum_s8(const te_binary_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
/* REDUCE_MAX over the axes of a te_mean_params_t (equal quantization: no rescale) */
void te_reduce_max_s8(const te_mean_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
/* L2_NORMALIZATION over the innermost `depth` values (output scale 1/128, zero point 0) */
void te_l2norm_s8(int32_t outer, int32_t depth, int32_t in_zp, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_transpose_conv_s8(const te_conv_ext_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);
void te_conv2d_grouped_s8(const te_conv_ext_params_t *p, const int8_t *TE_RESTRICT in, int8_t *TE_RESTRICT out);

/* GATHER of run-time indices (int32, or int64 with idx_bytes 8; p->idx unused) */
void te_gather_dyn_s8(const te_gather_params_t *p, const int8_t *TE_RESTRICT in, const int8_t *idx,
                      int32_t idx_bytes, int8_t *TE_RESTRICT out);
/* QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32 (the float side as bytes in the arena) */
void te_quantize_f32_s8(const int8_t *in, int8_t *out, int32_t n, float scale, int32_t zp);
void te_dequantize_s8_f32(const int8_t *in, int8_t *out, int32_t n, float scale, int32_t zp);

/* ---- BATCH_MATMUL and ARG_MAX (te_matmul.c) ----------------------------- */

/* out[b][m][n] = sat8(rq(sum_k (lhs[b][m][k] - lhs_zp) (rhs[b][k][n] - rhs_zp)) + out_offset);
 * the batch strides are 0 where an operand broadcasts.  lhs_transpose: lhs is stored [k][m]
 * (adj_x); rhs_transpose: rhs is stored [k][n] (not adj_y) and is transposed into the scratch
 * (else it is stored [n][k]).  scratch: 4 * cols bytes, + cols * depth (rhs_transpose, rounded
 * up to 4) + rows * depth (lhs_transpose). */
typedef struct {
    int32_t batch[3];
    int32_t lhs_bstride[3], rhs_bstride[3];
    int32_t rows, cols, depth;
    int32_t lhs_transpose, rhs_transpose;
    int32_t lhs_zp, rhs_zp, out_offset;
    int32_t out_mult, out_shift;
} te_batch_matmul_params_t;

void te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs, const int8_t *rhs, int8_t *out,
                        int8_t *scratch);
/* ARG_MAX over the middle axis of [outer][axis_size][inner]; out: int32 (out_bytes 4) or int64 (8) */
void te_arg_max_s8(int32_t outer, int32_t axis_size, int32_t inner, const int8_t *TE_RESTRICT in, int8_t *out,
                   int32_t out_bytes);

/* ---- recurrent layers (te_recurrent.c) ---------------------------------- */

/* UNIDIRECTIONAL_SEQUENCE_LSTM, int8 x int8 -> int16 cell, as TFLite Micro's integer LSTM.
 * Gates in the order input, forget, cell, output; per gate the input FC (effective bias: bias -
 * input zero point x row sums) and the recurrent FC (no bias: - hidden zero point x row sums),
 * each requantized to int16 Q3.12. */
typedef struct {
    int32_t batches, steps, in_n, units;
    int32_t in_step_t, in_step_b;    /* input elements between two time steps / two batches */
    int32_t out_step_t, out_step_b;  /* the same for the output */
    const int8_t *w_in;              /* [4][units][in_n] */
    const int8_t *w_rec;             /* [4][units][units] */
    const int32_t *b_in;             /* [4][units] */
    const int32_t *b_rec;            /* [4][units] */
    int32_t in_mult[4], in_shift[4];
    int32_t rec_mult[4], rec_shift[4];
    int32_t fc_mult, fc_shift;       /* forget gate x cell -> cell */
    int32_t ic_mult, ic_shift;       /* input gate x cell gate -> cell */
    int32_t oh_mult, oh_shift, h_zp; /* tanh(cell) x output gate -> hidden (int8) */
    int32_t cell_clip;               /* quantized clip of the cell state; -1: none */
    int32_t tanh_mult, tanh_shift;   /* the cell state to the tanh input scale */
    int32_t cell_gate_sigmoid;       /* 1: the cell gate activation is sigmoid, 0: tanh */
    const uint16_t *sigmoid_table;   /* [256]: sigmoid(k / 24) in 0.16 */
} te_lstm_params_t;

/* hidden: [batches][units] int8, cell: [batches][units] int16 (the variable tensors, kept across
 * invokes); scratch: 4 x units int16 */
void te_lstm_s8(const te_lstm_params_t *p, const int8_t *in, int8_t *hidden, int16_t *cell, int16_t *scratch,
                int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_KERNELS_H */
