"""A population's training step written out by hand: forward, loss and backward of K MLPs
as a fixed sequence of NumPy calls on arrays allocated once.

``PopulationTrainer`` trains a population through chainrule's engine when it must (any
activation, any loss); for the common MLPs (ReLU, leaky ReLU, tanh, sigmoid or no
activation; softmax or SVM loss) it uses this step instead. The numbers are the engine's
(the same operations, in float32, per member); what goes is the graph: no Tensors, no
backward pass to schedule, no intermediate arrays allocated per step. With K members a
step is about 20 NumPy calls, whatever K.

Per layer i, with x_0 the minibatch (K, B, D) and d the gradient flowing back:

    forward    z_i = x_i @ W_i + b_i        (K, B, in) @ (K, in, out) + (K, 1, out)
               x_{i+1} = act(z_i)           in place: x_{i+1} is z_i's buffer
    loss       L_k = mean over the member's B rows (softmax or SVM) + reg_k * sum W^2
    backward   dW_i = x_i^T @ d + 2 reg_k W_i,   db_i = sum over rows of d
               d <- (d @ W_i^T) * act'(x_i)     act' from the activation's output

The loss of the whole population is sum_k L_k, so each member's slice of the gradient is
exactly the gradient of its own loss (see ``population``).
"""

from __future__ import annotations

import numpy as np

from .. import nn


# Activations in place on z, and their backward on d from the output; ``mask`` is a
# boolean buffer of z's shape that the forward may fill and the backward read.
def _relu(z, _, mask):
    np.greater(z, 0, out=mask)
    np.multiply(z, mask, out=z)  # twice as fast as np.maximum(z, 0); NaN stays NaN


def _relu_grad(d, out, _, mask):
    np.multiply(d, mask, out=d)


def _leaky(z, slope, mask):
    np.greater(z, 0, out=mask)
    np.multiply(z, slope, out=z, where=~mask)  # the positive entries stay as they are


def _leaky_grad(d, out, slope, mask):
    np.multiply(d, slope, out=d, where=~mask)


def _tanh(z, _, mask):
    np.tanh(z, out=z)


def _tanh_grad(d, out, _, mask):
    d *= 1 - out * out


def _sigmoid(z, _, mask):
    np.negative(z, out=z)
    np.exp(z, out=z)  # e^-z may overflow to inf: 1 / (1 + inf) = 0, sigmoid's limit
    z += 1
    np.reciprocal(z, out=z)


def _sigmoid_grad(d, out, _, mask):
    d *= out * (1 - out)


KEEPS_ONE = (_relu, _leaky)  # act(1) = 1: the bias input column survives the activation
ACTIVATIONS = {nn.ReLU: (_relu, _relu_grad), nn.LeakyReLU: (_leaky, _leaky_grad),
               nn.Tanh: (_tanh, _tanh_grad), nn.Sigmoid: (_sigmoid, _sigmoid_grad)}
LOSSES = ("softmax", "svm")


def _last_axis(ufunc, a):
    """``ufunc.reduce(a, axis=2)`` for a (K, n, C): with few classes, a loop over the C
    columns is ~20x faster than NumPy's reduction along a short last axis."""
    if a.shape[2] > 32:
        return ufunc.reduce(a, axis=2)
    result = a[:, :, 0].copy()
    for c in range(1, a.shape[2]):
        ufunc(result, a[:, :, c], out=result)
    return result


def fused_step_for(template, loss: str):
    """A ``FusedStep`` for populations of MLPs like ``template`` (one member) trained with
    ``loss``, or None when the step must run through the engine."""
    kinds = [m for m in template if not isinstance(m, nn.Linear)]
    if loss not in LOSSES or any(type(m) not in ACTIVATIONS for m in kinds):
        return None
    if len({type(m) for m in kinds}) > 1:
        return None
    activation = kinds[0] if kinds else None
    return FusedStep(activation, loss)


