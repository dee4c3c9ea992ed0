"""Batch normalization for fully connected networks."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..tensor import DEFAULT_FLOAT, data_of
from .module import Module, Parameter


class BatchNorm1d(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per feature, over the batch.

    Shapes: input and output (N, num_features). In training mode the mean and the
    (biased) variance are the batch's, and the running estimates move towards them by
    ``momentum`` (the running variance uses the unbiased batch variance, as PyTorch);
    in evaluation mode the running estimates are used. ``weight``, ``bias`` and the
    buffers ``running_mean``, ``running_var``, ``num_batches_tracked`` are in
    ``state_dict()`` under PyTorch's names. Built from existing operations, so its
    backward needs no rule of its own.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=DEFAULT_FLOAT):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=dtype))
        self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
        self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x):
        shape = np.shape(data_of(x))
        if len(shape) != 2 or shape[1] != self.num_features:
            raise ShapeError(f"BatchNorm1d: expected input (N, {self.num_features}), got {shape}")
        if not self.training:
            mean, var = self.running_mean, self.running_var
        else:
            n = shape[0]
            if n < 2:
                raise ShapeError("BatchNorm1d: training needs more than one example per batch "
                                 "to estimate a variance; use a larger batch or eval()")
            mean, var = ops.mean(x, axis=0), ops.var(x, axis=0)
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * data_of(mean)
            self.running_var = (1 - m) * self.running_var + m * data_of(var) * (n / (n - 1))
            self.num_batches_tracked = self.num_batches_tracked + 1
        return (x - mean) / ((var + self.eps) ** 0.5) * self.weight + self.bias

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
