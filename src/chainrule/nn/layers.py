"""Layers and networks: ``Linear``, the activation modules, ``Sequential``, ``MLP``,
``Dropout``, ``Flatten``, ``Identity``, and the loss modules."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ArgumentError
from ..tensor import DEFAULT_FLOAT, as_generator
from . import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """A fully connected layer y = x W^T + b.

    Shapes: input (*, in_features) -> output (*, out_features); ``weight`` is
    (out_features, in_features) and ``bias`` (out_features,). Initialised as in PyTorch:
    both uniform in +-1/sqrt(in_features). ``generator`` is a seed or a Generator.

    The weight's memory is an (in_features, out_features) row-major array, of which
    ``weight.data`` is the transpose: the forward product ``x @ W.T`` and the weight's
    gradient then run as BLAS's fastest (untransposed) products. Shapes, values and
    ``state_dict`` (row-major copies) are PyTorch's.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=DEFAULT_FLOAT,
                 generator=None):
        super().__init__()
        for what, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, int | np.integer) or n <= 0:
                raise ArgumentError(f"Linear: {what} must be a positive integer, got {n!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = as_generator(generator)
        self.weight = Parameter(np.empty((in_features, out_features), dtype=dtype).T)
        # kaiming_uniform_ with a = sqrt(5) is PyTorch's default: bound 1/sqrt(fan_in)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=rng)
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
            bound = 1 / math.sqrt(in_features)
            init.uniform_(self.bias, -bound, bound, generator=rng)
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    def forward(self, x):
        return x


class Flatten(Module):
    """Flatten every axis from ``start_dim`` on: (N, *dims) -> (N, prod(dims))."""

    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        shape = x.shape
        return x.reshape(tuple(shape[:self.start_dim]) + (-1,))


class Dropout(Module):
    """Inverted dropout with probability ``p``; active in training mode only.

    It draws from its own generator (``seed``: an int or a Generator) so that training
    is reproducible and can be resumed exactly: the generator's position is its extra
    state (``get_extra_state``/``set_extra_state``).
    """

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ArgumentError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.generator = as_generator(seed) if seed is not None else np.random.default_rng(
            as_generator(None).integers(2**63))

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.generator)

    def get_extra_state(self):
        return self.generator.bit_generator.state

    def set_extra_state(self, state):
        self.generator.bit_generator.state = state

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied one after another; ``Sequential(a, b)(x)`` is ``b(a(x))``."""

    def __init__(self, *modules, names=None):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise ArgumentError(f"Sequential: item {i} is a {type(m).__name__}, not a "
                                     "Module (wrap functions in a Module subclass)")
            setattr(self, str(i) if names is None else names[i], m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, slice):  # keeps the layers' names, so state_dict keys match
            names, modules = zip(*list(self._modules.items())[i]) or ((), ())
            return Sequential(*modules, names=names)
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


# ----- activations as modules -------------------------------------------------------------
class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return F.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Softplus(Module):
    """A smooth ReLU, log(1 + e^(beta x)) / beta; see ``F.softplus``."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return F.softplus(x, self.beta)

    def extra_repr(self):
        return f"beta={self.beta}"


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)


class LogSoftmax(Softmax):
    def forward(self, x):
        return F.log_softmax(x, self.dim)


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "gelu": GELU,
               "silu": SiLU, "sigmoid": Sigmoid, "tanh": Tanh}


class MLP(Sequential):
    """A fully connected network: Linear, activation, [Dropout], ..., Linear.

    ``MLP(2, [100], 3)`` is the lecture's 2-layer net f = W2 max(0, W1 x);
    ``MLP(D, [H1, H2], C)`` its 3-layer net; ``activation=None`` gives a purely linear
    stack, which collapses to a single matrix W = W2 W1. ``activation`` is a name from
    ``ACTIVATIONS`` or a Module class, or a list of them, one per hidden layer. ``seed``
    (int or Generator) fixes the weights.
    Shapes: (N, in_features) -> (N, out_features).
    """

    def __init__(self, in_features, hidden_sizes, out_features, activation="relu",
                 dropout=0.0, seed=None, dtype=DEFAULT_FLOAT):
        rng = as_generator(seed)
        if isinstance(hidden_sizes, int):
            raise ArgumentError(f"MLP: hidden_sizes is a list of layer sizes; for one hidden "
                                 f"layer write [{hidden_sizes}]")
        hidden = [] if hidden_sizes is None else list(hidden_sizes)
        per_layer = (list(activation) if isinstance(activation, list | tuple)
                     else [activation] * len(hidden))
        if len(per_layer) != len(hidden):
            raise ArgumentError(f"MLP: {len(per_layer)} activations for {len(hidden)} hidden "
                                "layers; give one per hidden layer (or one name for all)")
        for k, name in enumerate(per_layer):
            if isinstance(name, str):
                if name not in ACTIVATIONS:
                    raise ArgumentError(f"MLP: unknown activation {name!r}; choose one of "
                                         + ", ".join(ACTIVATIONS))
                per_layer[k] = ACTIVATIONS[name]
        sizes = [in_features, *hidden, out_features]
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, dtype=dtype, generator=rng))
            if i < len(hidden):
                if per_layer[i] is not None:
                    layers.append(per_layer[i]())
                if dropout:  # its own generator, drawn from the model's seed
                    layers.append(Dropout(dropout, seed=int(rng.integers(2**63))))
        super().__init__(*layers)
        self.sizes = sizes

    def linear_layers(self) -> list[Linear]:
        return [m for m in self if isinstance(m, Linear)]


# ----- losses as modules ------------------------------------------------------------------
class _Loss(Module):
    """A loss as a module: ``loss(input, target)`` reduced by ``reduction`` ("mean", "sum"
    or "none"), as PyTorch's loss modules."""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on scores (N, C) and labels (N,); see ``F.cross_entropy``."""

    def forward(self, logits, target):
        return F.cross_entropy(logits, target, self.reduction)


class HingeLoss(_Loss):
    """The multiclass SVM loss; see ``F.hinge_loss``."""

    def __init__(self, margin=1.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, scores, target):
        return F.hinge_loss(scores, target, self.margin, self.reduction)


class MSELoss(_Loss):
    """Mean squared error between two tensors of one shape; see ``F.mse_loss``."""

    def forward(self, input, target):
        return F.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits; see ``F.binary_cross_entropy_with_logits``."""

    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction)
