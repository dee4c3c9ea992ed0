"""The hand-written NumPy references of benchmarks 3 and 4: an MLP with ReLU and softmax
cross-entropy (forward and backward by hand) and Adam following PyTorch's formula.

Written the way a competent NumPy programmer would: weights stored as (in, out) so the
forward is ``x @ W``, bias, ReLU and softmax applied in place, the update done in place
through one preallocated scratch array per parameter.
"""

from __future__ import annotations

import math

import numpy as np


class NumpyMLP:
    """Linear, ReLU, ..., Linear; ``weights[i]`` has shape (in, out), ``biases[i]`` (out,)."""

    def __init__(self, weights, biases):
        # Row-major copies: a weight that kept the column order of a transposed view
        # would make every elementwise update walk memory across the grain.
        self.weights = [np.array(w, dtype=np.float32, order="C") for w in weights]
        self.biases = [np.array(b, dtype=np.float32, order="C") for b in biases]

    @classmethod
    def from_chainrule(cls, model):
        layers = model.linear_layers()
        return cls([m.weight.data.T for m in layers], [m.bias.data for m in layers])

    def params(self):
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def loss_and_grads(self, x, y):
        """Mean softmax cross-entropy on (x, y), its gradients in ``params()`` order, and
        the predicted classes."""
        n, last = len(x), len(self.weights) - 1
        activations = [x]
        h = x
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w
            h += b
            if i < last:
                np.maximum(h, 0, out=h)
            activations.append(h)
        probs = activations.pop()  # the scores, turned into probabilities in place
        predicted = probs.argmax(axis=1)
        probs -= probs.max(axis=1, keepdims=True)
        np.exp(probs, out=probs)
        probs /= probs.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = float(-np.log(probs[rows, y]).mean())
        upstream = probs  # d loss / d scores = (probs - onehot) / n
        upstream[rows, y] -= 1
        upstream /= n
        grads = []
        for i in range(last, -1, -1):
            a = activations[i]
            grads.append(upstream.sum(axis=0))  # bias
            grads.append(a.T @ upstream)  # weight
            if i > 0:
                upstream = upstream @ self.weights[i].T
                upstream *= a > 0  # ReLU's local gradient
        grads.reverse()
        return loss, grads, predicted


class NumpyAdam:
    """PyTorch's Adam (no weight decay): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
    p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps), all in place."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.eps = params, lr, eps
        self.beta1, self.beta2 = betas
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]
        self.t = 0

    def step(self, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step_size = self.lr / (1 - b1**self.t)
        root_correction2 = math.sqrt(1 - b2**self.t)
        for p, g, m, v, work in zip(self.params, grads, self.m, self.v, self.scratch):
            m *= b1
            np.multiply(g, 1 - b1, out=work)
            m += work
            v *= b2
            np.multiply(g, g, out=work)
            work *= 1 - b2
            v += work
            np.sqrt(v, out=work)
            work /= root_correction2
            work += self.eps
            np.divide(m, work, out=work)
            work *= -step_size
            p += work
