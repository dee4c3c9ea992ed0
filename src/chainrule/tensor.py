"""``Tensor``: a NumPy array that remembers how it was computed, and the factories.

A Tensor made by an operation on Tensors that require gradients carries ``_ctx``, its
node in the computational graph; ``backward()`` walks those nodes back to the leaves
(Tensors made by the user) and leaves each leaf's gradient in ``.grad``.
"""

from __future__ import annotations

import numpy as np

from .errors import ChainruleError, DTypeError, GraphError, ShapeError

float16, float32, float64 = np.float16, np.float32, np.float64
int32, int64, bool_ = np.int32, np.int64, np.bool_

DEFAULT_FLOAT = np.float32


class Tensor:
    """An n-dimensional array in the computational graph.

    Attributes:
        data: the values, a ``numpy.ndarray``.
        grad: d(output)/d(this tensor) after ``backward()``, an ndarray of the same shape
            and dtype as ``data``, or ``None``; gradients add up across calls until reset.
        requires_grad: whether operations on this tensor are recorded.
        name: an optional label, used when the graph is drawn or explained.
    """

    __slots__ = ("data", "grad", "requires_grad", "name", "_ctx", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operator
    __hash__ = object.__hash__  # == is elementwise, identity stays hashable

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        self.data = _as_data(data, dtype)
        self.grad = None
        self.name = name
        self._ctx = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data, ctx=None):
        """A tensor around an array the library just made: no checks, no copy. With
        ``ctx`` (its node in the graph) it is an operation's output that requires grad."""
        t = _new_tensor(cls)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t.grad = t.name = None
        t._retains_grad = False
        if ctx is None:
            t.requires_grad, t._ctx = False, None
        else:
            t.requires_grad, t._ctx = True, ctx
        return t

    # ----- properties -------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._ctx is None)
    T = property(lambda self: ops.transpose(self))

    @property
    def grad_fn(self):
        """The operation that made this tensor (``None`` for a leaf)."""
        return None if self._ctx is None else self._ctx.fn

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.kind not in "fc":
            raise DTypeError(
                f"only floating-point tensors can require gradients; this one is "
                f"{self.data.dtype} (make it with float data or dtype=cr.float32)"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()``."""
        self._retains_grad = True
        return self

    def item(self):
        if self.data.size != 1:
            raise ChainruleError(
                f"item(): the tensor has shape {self.shape} ({self.size} elements); "
                "item() needs exactly one"
            )
        return self.data.item()

    def numpy(self):
        return self.data

    def tolist(self):
        return self.data.tolist()

    def detach(self):
        """The same values, cut from the graph: no gradient flows through the result."""
        return Tensor._wrap(self.data)

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self.data.size != 1:
            raise ChainruleError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __repr__(self):
        prefix = "tensor("
        body = np.array2string(self.data, separator=", ", prefix=prefix, precision=4)
        extras = []
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.fn.__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return prefix + body + "".join(", " + e for e in extras) + ")"

    # ----- backpropagation --------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Backpropagate from this tensor into the ``.grad`` of every leaf it depends on.

        Args:
            gradient: the upstream gradient d(loss)/d(self), same shape as self; may be
                omitted when self holds a single value (it is then 1).
            retain_graph: keep the saved values so that backward() can run through this
                graph again; by default they are released (default: ``create_graph``).
            create_graph: record the backward pass itself, so that the gradients (which
                are then Tensors in ``.grad``) can be differentiated again.
        """
        engine.backward(self, gradient, retain_graph, create_graph)

    # ----- arithmetic: each operator is an operation of chainrule.ops ------------------
    def __add__(self, other):
        return ops.add(self, other)

    def __radd__(self, other):
        return ops.add(other, self)

    def __sub__(self, other):
        return ops.subtract(self, other)

    def __rsub__(self, other):
        return ops.subtract(other, self)

    def __mul__(self, other):
        return ops.multiply(self, other)

    def __rmul__(self, other):
        return ops.multiply(other, self)

    def __truediv__(self, other):
        return ops.divide(self, other)

    def __rtruediv__(self, other):
        return ops.divide(other, self)

    def __pow__(self, other):
        return ops.power(self, other)

    def __rpow__(self, other):
        return ops.power(other, self)

    # In-place arithmetic updates the tensor itself, as a parameter update does:
    #     with cr.no_grad():
    #         w -= lr * w.grad
    # The result goes into a new array that replaces ``data``: a graph that saved the
    # old values (w was used before the update) still backpropagates correctly.
    def _in_place(self, ufunc, other):
        if self.requires_grad and engine.is_grad_enabled():
            if self._ctx is None:
                raise GraphError(
                    "a leaf tensor that requires grad cannot be changed in place while "
                    "gradients are recorded; update it inside `with cr.no_grad():`")
            return NotImplemented  # inside a graph: fall back to a new tensor (a = a + b)
        result = ufunc(self.data, data_of(other))
        if result.shape != self.shape:
            raise ShapeError(f"in-place {ufunc.__name__}: the result has shape {result.shape}, "
                             f"the tensor {self.shape}")
        self.data = result.astype(self.dtype, copy=False)
        return self

    def __setitem__(self, index, value):
        raise GraphError("tensors do not support item assignment, which would change values "
                         "a graph may have saved; build a new tensor (cr.where, "
                         "cr.concatenate), or change .data under cr.no_grad()")

    def __iadd__(self, other):
        return self._in_place(np.add, other)

    def __isub__(self, other):
        return self._in_place(np.subtract, other)

    def __imul__(self, other):
        return self._in_place(np.multiply, other)

    def __itruediv__(self, other):
        return self._in_place(np.true_divide, other)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(other, self)

    def __neg__(self):
        return ops.negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    # Comparisons give boolean tensors outside the graph.
    def __lt__(self, other):
        return Tensor._wrap(self.data < data_of(other))

    def __le__(self, other):
        return Tensor._wrap(self.data <= data_of(other))

    def __gt__(self, other):
        return Tensor._wrap(self.data > data_of(other))

    def __ge__(self, other):
        return Tensor._wrap(self.data >= data_of(other))

    def __eq__(self, other):
        return Tensor._wrap(self.data == data_of(other))

    def __ne__(self, other):
        return Tensor._wrap(self.data != data_of(other))

    # ----- methods with NumPy's (or, where NumPy has none, PyTorch's) names --------------
    def matmul(self, other):
        return ops.matmul(self, other)

    def dot(self, other):
        return ops.matmul(self, other)

    def exp(self):
        return ops.exp(self)

    def log(self):
        return ops.log(self)

    def sqrt(self):
        return ops.sqrt(self)

    def abs(self):
        return ops.abs(self)

    def tanh(self):
        return ops.tanh(self)

    def sigmoid(self):
        return ops.sigmoid(self)

    def relu(self):
        return ops.relu(self)

    def clip(self, min=None, max=None):
        return ops.clip(self, min, max)

    def sum(self, axis=None, keepdims=False):
        return ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return ops.min(self, axis, keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return ops.var(self, axis, ddof, keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        return ops.std(self, axis, ddof, keepdims)

    def logsumexp(self, axis=None, keepdims=False):
        return ops.logsumexp(self, axis, keepdims)

    def softmax(self, axis=-1):
        return ops.softmax(self, axis)

    def log_softmax(self, axis=-1):
        return ops.log_softmax(self, axis)

    def argmax(self, axis=None):
        return Tensor._wrap(self.data.argmax(axis))

    def argmin(self, axis=None):
        return Tensor._wrap(self.data.argmin(axis))

    def any(self, axis=None):
        return Tensor._wrap(self.data.any(axis))

    def all(self, axis=None):
        return Tensor._wrap(self.data.all(axis))

    def reshape(self, *shape):
        return ops.reshape(self, shape[0] if len(shape) == 1 else shape)

    def flatten(self):
        return ops.reshape(self, (-1,))

    def transpose(self, *axes):
        """NumPy's transpose: reverse the axes, or permute them as given."""
        return ops.transpose(self, axes[0] if _one_sequence(axes) else (axes or None))

    def permute(self, *dims):
        """PyTorch's name for ``transpose(dims)``."""
        return ops.transpose(self, dims[0] if _one_sequence(dims) else dims)

    def swapaxes(self, axis1, axis2):
        return ops.swapaxes(self, axis1, axis2)

    def broadcast_to(self, shape):
        return ops.broadcast_to(self, shape)

    def expand(self, *sizes):
        """PyTorch's expand: broadcast to ``sizes``, where -1 keeps a dimension as it is."""
        return ops.expand(self, *sizes)

    def astype(self, dtype):
        return ops.astype(self, dtype)

    def float(self):
        return ops.astype(self, np.float32)

    def double(self):
        return ops.astype(self, np.float64)


_new_tensor = object.__new__  # a Tensor without the call through type.__call__ and __init__


def data_of(x):
    """The array of a Tensor; anything else (an array, a number) as it is."""
    return x.data if isinstance(x, Tensor) else x


def _one_sequence(args) -> bool:
    """Whether varargs hold a single tuple/list (``f((1, 0))``) rather than ints."""
    return len(args) == 1 and not isinstance(args[0], int | np.integer)


def _as_data(data, dtype):
    """The ndarray a user's data becomes: Python floats become float32 (as in PyTorch)."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=dtype)
    if isinstance(data, np.ndarray | np.generic):
        return np.array(data)  # keeps NumPy's dtype, float64 included
    try:
        array = np.array(data)
    except ValueError:
        raise DTypeError("tensor(): the nested lists have different lengths, so they do not "
                         "form an array") from None
    if array.dtype == np.float64:
        array = array.astype(DEFAULT_FLOAT)
    elif array.dtype.kind in "OUSV":
        raise DTypeError(f"tensor(): cannot make a numeric array from {data!r:.60}")
    return array


# ----- factories --------------------------------------------------------------------------
def tensor(data, requires_grad=False, dtype=None, name=None) -> Tensor:
    """A new leaf tensor holding a copy of ``data``.

    Python floats become float32 (PyTorch's default); NumPy arrays keep their dtype;
    integers stay integer and cannot require gradients.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)


def _leaf(array, requires_grad=False, name=None) -> Tensor:
    """A leaf around an array a factory just made (no second copy)."""
    t = Tensor._wrap(array)
    t.name = name
    return t.requires_grad_(True) if requires_grad else t


def zeros(*shape, dtype=DEFAULT_FLOAT, requires_grad=False, name=None) -> Tensor:
    return _leaf(np.zeros(_shape(shape), dtype), requires_grad, name)


def ones(*shape, dtype=DEFAULT_FLOAT, requires_grad=False, name=None) -> Tensor:
    return _leaf(np.ones(_shape(shape), dtype), requires_grad, name)


def full(shape, fill_value, dtype=DEFAULT_FLOAT, requires_grad=False, name=None) -> Tensor:
    return _leaf(np.full(shape, fill_value, dtype), requires_grad, name)


def zeros_like(x, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.zeros_like(data_of(x), dtype=dtype), requires_grad)


def ones_like(x, dtype=None, requires_grad=False) -> Tensor:
    return _leaf(np.ones_like(data_of(x), dtype=dtype), requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad=False) -> Tensor:
    """NumPy's arange; float values default to float32."""
    values = np.arange(start, stop, step, dtype=dtype)
    if dtype is None and values.dtype == np.float64:
        values = values.astype(DEFAULT_FLOAT)
    return _leaf(values, requires_grad)


def eye(n, m=None, dtype=DEFAULT_FLOAT, requires_grad=False) -> Tensor:
    return _leaf(np.eye(n, m, dtype=dtype), requires_grad)


_default_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the generator used wherever no seed is given (as ``torch.manual_seed``)."""
    global _default_generator
    _default_generator = np.random.default_rng(seed)
    return _default_generator


def as_generator(seed=None) -> np.random.Generator:
    """A ``numpy.random.Generator``: a new one from an int seed, a Generator as it is, or
    for ``None`` the library's default generator (seeded by ``manual_seed``)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return _default_generator
    return np.random.default_rng(seed)


def randn(*shape, seed=None, dtype=DEFAULT_FLOAT, requires_grad=False, name=None) -> Tensor:
    """Standard normal samples; ``seed`` is an int or a ``numpy.random.Generator``."""
    values = as_generator(seed).standard_normal(_shape(shape)).astype(dtype, copy=False)
    return _leaf(values, requires_grad, name)


def rand(*shape, seed=None, dtype=DEFAULT_FLOAT, requires_grad=False, name=None) -> Tensor:
    """Uniform samples in [0, 1); ``seed`` is an int or a ``numpy.random.Generator``."""
    values = as_generator(seed).random(_shape(shape)).astype(dtype, copy=False)
    return _leaf(values, requires_grad, name)


from . import engine, ops  # noqa: E402  (both need Tensor defined first)
