"""Host-side quantization math of the aot engine, matching TFLite / TFLite Micro exactly.

Multipliers and shifts are computed here once, at generation time, the way
TFLite's `QuantizeMultiplier` does (frexp, round half away from zero, Q31).
The fixed-point helpers reproduce gemmlowp's integer semantics on Python
ints so that lookup tables (softmax exp, elementwise ops) computed here are
bit-exact by construction.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def round_away(x: float) -> int:
    """std::round: halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(d: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: d ~= m * 2^(shift - 31), m in [2^30, 2^31)."""
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = round_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return int(q_fixed), int(shift)


def quantize_multiplier_gt_one(d: float) -> tuple[int, int]:
    m, shift = quantize_multiplier(d)
    assert shift >= 0, d
    return m, shift


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul on int32 values."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31
    return q if v >= 0 else -q   # C division truncates toward zero


def rdbpot(x: int, e: int) -> int:
    """RoundingDivideByPOT."""
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def mbqm(x: int, m: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (TFLite's double-rounding variant, as in TFLite Micro)."""
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return rdbpot(srdhm(_wrap32(x << left), m), right)


def sat_shl(x: int, e: int) -> int:
    thr = (1 << (31 - e)) - 1
    if x > thr:
        return INT32_MAX
    if x < -thr:
        return INT32_MIN
    return x << e


def _f32(x) -> np.float32:
    return np.float32(x)


def act_range(act: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (float32 division, std::round)."""
    def q(f: float) -> int:
        return int(zero_point) + round_away(float(_f32(f) / _f32(scale)))

    lo, hi = -128, 127
    if act == "RELU":
        return max(lo, q(0.0)), hi
    if act == "RELU6":
        return max(lo, q(0.0)), min(hi, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi


# ---- gemmlowp exp for softmax ---------------------------------------------------

def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = _wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    inner = rdbpot(_wrap32(srdhm(_wrap32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return _wrap32(constant_term + srdhm(constant_term, _wrap32(x + inner)))


def exp_on_negative_values(a: int, integer_bits: int = 5) -> int:
    """gemmlowp exp_on_negative_values: Q(integer_bits).(31-integer_bits) in, Q0.31 out."""
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    mask = one_quarter - 1
    a_mod = _wrap32((a & mask) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(sat_shl(a_mod, integer_bits))
    remainder = _wrap32(a_mod - a)
    for exponent, mult in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                           (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            if remainder & (1 << (frac + exponent)):
                result = srdhm(result, mult)
    if integer_bits > 5:
        raise NotImplementedError("integer_bits > 5")
    if a == 0:
        result = INT32_MAX
    return result


def softmax_exp_table(beta: float, input_scale: float) -> list[int]:
    """exp table of TFLite's int8 softmax: entry k is exp(diff=-k) in Q0.31, 0 below diff_min."""
    kbits = 5
    real = min(float(beta) * float(input_scale) * (1 << (31 - kbits)), (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier_gt_one(real)
    max_input_rescaled = 1.0 * ((1 << kbits) - 1) * (1 << (31 - kbits)) / (1 << left_shift)
    diff_min = -int(math.floor(max_input_rescaled))
    table = []
    for k in range(256):
        diff = -k
        if diff >= diff_min:
            rescaled = srdhm(_wrap32(diff * (1 << left_shift)), mult)
            table.append(exp_on_negative_values(rescaled, kbits))
        else:
            table.append(0)
    return table


def softmax_exp_reach(table: list[int]) -> int:
    """How many leading entries of a softmax_exp_table te_softmax_s8 must store: the kernel reads
    0 at and past this index, which is bit-exact because every entry below 2048 acts as 0 there.
    An entry e enters the sum as RoundingDivideByPOT(e, 12), 0 for 0 <= e < 2048, and the output as
    RoundingDivideByPOT(SRDHM(scale, e), bits_over_unit + 23) with 0 < scale < 2^31 and
    bits_over_unit >= 0 (the sum holds exp(0) = 2^19 at least), 0 for e < 2^22.  The table falls
    with the index, so the entries that matter are a prefix."""
    n = len(table)
    while n > 1 and table[n - 1] < 2048:
        n -= 1
    return n


# ---- elementwise lookup tables ---------------------------------------------------

def _table(fn) -> list[int]:
    return [max(-128, min(127, int(fn(v)))) for v in range(-128, 128)]


def relu_table(in_scale, in_zp, out_scale, out_zp, lo_f: float = 0.0, hi_f: float | None = None) -> list[int]:
    """TFLM ReluQuantized (RELU, RELU_N1_TO_1)."""
    m, s = quantize_multiplier(float(in_scale) / float(out_scale))
    lo = max(-128, int(out_zp) + round_away(float(_f32(lo_f) / _f32(out_scale))))
    hi = 127 if hi_f is None else min(127, int(out_zp) + round_away(float(_f32(hi_f) / _f32(out_scale))))

    def f(v):
        r = int(out_zp) + mbqm(v - int(in_zp), m, s)
        return min(hi, max(lo, r))

    return _table(f)


def relu6_table(in_scale, in_zp, out_scale, out_zp) -> list[int]:
    """TFLM RELU6 for int8: the raw values clamped to [zero, six] on the *input* quantization
    (TFLM assumes equal input and output quantization and does not requantize)."""
    six = max(-128, min(127, round_away(float(_f32(6.0) / _f32(in_scale))) + int(in_zp)))
    zero = int(in_zp)
    return _table(lambda v: six if v > six else (zero if v < zero else v))


def leaky_relu_table(alpha, in_scale, in_zp, out_scale, out_zp) -> list[int]:
    ma, sa = quantize_multiplier(float(in_scale) * float(_f32(alpha)) / float(out_scale))
    mi, si = quantize_multiplier(float(in_scale) / float(out_scale))

    def f(v):
        x = v - int(in_zp)
        return int(out_zp) + (mbqm(x, mi, si) if x >= 0 else mbqm(x, ma, sa))

    return _table(f)


def requantize_table(in_scale, in_zp, out_scale, out_zp) -> list[int]:
    """TFLM QUANTIZE int8 -> int8 (Requantize)."""
    m, s = quantize_multiplier(float(in_scale) / float(out_scale))
    return _table(lambda v: mbqm(v - int(in_zp), m, s) + int(out_zp))


# ---- LOGISTIC / TANH (gemmlowp fixed point, as TFLite's int8 reference kernels) -------

def _rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    sign = 1 if s >= 0 else -1
    v = s + sign
    return int(v / 2) if abs(v) < (1 << 52) else (abs(v) // 2) * sign


def _newton_reciprocal_f2(half_den: int) -> int:
    x = _wrap32(1515870810 + srdhm(half_den, -1010580540))
    for _ in range(3):
        hdx = srdhm(half_den, x)
        one_minus = _wrap32((1 << 29) - hdx)
        x = _wrap32(x + sat_shl(srdhm(x, one_minus), 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    return sat_shl(_newton_reciprocal_f2(_rounding_half_sum(a, INT32_MAX)), 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_f2(_rounding_half_sum(a, INT32_MAX))
    return sat_shl(_wrap32(x - (1 << 29)), 2)


def fixed_logistic(a: int, integer_bits: int) -> int:
    """gemmlowp logistic: Q(integer_bits) in, Q0.31 out."""
    if a == 0:
        return 1 << 30
    abs_a = a if a > 0 else -a
    pos = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-abs_a, integer_bits))
    return pos if a > 0 else _wrap32(INT32_MAX - pos)


def fixed_tanh(a: int, integer_bits: int) -> int:
    """gemmlowp tanh: Q(integer_bits) in, Q0.31 out."""
    if a == 0:
        return 0
    n = a if a < 0 else -a
    # neg_tanh_on_negative_values: exp of 2n (ExactMulByPot<1> adds one integer bit, same raw)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return -t if a < 0 else t


def _q4_input_params(in_scale: float) -> tuple[int, int, int]:
    """TFLM Prepare of int8 LOGISTIC / TANH: multiplier, left shift, input range radius."""
    kbits = 4
    real = float(np.float64(np.float32(in_scale))) * float(1 << (31 - kbits))
    qf, shift = math.frexp(real)
    mult = round_away(qf * (1 << 31))
    radius = int(math.floor(((1 << kbits) - 1) * (1 << (31 - kbits)) / (2.0 ** shift)))
    return mult, shift, radius


def _q4_table(in_scale, in_zp, finish) -> list[int]:
    """The 256-entry table of an int8 op that TFLite computes on a Q4.27 input: inputs
    beyond the radius saturate to -128 / 127, the rest go through `finish(q4)`."""
    mult, shift, radius = _q4_input_params(in_scale)

    def f(v):
        x = v - int(in_zp)
        if x <= -radius:
            return -128
        if x >= radius:
            return 127
        return finish(mbqm(x, mult, shift))

    return _table(f)


def logistic_table(in_scale, in_zp) -> list[int]:
    return _q4_table(in_scale, in_zp, lambda q4: rdbpot(fixed_logistic(q4, 4), 31 - 8) - 128)


def tanh_table(in_scale, in_zp) -> list[int]:
    return _q4_table(in_scale, in_zp, lambda q4: rdbpot(fixed_tanh(q4, 4), 31 - 7))


# ---- HARD_SWISH (TFLite reference_ops::HardSwish, int16 fixed point) ---------------

def _wrap16(x: int) -> int:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _srdhm16(a: int, b: int) -> int:
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    v = ab + nudge
    qv = abs(v) >> 15
    return qv if v >= 0 else -qv


def _sdhm16(a: int, b: int) -> int:
    """SaturatingDoublingHighMul (int16, truncating)."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    qv = abs(ab) >> 15
    return qv if ab >= 0 else -qv


def _sat_left_shift16(x: int, e: int) -> int:
    return max(-(1 << 15), min((1 << 15) - 1, x * (1 << e)))


def _downscale_int16(m: int) -> int:
    if m >= INT32_MAX - (1 << 15):
        return (1 << 15) - 1
    return (m + (1 << 15)) >> 16


def hard_swish_table(in_scale, in_zp, out_scale, out_zp) -> list[int]:
    f32 = np.float32
    hires = f32(1.0 / 128.0) * f32(in_scale)
    reluish_scale = f32(3.0 / 32768.0)
    om, oe = quantize_multiplier(float(hires / f32(out_scale)))
    om16 = _downscale_int16(om)
    rm, re_ = quantize_multiplier(float(hires / reluish_scale))
    rm16 = _downscale_int16(rm)

    def f(v):
        x = _wrap16(v - int(in_zp))
        hi = _wrap16(x * (1 << 7))
        pre_out = _srdhm16(hi, om16)
        r = hi
        if re_ > 0:
            r = _sat_left_shift16(r, re_ - 1)
        r = _srdhm16(r, rm16)
        if re_ > 0:
            r = _sat_left_shift16(r, 1)
        if re_ < 0:
            r = rdbpot(r, -re_)
        r = (r + (1 << 15)) >> 1
        pre_shift = _sdhm16(r, pre_out)
        out = rdbpot(pre_shift, -oe) + int(out_zp)
        return out

    return _table(f)
