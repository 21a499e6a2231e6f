"""Compression whose gains show on the board: `tinyedge compress` and deploy's compression options.

The methods run in one fixed order, whatever order they are given in:

1. L1 regularisation (`l1`): with channel pruning, a training phase that drives the
   weights (or, with `channel_criterion="bn"`, the BatchNormalization scales: network
   slimming) towards zero before channels are ranked; alone, fine-tuning with the penalty.
2. structure: channel pruning (`prune_channels`, channels.py) that physically removes
   filters, then low-rank factorisation (`rank` / `rank_energy`, lowrank.py);
3. fine-tuning of the smaller model on the labels, distilled from the original model
   (`distill`, train.py), or label-free from the teacher's outputs alone;
4. weight sparsity: magnitude pruning (`prune`) or N:M (`sparsity_pattern="2:4"`) with
   tfmot (sparsity.py), stripped;
5. weight clustering (`cluster`) with tfmot, per channel, keeping the zeros (clustering.py), stripped;
6. QAT (`qat`) with tfmot, sparsity- and cluster-preserving when 4 or 5 ran (qat.py);
7. full-int8 conversion through `tinyedge.conversion.convert`, and the report (report.py).

Structural methods and distillation work on tf_keras and Keras 3 models alike: the model
is read into a plain layer graph (ir.py) and rebuilt as a tf_keras model, which is what
tfmot needs.  `compress(...)` returns the report and writes OUT (.h5 or .keras) and its
int8 `.tflite` beside it, only once everything has worked.
"""

from .core import ORDER, Options, compress, int8_path

__all__ = ["ORDER", "Options", "compress", "int8_path"]


# `tinyedge.compress(...)` is the verb, like `tinyedge.deploy(...)`; this package has the same name, and
# once it is imported it *is* the attribute `tinyedge.compress`, so calling the package calls the verb.
def _callable_package():
    import sys
    import types

    class _Verb(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return compress(*args, **kwargs)

    sys.modules[__name__].__class__ = _Verb


_callable_package()
