"""Models whose conv / FC weights have the properties compact storage exploits, made by
rewriting the int8 weights of a real .tflite in its flatbuffer (the rewritten file is then the
reference the engine is checked against).  Biases and scales stay; only weight values change.

- `palette(levels, per_tensor=False)`: each output channel's weights snapped to `levels`
  values (the channel's quantiles), or one set of values for the whole tensor;
- `zeros(fraction)`: the smallest-magnitude `fraction` of each channel's weights set to 0;
- `int4(varied=False)`: each channel on a uniform grid q * step, q in -8..7.
"""

from __future__ import annotations

import numpy as np

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _channels(opcode: str, w: np.ndarray) -> np.ndarray:
    """[channels][weights] view order of a weight tensor (depthwise: the last axis)."""
    return w.reshape(-1, w.shape[-1]).T if opcode == "DEPTHWISE_CONV_2D" else w.reshape(w.shape[0], -1)


def _unchannels(opcode: str, rows: np.ndarray, shape) -> np.ndarray:
    return (rows.T if opcode == "DEPTHWISE_CONV_2D" else rows).reshape(shape)


def palette(levels: int, per_tensor: bool = False):
    def f(opcode, w):
        rows = _channels(opcode, w).astype(np.int64)
        out = np.empty_like(rows)
        sets = [np.unique(np.quantile(rows, np.linspace(0, 1, levels)).round())] if per_tensor else None
        for i, r in enumerate(rows):
            v = sets[0] if per_tensor else np.unique(np.quantile(r, np.linspace(0, 1, levels)).round())
            out[i] = v[np.abs(r[:, None] - v[None, :]).argmin(axis=1)]
        return _unchannels(opcode, np.clip(out, -127, 127).astype(np.int8), w.shape)
    return f


def zeros(fraction: float):
    def f(opcode, w):
        rows = _channels(opcode, w).copy()
        k = int(round(rows.shape[1] * fraction))
        for r in rows:
            r[np.argsort(np.abs(r.astype(np.int64)), kind="stable")[:k]] = 0
        return _unchannels(opcode, rows, w.shape)
    return f


def int4(varied: bool = False):
    """`varied`: channel i on the grid of step 5 + i % 7 (the tensor has no common step, so each
    channel keeps its own); otherwise the channel's max / 7 (at most 18: 7 * step <= 127)."""
    def f(opcode, w):
        rows = _channels(opcode, w).astype(np.int64)
        out = np.empty_like(rows)
        for i, r in enumerate(rows):
            step = 5 + i % 7 if varied else min(18, max(1, int(np.ceil(np.abs(r).max() / 7))))
            out[i] = np.clip(np.round(r / step), -8, 7) * step
        return _unchannels(opcode, np.clip(out, -127, 127).astype(np.int8), w.shape)
    return f


def int4_values():
    """each channel's weights as 4-bit values q in -8..7 (the channel's max / 7 the step of the
    rounding) and the channel's scale times that step, so the real weights stay about the same:
    what a model that carries INT4 weights holds.  Returns (weights, scale factors)."""
    def f(opcode, w):
        rows = _channels(opcode, w).astype(np.int64)
        out = np.empty_like(rows)
        steps = np.maximum(1.0, np.abs(rows).max(axis=1) / 7)
        for i, r in enumerate(rows):
            out[i] = np.clip(np.round(r / steps[i]), -8, 7)
        return _unchannels(opcode, out.astype(np.int8), w.shape), steps
    return f


def as_int4_type(tflite: bytes, ops=WEIGHT_OPS) -> bytes:
    """`tflite` with every constant weight tensor of `ops` whose values lie in -8..7 re-typed to
    TensorType INT4, its buffer packed two values per byte, low nibble first (the flatbuffer
    layout the TFLite converter writes for INT4)."""
    return _edit(tflite, ops, int4=True)


def rewrite_weights(tflite: bytes, fn, ops=WEIGHT_OPS) -> bytes:
    """`tflite` with every constant int8 weight tensor of `ops` replaced by fn(opcode, weights)."""
    return _edit(tflite, ops, fn=fn)


def _edit(tflite: bytes, ops, fn=None, int4: bool = False) -> bytes:
    import flatbuffers

    from tinyedge.graph import _schema, builtin_op_name

    s = _schema()
    m = s.ModelT.InitFromPackedBuf(bytearray(tflite), 0)
    sg = m.subgraphs[0]
    done = set()
    for op in sg.operators:
        oc = m.operatorCodes[op.opcodeIndex]
        name = builtin_op_name(max(oc.builtinCode, oc.deprecatedBuiltinCode))
        if name not in ops or len(op.inputs) < 2:
            continue
        t = sg.tensors[op.inputs[1]]
        buf = m.buffers[t.buffer]
        if t.buffer in done or buf.data is None or len(buf.data) == 0 or t.type != s.TensorType.INT8:
            continue
        w = np.asarray(buf.data, np.uint8).view(np.int8).reshape(list(t.shape))
        if int4:
            if w.min() < -8 or w.max() > 7:
                continue
            q = (w.reshape(-1).astype(np.int64) & 15).astype(np.uint8)
            q = np.concatenate([q, np.zeros(q.size % 2, np.uint8)])
            buf.data = (q[0::2] | (q[1::2] << 4)).astype(np.uint8)
            t.type = s.TensorType.INT4
        else:
            new = fn(name, w.copy())
            if isinstance(new, tuple):   # (weights, factors of the per-channel scales)
                new, factors = new
                scale = np.asarray(t.quantization.scale, np.float64)
                if scale.size != len(factors):
                    continue
                t.quantization.scale = (scale * factors).astype(np.float32).tolist()
            buf.data = np.ascontiguousarray(new, np.int8).view(np.uint8).reshape(-1)
        done.add(t.buffer)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