class FusedStep:
    """Forward, loss and backward of a ``PopulationMLP`` without the engine."""

    def __init__(self, activation, loss):
        self.forward_fn, self.grad_fn = (ACTIVATIONS[type(activation)] if activation
                                         is not None else (None, None))
        self.slope = getattr(activation, "negative_slope", None)
        self.loss = loss
        self._buffers = {}

    def _buffers_for(self, layers, K, n, dtype):
        """Each layer's output for minibatches of n rows (the hidden ones with a column
        of ones after their units, the next layer's bias input) and the gradients flowing
        back into the hidden layers; made once per size."""
        key = (K, n, dtype)
        if key not in self._buffers:
            outputs = []
            for i, (weight, _) in enumerate(layers):
                out = weight.shape[2]
                hidden = i < len(layers) - 1
                buffer = np.empty((K, n, out + hidden), dtype)
                if hidden:
                    buffer[:, :, out] = 1
                outputs.append(buffer)
            # as wide as the outputs they flow back through: contiguous elementwise passes
            backs = [np.empty((K, n, w.shape[1] + 1), dtype) for w, _ in layers[1:]]
            masks = [np.empty(b.shape, bool) for b in backs]
            self._buffers[key] = outputs, backs, masks
        return self._buffers[key]

    def forward(self, layers, X):
        """Class scores (K, n, C) of inputs X (K, n, D + 1), whose last column is ones;
        ``layers``: [(weight (K, in, out), weight and bias (K, in + 1, out))], the bias
        being the row after the weights. Every layer's output is kept for ``backward``."""
        K, n, _ = X.shape
        outputs, _, masks = self._buffers_for(layers, K, n, layers[0][0].dtype)
        x = X
        last = len(layers) - 1
        for i, (_, augmented) in enumerate(layers):
            z = outputs[i]
            if i < last:  # x @ W + b in one product: [x, 1] @ [W; b]
                np.matmul(x, augmented, out=z[:, :, :-1])
                if self.forward_fn is not None:
                    self.forward_fn(z, self.slope, masks[i])
                    if self.forward_fn not in KEEPS_ONE:
                        z[:, :, -1] = 1
            else:
                np.matmul(x, augmented, out=z)
            x = z
        return x

    def losses(self, scores, y, grad=True):
        """Each member's mean loss (K,) float64; with ``grad``, d(sum of losses)/d(scores)
        is written over ``scores`` (whose argmax the caller reads first)."""
        K, n, C = scores.shape
        k_idx, i_idx = np.arange(K)[:, None], np.arange(n)[None, :]
        if self.loss == "softmax":
            scores -= _last_axis(np.maximum, scores)[:, :, None]  # no overflow in exp
            correct_shifted = scores[k_idx, i_idx, y]
            np.exp(scores, out=scores)
            norm = _last_axis(np.add, scores)
            per_row = np.log(norm) - correct_shifted
            if grad:
                scores /= norm[:, :, None]  # probabilities
                scores[k_idx, i_idx, y] -= 1
        else:  # multiclass SVM, margin 1
            scores -= scores[k_idx, i_idx, y][:, :, None]
            scores += 1
            scores[k_idx, i_idx, y] = 0
            per_row = _last_axis(np.add, np.maximum(scores, 0))  # NaN stays NaN
            if grad:
                violated = scores > 0
                np.copyto(scores, violated)
                scores[k_idx, i_idx, y] = -_last_axis(np.add, scores)
        if grad:
            scores *= scores.dtype.type(1 / n)
        return per_row.mean(axis=1, dtype=np.float64)

    def backward(self, layers, grads, X, reg):
        """Gradients of every layer into ``grads`` [(dW (K, in, out), d[W; b] (K, in + 1,
        out))], from the scores' gradient that ``losses`` left in the last output."""
        K, n, _ = X.shape
        outputs, backs, masks = self._buffers_for(layers, K, n, layers[0][0].dtype)
        d = outputs[-1]
        for i in range(len(layers) - 1, -1, -1):
            weight = layers[i][0]
            gw, g_augmented = grads[i]
            x = X if i == 0 else outputs[i - 1]
            np.matmul(x.transpose(0, 2, 1), d, out=g_augmented)  # [x, 1]^T d: dW and db
            if reg is not None:  # + d(reg_k sum W^2)/dW = 2 reg_k W
                gw += reg[:, None, None] * 2 * weight
            if i > 0:  # d [W; b]^T: the last column, d b^T, belongs to the ones: dropped
                below = backs[i - 1]
                np.matmul(d, layers[i][1].transpose(0, 2, 1), out=below)
                if self.grad_fn is not None:
                    self.grad_fn(below, x, self.slope, masks[i - 1])
                d = below[:, :, :-1]

    @staticmethod
    def penalty(layers, reg):
        """reg_k * sum of member k's squared weights, (K,) float64."""
        total = sum(np.einsum("kij,kij->k", w, w, dtype=np.float64) for w, _ in layers)
        return reg * total
