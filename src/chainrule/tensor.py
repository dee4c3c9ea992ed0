"""``Tensor``: a NumPy array that remembers how it was computed, and the factories.

A Tensor made by an operation on Tensors that require gradients carries ``_ctx``, its
node in the computational graph; ``backward()`` walks those nodes back to the leaves
(Tensors made by the user) and leaves each leaf's gradient in ``.grad``. Its operators
and array methods are given to it by ``chainrule.ops``, ``backward`` by the engine.
"""

from __future__ import annotations

import itertools

import numpy as np

from .errors import ChainruleError, DTypeError, GraphError, ShapeError
from .grad_mode import _grad_mode
from .tracing import tracing

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

    # Few slots: a graph holds one Tensor per operation. What most tensors never have (a
    # name, retain_grad(), in-place changes) lives in one ``_extras`` object, made when
    # first needed.
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_extras", "__weakref__")
    __array_ufunc__ = None  # ndarray <op> Tensor defers to Tensor's reflected operator
    __hash__ = object.__hash__  # == is elementwise, identity stays hashable

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        self.data = _as_data(data, dtype)
        self.grad = self._ctx = self._extras = None
        if name is not None:
            self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data, ctx=None):
        """A tensor around an array the library just made: no checks, no copy. With
        ``ctx`` (its node in the graph) it is an operation's output that requires grad."""
        t = _new_tensor(cls)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t.grad = t._extras = None
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

    @property
    def name(self) -> str | None:
        extras = self._extras
        return None if extras is None else extras.name

    @name.setter
    def name(self, value):
        self._own_extras().name = value

    @property
    def version(self) -> int:
        """How many times ``data`` was changed in place (by an optimizer step,
        ``load_state_dict`` or ``mark_changed``). A graph remembers when it saved its
        inputs, and ``backward()`` refuses to use one changed since."""
        extras = self._extras
        return 0 if extras is None else extras.version

    def mark_changed(self, how: str | None = None, label: str | None = None):
        """Record that ``data`` was just written in place, so that a graph that saved the
        old values refuses to go back through them. ``how`` (what wrote it) and ``label``
        (what the writer calls this tensor, e.g. "0.weight") go into that error message.
        Writing into ``.data`` yourself? Call this after."""
        extras = self._extras
        if extras is None:
            extras = self._extras = _Extras()
        extras.version += 1
        # a tick below a graph node's means changed after that node saved it
        extras.changed_at = LAST_IN_PLACE_CHANGE[0] = next(TICKS)
        extras.changed_by = (how, label)
        return self

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()``."""
        self._own_extras().retains_grad = True
        return self

    @property
    def _retains_grad(self) -> bool:
        extras = self._extras
        return extras is not None and extras.retains_grad

    def _own_extras(self) -> _Extras:
        if self._extras is None:
            self._extras = _Extras()
        return self._extras

    def item(self):
        if tracing.recorder is not None:
            tracing.recorder.on_value_read(self, "item()")
        if self.data.size != 1:
            raise ChainruleError(
                f"item(): the tensor has shape {self.shape} ({self.size} elements); "
                "item() needs exactly one"
            )
        return self.data.item()

    def numpy(self):
        return self.data

    def tolist(self):
        if tracing.recorder is not None:
            tracing.recorder.on_value_read(self, "tolist()")
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
        if tracing.recorder is not None:
            tracing.recorder.on_value_read(self, "bool()")
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

    # Arithmetic operators (x + y, x @ w, x[i]) and the array methods (x.sum(), x.exp(),
    # x.reshape(...), x.T) are operations: chainrule.ops gives Tensor each of them, beside
    # the operation it calls (ops/methods.py); backward() comes from the engine. So this
    # module, the bottom layer, imports neither.
    # In-place arithmetic updates the tensor itself, as a parameter update does:
    #     with cr.no_grad():
    #         w -= lr * w.grad
    # The result goes into a new array that replaces ``data``: a graph that saved the
    # old values (w was used before the update) still backpropagates correctly.
    def _in_place(self, ufunc, other):
        if self.requires_grad and _grad_mode.enabled:
            if self._ctx is None:
                raise GraphError(
                    "a leaf tensor that requires grad cannot be changed in place while "
                    "gradients are recorded; update it inside `with cr.no_grad():`")
            return NotImplemented  # inside a graph: fall back to a new tensor (a = a + b)
        if tracing.recorder is not None:
            tracing.recorder.on_in_place(self, ufunc)
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

    def __pos__(self):
        return self

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
    def argmax(self, axis=None):
        return Tensor._wrap(self.data.argmax(axis))

    def argmin(self, axis=None):
        return Tensor._wrap(self.data.argmin(axis))

    def any(self, axis=None):
        return Tensor._wrap(self.data.any(axis))

    def all(self, axis=None):
        return Tensor._wrap(self.data.all(axis))


class _Extras:
    """What few tensors have: a name, a request to keep a non-leaf's gradient, and the
    in-place changes made to its values (how many, the last one's writer, and the
    process-wide count at which it was made)."""

    __slots__ = ("name", "retains_grad", "version", "changed_by", "changed_at")

    def __init__(self):
        self.name, self.retains_grad, self.version = None, False, 0
        self.changed_by, self.changed_at = (None, None), 0

    def __setstate__(self, state):
        """Copied or unpickled, a change keeps its place before the nodes restored with it
        (``BareContext.__setstate__``) on this process's clock, not the clock it came
        from."""
        for name, value in state[1].items():
            setattr(self, name, value)
        if self.changed_at != 0:
            self.changed_at = LAST_IN_PLACE_CHANGE[0] = next(TICKS)


# One clock for the events backward() orders: every graph node recorded and every
# in-place change (``mark_changed``) takes the next tick. A node's inputs are recorded
# before it, so walking nodes from the smallest tick up is a valid backward order with no
# topological sort. The ticks count down (-1, -2, ...) so that the newest node is the
# smallest, the one a min-heap gives first.
TICKS = itertools.count(-1, -1)

# The tick of the latest in-place change (0: none yet, later than every tick). A node
# recorded after it (a smaller tick) saw inputs nothing has written since, and backward()
# checks nothing more for it.
LAST_IN_PLACE_CHANGE = [0]

_new_tensor = object.__new__  # a Tensor without the call through type.__call__ and __init__


def data_of(x):
    """The array of a Tensor; anything else (an array, a number) as it is."""
    return x.data if isinstance(x, Tensor) else x


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
    if name is not None:
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

