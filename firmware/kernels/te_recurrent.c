/* tinyedge firmware: recurrent layers (aot runtime; API in te_kernels.h).
 *
 * UNIDIRECTIONAL_SEQUENCE_LSTM, int8 activations and weights, int16 cell state, as TFLite
 * Micro's integer LSTM computes it (bit for bit):
 *  - each gate is FC(x) + FC(h): two int8 x int8 products, each requantized on its own to a
 *    symmetric int16 value of scale 2^-12 and saturated, then added with int16 saturation;
 *  - sigmoid / tanh on those Q3.12 values with the int16 interpolating approximations
 *    (a 256-entry table of sigmoid(k / 24) in 0.16, generated on the host);
 *  - cell = sat16(rq(f * cell) + rq(i * g)), clipped to +-cell_clip when the model has one;
 *  - hidden = rq(tanh(cell) * o) + zero point, saturated to int8; the output at each step is
 *    the new hidden state.
 * The hidden and cell state are the model's variable tensors: they live in the arena, are set
 * to their zero points by init and carry over from one invoke to the next (as in TFLite Micro,
 * which resets them only on an explicit reset).
 */
#include "te_kernel_helpers.h"

static inline int16_t te_sat16(int32_t v)
{
    return (int16_t)(v < -32768 ? -32768 : (v > 32767 ? 32767 : v));
}

/* sigmoid of a Q3.12 value, Q0.15 result */
static inline int16_t te_sigmoid16(const uint16_t *table, int32_t x)
{
    const int32_t v = x * 3;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t uh = a >> 9;
    uint32_t r;
    if (uh >= 255u) {
        r = 0x7FFFu << 10;
    } else {
        const uint32_t ua = table[uh];
        const uint32_t ub = table[uh + 1u];
        r = (ua << 9) + (a & 0x1FFu) * (ub - ua);
    }
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int16_t)(int32_t)(r >> 10);
}

/* tanh of x * mult / 2^shift (rounded) taken as Q3.12 (the caller's scaling), Q0.15 result */
static inline int16_t te_tanh16(const uint16_t *table, int32_t x, int32_t mult, int32_t shift)
{
    const int32_t rnd = shift > 0 ? (1 << (shift - 1)) : 0;
    const int32_t v = (x * mult + rnd) >> shift;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t uh = a >> 8;
    int32_t r;
    if (uh >= 255u) {
        r = 0xFFFF << 8;
    } else {
        const uint32_t ua = table[uh];
        const uint32_t ub = table[uh + 1u];
        r = (int32_t)((ua << 8) + (a & 0xFFu) * (ub - ua));
    }
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(r >> 8);
}

/* out[r] (+)= sat16(rq(bias[r] + w[r] . x)) for `rows` rows of n weights; the dot products run
 * four rows per input load (SMLAD on Cortex-M with DSP) */
static void te_gate_fc(const int8_t *TE_RESTRICT x, int32_t n, const int8_t *TE_RESTRICT w,
                       const int32_t *bias, int32_t rows, int32_t mult, int32_t shift, int16_t *out, int add)
{
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        int32_t a[4];
        int32_t j;
        for (j = 0; j < 4; ++j) {
            a[j] = bias[r + j];
        }
        te_dot4(x, w + r * n, n, n, a);
        for (j = 0; j < 4; ++j) {
            const int16_t v = te_sat16(te_mbqm_pos(a[j], mult, shift));
            out[r + j] = add ? te_sat16((int32_t)out[r + j] + v) : v;
        }
    }
    for (; r < rows; ++r) {
        const int16_t v = te_sat16(te_mbqm_pos(bias[r] + te_dot(x, w + r * n, n), mult, shift));
        out[r] = add ? te_sat16((int32_t)out[r] + v) : v;
    }
}

void te_lstm_s8(const te_lstm_params_t *p, const int8_t *in, int8_t *hidden, int16_t *cell, int16_t *scratch,
                int8_t *out)
{
    const int32_t n_in = p->in_n, u = p->units;
    int32_t b, t, g, j;
    for (b = 0; b < p->batches; ++b) {
        int8_t *h = hidden + b * u;
        int16_t *c = cell + b * u;
        for (t = 0; t < p->steps; ++t) {
            const int8_t *x = in + t * p->in_step_t + b * p->in_step_b;
            int8_t *y = out + t * p->out_step_t + b * p->out_step_b;
            /* gates i, f, c, o: FC(x), then + FC(h) with the hidden state of the previous step */
            for (g = 0; g < 4; ++g) {
                int16_t *gate = scratch + g * u;
                te_gate_fc(x, n_in, p->w_in + g * u * n_in, p->b_in + g * u, u, p->in_mult[g], p->in_shift[g],
                           gate, 0);
                te_gate_fc(h, u, p->w_rec + g * u * u, p->b_rec + g * u, u, p->rec_mult[g], p->rec_shift[g],
                           gate, 1);
                for (j = 0; j < u; ++j) {
                    gate[j] = (g == 2 && !p->cell_gate_sigmoid) ? te_tanh16(p->sigmoid_table, gate[j], 3, 0)
                                                                : te_sigmoid16(p->sigmoid_table, gate[j]);
                }
            }
            for (j = 0; j < u; ++j) {
                const int32_t ig = scratch[j], fg = scratch[u + j], cg = scratch[2 * u + j], og = scratch[3 * u + j];
                int32_t cv = te_sat16(te_mbqm_pos(fg * (int32_t)c[j], p->fc_mult, p->fc_shift));
                const int32_t ic = te_sat16(te_mbqm_pos(ig * cg, p->ic_mult, p->ic_shift));
                int32_t th, hv;
                cv = te_sat16(cv + ic);
                if (p->cell_clip >= 0) {
                    cv = cv > p->cell_clip ? p->cell_clip : (cv < -p->cell_clip ? -p->cell_clip : cv);
                }
                c[j] = (int16_t)cv;
                th = te_tanh16(p->sigmoid_table, cv, p->tanh_mult, p->tanh_shift);
                hv = te_mbqm_pos(th * og, p->oh_mult, p->oh_shift) + p->h_zp;
                h[j] = te_clamp8(hv, -128, 127);
            }
            memcpy(y, h, (size_t)u);
        }
    }
}
