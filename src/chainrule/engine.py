"""The computational graph and reverse-mode backpropagation.

Every operation is a ``Function`` with a ``forward`` on NumPy arrays and, beside it, a
``backward`` that turns the *upstream* gradient (d loss / d output) into one *downstream*
gradient per input (d loss / d input), which is the upstream gradient times the node's
*local* gradient. ``Function.apply`` runs ``forward`` and, when an input requires a
gradient, records a node of the graph (``BareContext``), stamped with a tick of one
clock. ``backward`` walks the nodes from the output back to the leaves, newest first:
every input of a node is older than it, so that is an order in which a node's gradient is
complete when its rule runs (a topological order, with no sort).

Backward rules read their inputs from ``ctx.inputs`` and the forward result from
``ctx.out`` and compute with operators and the functions of ``ctx.xp``. In an ordinary
backward pass these are NumPy arrays and ``ctx.xp`` is NumPy-like; with
``create_graph=True`` they are Tensors and ``ctx.xp`` is chainrule itself, so the very
same rule records a differentiable graph of the backward pass (gradients of gradients).
Arrays a rule saved on ``ctx`` during ``forward`` (masks, indices) are constants. A rule
never writes into its upstream gradient and returns a distinct array for each input.

Two jobs are done here once for every operation: a downstream gradient that came out in
a broadcast shape is summed back to its input's shape (``sum_to_shape``), and one in
another dtype is cast back to its input's dtype.
"""

from __future__ import annotations

import dis
import functools
import sys
from heapq import heappop, heappush, heapreplace

import numpy as np

from . import _collector
from .errors import ArgumentError, ChainruleError, GraphError, ShapeError
from .grad_mode import (  # noqa: F401  (the engine's users find grad mode here too)
    GRAD_OFF_THREADS,
    _grad_mode,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from .tensor import LAST_IN_PLACE_CHANGE, TICKS, Tensor, _new_tensor
from .tracing import RECORDING_THREADS, tracing


def sum_to_shape(grad, shape: tuple):
    """Sum a gradient that was broadcast back down to ``shape``.

    Broadcasting copies an input along new leading axes and along axes of size 1; the
    gradient of a copy is the sum of the gradients of its copies (the copy gate), so the
    reduction sums over exactly those axes. Works on arrays and on Tensors alike.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ShapeError(f"sum_to_shape: cannot reduce {grad.shape} to {shape}")
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if extra:
        grad = grad.reshape(shape)
    if grad.shape != shape:
        raise ShapeError(f"sum_to_shape: cannot reduce {grad.shape} to {shape}")
    return grad


# What a backward rule may call through ``ctx.xp``: NumPy-like functions on plain arrays,
# or the same functions recorded on Tensors when the backward pass is itself differentiated.
# Both are built by ``chainrule.ops`` from one table (``ops.RULE_FUNCTIONS``).
ARRAY_MATH = None
TENSOR_MATH = None


# After backward(), a node whose values are all this small keeps them (while still refusing
# a second backward), so that small graphs can be drawn and explained after backward().
KEEP_AFTER_RELEASE = 64


OPERATIONS: dict[str, type] = {}  # every Function by its public name, filled as they are defined



class BareContext:
    """One node of the computational graph, made by ``Function.apply``.

    Holds what the backward rule needs: the inputs (``parents``, a tuple), their forward
    values (``inputs``, a tuple), which of them need a gradient (``needs_input_grad``, a
    tuple of bools) and, for a rule that reads it, the forward result (``out``). After a
    backward pass without ``retain_graph`` these are released.

    The attributes are slots and the containers tuples: a graph holds one node per
    operation, often millions, and every per-node dict or list costs memory and is one
    more object the garbage collector traverses. Each operation records nodes of a class
    of its own (``Function.node_type``), which names the operation as the class attribute
    ``fn`` and has an ``out`` slot only when the rule reads it (``saves_output``): what
    every node of an operation shares is not stored per node. An operation whose
    ``forward`` saves values of its own (masks, axes) records a ``Context``, which adds a
    ``__dict__`` for them; one whose ``forward`` never touches ``ctx`` (add, multiply,
    exp) records a bare node.

    ``saved_at`` is the node's tick (``tensor.TICKS``): when it saved its inputs, which
    orders backward and tells which in-place changes came after; None once a backward
    pass has released the node. ``xp`` is ``ARRAY_MATH``: a rule runs on Tensors
    (``create_graph``) through a ``Context`` made for that call, so no node keeps a slot
    for it.
    """

    __slots__ = ("parents", "inputs", "needs_input_grad", "saved_at")

    fn = None  # the operation: a class attribute of each operation's node class
    out = None  # the forward result; a slot of the node classes of saves_output operations

    def _array_math(self):
        return ARRAY_MATH

    def _set_xp(self, xp):
        if xp is not ARRAY_MATH:
            raise AttributeError("a bare graph node's rule runs on arrays; give the rule a "
                                 "Context to run it on Tensors")

    xp = property(_array_math, _set_xp)

    @property
    def released(self) -> bool:
        """Whether a backward pass without ``retain_graph`` went through this node."""
        return getattr(self, "saved_at", None) is None

    @released.setter
    def released(self, released: bool):
        if released:
            self.saved_at = None
        elif getattr(self, "saved_at", None) is None:
            self.saved_at = next(TICKS)

    def __setstate__(self, state):
        """A node copied (``copy.deepcopy``) or unpickled takes a new tick: its own would tie
        with the original node's, or come from another process's clock, and backward takes
        nodes in the order of their ticks. Its inputs are restored before it (they are in
        its state), so it is still newer than theirs."""
        values, slots = state if isinstance(state, tuple) else (state, None)
        for name, value in {**(values or {}), **(slots or {})}.items():
            setattr(self, name, value)
        if getattr(self, "saved_at", None) is not None:
            self.saved_at = next(TICKS)

    def release(self):
        self.saved_at = None
        out = self.out
        if out is not None and out.size > KEEP_AFTER_RELEASE:
            self._drop_values()
            return
        for value in self.inputs:
            if getattr(value, "size", 1) > KEEP_AFTER_RELEASE:
                self._drop_values()
                return
        # a small node keeps its values for drawings and explanations

    def _drop_values(self):
        self.parents = self.inputs = self.needs_input_grad = None
        if self.out is not None:
            self.out = None


class Context(BareContext):
    """A graph node whose operation saves values of its own in ``forward`` (``ctx.mask =
    ...``): a ``BareContext`` with a ``__dict__`` for them. ``xp`` is a class attribute
    (``ARRAY_MATH``, set by ``chainrule.ops``) that a node may override. Made directly
    (``Context()``), it is a node of no operation: ``fn`` and ``out`` go into its
    ``__dict__`` (the compiler's replays and rules run on Tensors use it so)."""

    __slots__ = ("__dict__",)

    xp = None  # ARRAY_MATH, once chainrule.ops has built it

    def _drop_values(self):
        fn = self.__dict__.get("fn")
        BareContext._drop_values(self)
        self.__dict__.clear()
        if fn is not None:  # still named by the released-graph error
            self.fn = fn


def _node_type(cls, base) -> type:
    """The node class ``cls``'s applications record: a ``base`` (``BareContext``, or
    ``Context`` when ``forward`` saves values), with ``fn`` as a class attribute and an
    ``out`` slot only if the rule reads it."""
    return type(f"{cls.__name__}Node", (base,), {
        "__slots__": ("out",) if cls.saves_output else (),
        "__module__": cls.__module__,
        "__qualname__": f"{cls.__qualname__}.node_type",
        "__doc__": f"A graph node recorded by {cls.__qualname__}.",
        "fn": cls,
    })


def _saves_nothing(forward) -> bool:
    """Whether a ``forward(ctx, ...)`` never refers to ``ctx`` (so stores nothing on it)."""
    code = getattr(forward, "__code__", None)
    if code is None or code.co_argcount == 0:
        return False
    ctx_name = code.co_varnames[0]
    if ctx_name in code.co_cellvars:
        return False
    return all(instruction.argval != ctx_name for instruction in dis.get_instructions(code))


# While a large graph is alive, Python's full collections (which would walk every node
# again and again, finding no cycle) wait; see _collector for why and how.
COLLECTOR_PACING = _collector.install()  # counts each operation's node class as it is made


class _OperationType(type):
    """The type of every ``Function``: it notices a ``forward`` replaced on an operation
    after the class was made (a test patching one rule), because the class's ``apply``
    was fitted to the ``forward`` it had (``_fit_to_forward``)."""

    def __setattr__(cls, name, value):
        super().__setattr__(name, value)
        if name == "forward":
            _refit_after_forward_changed(cls)

    def __delattr__(cls, name):
        super().__delattr__(name)
        if name == "forward":
            _refit_after_forward_changed(cls)


class Function(metaclass=_OperationType):
    """An operation of the graph: ``forward`` on arrays, ``backward`` on gradients.

    Subclasses define ``forward(ctx, *arrays, **params) -> ndarray`` and
    ``backward(ctx, upstream) -> downstream`` (one gradient per input, or ``None`` for an
    input that needs none), and declare what tools read about them:

    - ``name``: the public name, as users call it (``"matmul"``, ``"leaky_relu"``);
      required, and unique among operations;
    - ``symbol``: what a drawing of the graph shows (default: the name);
    - ``elementwise``: True when each output element depends only on the input elements
      at the same position (after broadcasting), so the local gradient is an elementwise
      derivative rather than a Jacobian;
    - ``saves_output``: True when ``backward`` reads ``ctx.out`` (exp, tanh, softmax), so
      the node keeps its output alive until its rule has run.

    Classes whose name starts with ``_`` are shared bases and declare nothing.
    """

    name: str
    symbol: str
    node_type: type = None  # the class of the nodes it records (__init_subclass__)
    _bare_nodes = True  # whether those have no __dict__ (forward never touches ctx)
    elementwise = False
    saves_output = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _fit_to_forward(cls)
        if COLLECTOR_PACING is not None:  # once its apply holds the class too
            COLLECTOR_PACING.count(cls.node_type)
        if cls.__name__.startswith("_"):
            return
        name = cls.__dict__.get("name")
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__}: a Function declares its public name, "
                            'e.g. name = "softplus"')
        known = OPERATIONS.get(name)
        # the same class defined again (a notebook cell run twice) replaces itself
        if known is not None and (known.__module__, known.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise TypeError(f"{cls.__qualname__}: the name {name!r} is already taken by "
                            f"{known.__module__}.{known.__qualname__}")
        if "symbol" not in cls.__dict__:
            cls.symbol = name
        OPERATIONS[name] = cls

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, upstream):
        raise NotImplementedError

    @classmethod
    def shape_error(cls, arrays, params) -> str:
        """The message for inputs whose shapes do not broadcast; names the op and shapes."""
        shapes = " and ".join(str(np.shape(a)) for a in arrays)
        return f"{cls.name}: shapes {shapes} do not broadcast together"

    @classmethod
    def value_error(cls, arrays, params, error: ValueError) -> ChainruleError:
        """The error for inputs NumPy refused. NumPy's message names neither the operation
        nor the user's shapes: a broadcasting failure becomes ``shape_error``'s message,
        anything else NumPy's reason prefixed with the op and the input shapes."""
        reason = str(error)
        if "broadcast" in reason:
            return ShapeError(cls.shape_error(arrays, params))
        shapes = ", ".join(str(np.shape(a)) for a in arrays)
        return ArgumentError(f"{cls.name} of inputs with shapes {shapes}: {reason}")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the operation on ``inputs`` (Tensors, arrays or numbers) and return its
        output Tensor, recording a node when an input requires grad (and grad mode is
        on). An operation whose ``forward`` takes one or two arrays, with or without
        keyword parameters, gets a leaner ``apply`` of the same behaviour
        (``_lean_apply``)."""
        if operation_hook is not None:
            return operation_hook(cls, inputs, params)
        return apply_unhooked(cls, inputs, params)


# Called as ``operation_hook(cls, inputs, params)`` in place of every operation when set
# (tools that watch or nudge each result, as viz.node_check); the hook computes the
# result with ``apply_unhooked``. One module-level check per operation when unset.
operation_hook = None


def apply_unhooked(cls, inputs, params):
    """``cls.apply(*inputs, **params)``, past ``operation_hook``: the general path."""
    # The usual one or two inputs are unrolled and call ``forward`` with positional
    # arrays (a call with ``*arrays`` or an empty ``**params`` costs more than the node's
    # arithmetic on small arrays), and the output Tensor is made here rather than
    # through ``Tensor._wrap``.
    n = len(inputs)
    if n == 2:
        a, b = inputs
        if isinstance(a, Tensor):
            x, grad_a = a.data, a.requires_grad
        else:
            x, grad_a = _forward_value(a), False
        if isinstance(b, Tensor):
            y, grad_b = b.data, b.requires_grad
        elif type(b) is float or type(b) is int:  # x * 0.5: stays a weak Python number
            y, grad_b = b, False
        else:
            y, grad_b = _forward_value(b), False
        arrays = (x, y)
        records = grad_a or grad_b
    elif n == 1:
        a = inputs[0]
        if isinstance(a, Tensor):
            x, records = a.data, a.requires_grad
        else:
            x, records = _forward_value(a), False
        arrays = (x,)
    else:  # a loop, not comprehensions: each of those is a call of its own
        arrays, needs = [], []
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.data)
                needs.append(x.requires_grad)
            else:
                arrays.append(_forward_value(x))
                needs.append(False)
        arrays = tuple(arrays)
        records = True in needs
    # a forward that never reads ctx is given none; its node is made if it is recorded
    ctx = None if cls._bare_nodes else _new_context(cls.node_type)
    try:
        if params:
            data = cls.forward(ctx, *arrays, **params)
        elif n == 2:
            data = cls.forward(ctx, x, y)
        elif n == 1:
            data = cls.forward(ctx, x)
        else:
            data = cls.forward(ctx, *arrays)
    except ChainruleError:
        raise
    except ValueError as error:
        raise cls.value_error(arrays, params, error) from None
    out = _new_tensor(Tensor)  # Tensor._wrap(data, node), inlined
    out.data = data if type(data) is np.ndarray else np.asarray(data)
    out.grad = out._extras = None
    if records and (not GRAD_OFF_THREADS or _grad_mode.enabled):
        if ctx is None:
            ctx = _new_context(cls.node_type)
        if n == 2:  # one shared tuple for each case, not one per node
            ctx.needs_input_grad = _NEEDS_OF_TWO[grad_a][grad_b]
        elif n == 1:
            ctx.needs_input_grad = _NEEDS_OF_ONE[True]
        else:
            ctx.needs_input_grad = tuple(needs)
        ctx.parents, ctx.inputs = inputs, arrays
        # the node's tick: it orders backward, and an input changed in place after it is
        # refused there (PyTorch's version counter)
        ctx.saved_at = next(TICKS)
        if cls.saves_output:
            ctx.out = data
        out.requires_grad, out._ctx = True, ctx
    else:
        out.requires_grad, out._ctx = False, None
    if RECORDING_THREADS and tracing.recorder is not None:
        tracing.recorder.on_operation(cls, inputs, params, out)
    return out


_GENERAL_APPLY = Function.__dict__["apply"].__func__


def _lean_signature(forward) -> tuple[int, bool]:
    """``(arrays, takes_params)`` for a ``forward(ctx, a[, b], param=default, ...)``: how
    many arrays it requires (1 or 2; 0 when it takes ``*arrays`` or more, and gets no lean
    apply) and whether it has parameters with defaults (``axis=None``) too."""
    code = getattr(forward, "__code__", None)
    if code is None or code.co_flags & 0x04:  # *arrays
        return 0, True
    bound = 1 if getattr(forward, "__self__", None) is not None else 0  # a classmethod's cls
    positional = code.co_argcount - bound - 1  # after ctx
    required = positional - len(getattr(forward, "__defaults__", None) or ())
    takes_params = (required < positional or bool(code.co_kwonlyargcount)
                    or bool(code.co_flags & 0x08))  # **params
    return (required if required in (1, 2) else 0), takes_params


def _fit_to_forward(cls):
    """Give operation ``cls`` what its ``forward`` implies: the node type it records (bare
    unless forward saves values on ctx) and, for a forward of one or two arrays, a lean
    ``apply`` made for it. A class that defines ``apply`` itself keeps it."""
    base = BareContext if _saves_nothing(cls.forward) else Context
    kept = cls.__dict__.get("node_type")
    if kept is None or kept.__base__ is not base:  # a refit keeps a node class that fits
        cls.node_type = _node_type(cls, base)
    cls._bare_nodes = base is BareContext
    arity, takes_params = _lean_signature(cls.forward)
    inherited = getattr(cls, "apply", None)
    if "apply" in cls.__dict__ and getattr(inherited, "lean_for", None) is not cls:
        return  # its own apply
    if getattr(inherited, "__func__", None) is not _GENERAL_APPLY and getattr(
            inherited, "lean_for", None) is None:
        return  # an apply a base class defined itself, inherited
    if arity:
        cls.apply = staticmethod(_lean_apply(cls, arity, takes_params))
    elif "apply" in cls.__dict__ or getattr(inherited, "lean_for", None) is not None:
        cls.apply = Function.__dict__["apply"]  # a lean apply of another forward: not ours


def _refit_after_forward_changed(cls):
    """``forward`` was replaced (or deleted) on ``cls`` after the class was made: fit
    ``cls``, and every subclass that inherits this forward, to it again. A lean apply may
    have been handed out already (``Tensor.__add__`` is ``Add.apply``): its closure is
    given the new forward in place, and stays the class's apply unless the new forward
    takes other arrays."""
    if cls is Function:
        return
    todo = [cls]
    while todo:
        op = todo.pop()
        old, old_type = getattr(op, "apply", None), op.__dict__.get("node_type")
        old_type_refs = sys.getrefcount(old_type)
        _fit_to_forward(op)
        if getattr(old, "lean_for", None) is op:
            cells = dict(zip(old.__code__.co_freevars, old.__closure__))
            cells["forward"].cell_contents = op.forward
            cells["bare"].cell_contents = op._bare_nodes
            cells["node_type"].cell_contents = op.node_type
            if getattr(op.apply, "lean_signature", None) == old.lean_signature:
                op.apply = staticmethod(old)
        if op.node_type is not old_type and COLLECTOR_PACING is not None:
            COLLECTOR_PACING.forget(old_type, old_type_refs)
            COLLECTOR_PACING.count(op.node_type)
        todo.extend(sub for sub in op.__subclasses__() if "forward" not in sub.__dict__)


def _lean_apply(cls, arity, takes_params):
    """``cls.apply`` for an operation of one or two arrays: what ``apply_unhooked`` does for
    them, without packing ``*inputs``, the arity branches and the class lookups. A
    forward without parameters gets an apply of exactly its arrays (``apply(a, b)``); one
    with parameters (``axis=``) takes them as keywords, and more arrays than ``arity``
    (linear's optional bias) go the general way. Every elementwise operation on small
    arrays spends about as much on this bookkeeping as on its arithmetic, so each
    operation gets its own: one generic path, made per class (the recording is spelled
    out in each variant, since a call to share it costs as much).

    Two reads are taken out of the calls: ``forward`` is bound here (a lookup on the
    class costs ~45 ns a call; ``_OperationType`` passes a replaced forward on), and grad
    mode and the recorder, kept per thread, are read only when some thread has changed
    them (``GRAD_OFF_THREADS``, ``RECORDING_THREADS``; see _thread_settings)."""
    forward = cls.forward
    bare, node_type, saves_output = cls._bare_nodes, cls.node_type, cls.saves_output
    new_tensor, new_context, ndarray = _new_tensor, _new_context, np.ndarray
    ticks, next_ = TICKS, next

    if arity == 1 and not takes_params:
        def apply(a):
            if operation_hook is not None:
                return operation_hook(cls, (a,), {})
            if isinstance(a, Tensor):
                array, records = a.data, a.requires_grad
            else:
                array, records = _forward_value(a), False
            ctx = None if bare else new_context(node_type)
            try:
                data = forward(ctx, array)
            except ChainruleError:
                raise
            except ValueError as error:
                raise cls.value_error((array,), {}, error) from None
            out = new_tensor(Tensor)
            out.data = data if type(data) is ndarray else np.asarray(data)
            out.grad = out._extras = None
            if records and (not GRAD_OFF_THREADS or _grad_mode.enabled):
                if ctx is None:
                    ctx = new_context(node_type)
                ctx.needs_input_grad = _NEEDS_OF_ONE[True]
                ctx.parents, ctx.inputs = (a,), (array,)
                ctx.saved_at = next_(ticks)  # see apply_unhooked
                if saves_output:
                    ctx.out = data
                out.requires_grad, out._ctx = True, ctx
            else:
                out.requires_grad, out._ctx = False, None
            if RECORDING_THREADS and tracing.recorder is not None:
                tracing.recorder.on_operation(cls, (a,), {}, out)
            return out
    elif arity == 1:
        def apply(a, *more, **params):
            if operation_hook is not None:
                return operation_hook(cls, (a, *more), params)
            if more:
                return apply_unhooked(cls, (a, *more), params)
            if isinstance(a, Tensor):
                x, records = a.data, a.requires_grad
            else:
                x, records = _forward_value(a), False
            ctx = None if bare else new_context(node_type)
            try:
                data = forward(ctx, x, **params) if params else forward(ctx, x)
            except ChainruleError:
                raise
            except ValueError as error:
                raise cls.value_error((x,), params, error) from None
            out = new_tensor(Tensor)
            out.data = data if type(data) is ndarray else np.asarray(data)
            out.grad = out._extras = None
            if records and (not GRAD_OFF_THREADS or _grad_mode.enabled):
                if ctx is None:
                    ctx = new_context(node_type)
                ctx.needs_input_grad = _NEEDS_OF_ONE[True]
                ctx.parents, ctx.inputs = (a,), (x,)
                ctx.saved_at = next_(ticks)  # see apply_unhooked
                if saves_output:
                    ctx.out = data
                out.requires_grad, out._ctx = True, ctx
            else:
                out.requires_grad, out._ctx = False, None
            if RECORDING_THREADS and tracing.recorder is not None:
                tracing.recorder.on_operation(cls, (a,), params, out)
            return out
    elif not takes_params:
        def apply(a, b):
            if operation_hook is not None:
                return operation_hook(cls, (a, b), {})
            if isinstance(a, Tensor):
                array_a, grad_a = a.data, a.requires_grad
            else:
                array_a, grad_a = _forward_value(a), False
            if isinstance(b, Tensor):
                array_b, grad_b = b.data, b.requires_grad
            elif type(b) is float or type(b) is int:  # x * 0.5: stays a weak Python number
                array_b, grad_b = b, False
            else:
                array_b, grad_b = _forward_value(b), False
            ctx = None if bare else new_context(node_type)
            try:
                data = forward(ctx, array_a, array_b)
            except ChainruleError:
                raise
            except ValueError as error:
                raise cls.value_error((array_a, array_b), {}, error) from None
            out = new_tensor(Tensor)
            out.data = data if type(data) is ndarray else np.asarray(data)
            out.grad = out._extras = None
            if (grad_a or grad_b) and (not GRAD_OFF_THREADS or _grad_mode.enabled):
                if ctx is None:
                    ctx = new_context(node_type)
                ctx.needs_input_grad = _NEEDS_OF_TWO[grad_a][grad_b]
                ctx.parents, ctx.inputs = (a, b), (array_a, array_b)
                ctx.saved_at = next_(ticks)
                if saves_output:
                    ctx.out = data
                out.requires_grad, out._ctx = True, ctx
            else:
                out.requires_grad, out._ctx = False, None
            if RECORDING_THREADS and tracing.recorder is not None:
                tracing.recorder.on_operation(cls, (a, b), {}, out)
            return out
    else:
        def apply(a, b, *more, **params):
            if operation_hook is not None:
                return operation_hook(cls, (a, b, *more), params)
            if more:
                return apply_unhooked(cls, (a, b, *more), params)
            if isinstance(a, Tensor):
                x, grad_a = a.data, a.requires_grad
            else:
                x, grad_a = _forward_value(a), False
            if isinstance(b, Tensor):
                y, grad_b = b.data, b.requires_grad
            elif type(b) is float or type(b) is int:  # x * 0.5: stays a weak Python number
                y, grad_b = b, False
            else:
                y, grad_b = _forward_value(b), False
            ctx = None if bare else new_context(node_type)
            try:
                data = forward(ctx, x, y, **params) if params else forward(ctx, x, y)
            except ChainruleError:
                raise
            except ValueError as error:
                raise cls.value_error((x, y), params, error) from None
            out = new_tensor(Tensor)
            out.data = data if type(data) is ndarray else np.asarray(data)
            out.grad = out._extras = None
            if (grad_a or grad_b) and (not GRAD_OFF_THREADS or _grad_mode.enabled):
                if ctx is None:
                    ctx = new_context(node_type)
                ctx.needs_input_grad = _NEEDS_OF_TWO[grad_a][grad_b]
                ctx.parents, ctx.inputs = (a, b), (x, y)
                ctx.saved_at = next_(ticks)
                if saves_output:
                    ctx.out = data
                out.requires_grad, out._ctx = True, ctx
            else:
                out.requires_grad, out._ctx = False, None
            if RECORDING_THREADS and tracing.recorder is not None:
                tracing.recorder.on_operation(cls, (a, b), params, out)
            return out

    apply.lean_for, apply.lean_signature = cls, (arity, takes_params)
    apply.__qualname__ = f"{cls.__qualname__}.apply"
    apply.__doc__ = _GENERAL_APPLY.__doc__
    return apply


_new_context = object.__new__  # Context() without the call through type.__call__
_NEEDS_OF_ONE = ((False,), (True,))  # indexed by whether the input requires grad
_NEEDS_OF_TWO = (((False, False), (False, True)), ((True, False), (True, True)))


def _forward_value(x):
    """What a non-Tensor operand becomes in forward (Tensors give their ``.data``)."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):  # NumPy scalars act as Python numbers, as in PyTorch
        return x.item() if x.dtype.kind in "biuf" else x
    if isinstance(x, bool | int | float):
        return x  # Python numbers stay weakly typed: float32 * 2.0 stays float32
    return np.asarray(x)


def topological_order(roots, allow_released=False) -> list:
    """Tensors that require grad reachable from ``roots``, each after all its inputs.

    Iterative depth-first search, so a chain of any length works (no recursion limit).
    ``allow_released`` lets inspection tools walk released nodes that kept their values.
    """
    order, visited = [], set()
    stack = [root for root in roots if root.requires_grad]
    push, pop, emit, visit = stack.append, stack.pop, order.append, visited.add
    # A tensor is pushed once to be expanded and, marked by a None in front of it, once
    # more to be emitted after everything above it on the stack (its inputs) is done.
    while stack:
        t = pop()
        if t is None:
            emit(pop())
            continue
        if t in visited:
            continue
        visit(t)
        ctx = t._ctx
        if ctx is None:
            emit(t)
            continue
        if ctx.saved_at is None and not (allow_released and ctx.parents is not None):
            raise _released_error(ctx)
        push(t)
        push(None)
        for parent, need in zip(ctx.parents, ctx.needs_input_grad):
            if need and parent not in visited:
                if parent._ctx is None:  # a leaf waits for nothing: emitted at once
                    visit(parent)
                    emit(parent)
                else:
                    push(parent)
    return order


def run_backward(roots, root_grads, *, retain_graph=False, create_graph=False, capture=None,
                 observer=None, allow_released=False):
    """Backpropagate from ``roots`` (seeded with ``root_grads``) through the graph.

    Without ``capture``, gradients are accumulated (``+=``) into the ``.grad`` of leaf
    Tensors and of Tensors that called ``retain_grad()``. With ``capture`` (a list of
    Tensors) nothing's ``.grad`` is touched and the gradients of exactly those Tensors are
    returned in a list (``None`` where no gradient reached one).

    ``observer``, if given, is called as ``observer(tensor, upstream, downstream)`` for
    every tensor in backward order, with ``downstream`` the tuple of gradients sent to
    its inputs (``None`` for a leaf); tools that explain backpropagation use it, with
    ``allow_released`` to go through small graphs a ``backward()`` has already used.
    """
    if tracing.recorder is not None:
        tracing.recorder.on_backward(roots, root_grads, retain_graph, create_graph, capture)
    if capture is None and observer is None and not create_graph:
        _backward_plain(roots, root_grads, retain_graph)
        return None
    order = backward_order(roots, allow_released)
    # Gradients are keyed by the tensors themselves: they hash by identity, and a dict
    # never calls Tensor.__eq__ for a key with an identical hash, which only the same
    # tensor has. (Keying by id() costs a call per lookup.) An entry goes when its
    # tensor is done; ``owned`` keeps ids, so as not to keep done tensors (and their
    # values) alive until the pass ends.
    grads: dict[Tensor, object] = {}
    owned: set[int] = set()  # ids of tensors whose gradient buffer this pass allocated
    captured = dict.fromkeys(capture) if capture is not None else None

    for root, g in zip(roots, root_grads):
        if isinstance(g, Tensor) and not create_graph:
            g = np.asarray(g.data, dtype=root.dtype)
        if root.requires_grad:
            _accumulate(grads, owned, root, g, False, create_graph)

    keep_node = create_graph or observer is not None
    plain = not create_graph  # the gradients are plain arrays
    with set_grad_enabled(create_graph):
        for i in range(len(order) - 1, -1, -1):
            t = order[i]
            order[i] = None  # let intermediate values go as soon as they are done
            upstream = grads.pop(t, None)
            if upstream is None:
                continue
            ctx = t._ctx
            if captured is not None:
                if t in captured:
                    captured[t] = upstream
            elif ctx is None or t._retains_grad:
                _store_grad(t, upstream, id(t) in owned, create_graph)
            if ctx is None:
                if observer is not None:
                    observer(t, upstream, None)
                continue
            # Drop our reference to the node's own output before its rule runs, so that
            # (unless the user holds it) its memory is free while the gradients are made.
            node, t = (t if keep_node else None), None
            if ctx.saved_at is not None and LAST_IN_PLACE_CHANGE[0] < ctx.saved_at:
                _check_unchanged(ctx)
            if create_graph:
                downstream = _call_recorded_backward(ctx, node, upstream)
            else:
                downstream = ctx.fn.backward(ctx, upstream)
                if type(downstream) is not tuple:
                    downstream = (downstream,)
            sent = [] if observer is not None else None
            for parent, need, d in zip(ctx.parents, ctx.needs_input_grad, downstream):
                if need and d is not None:
                    data = parent.data
                    if d.shape != data.shape:
                        d = sum_to_shape(d, data.shape)
                    if d.dtype is not data.dtype and d.dtype != data.dtype:
                        d = d.astype(data.dtype)
                    # An array that owns its memory (base None) and is not the upstream
                    # itself was made for this input alone: later gradients may be added
                    # into it in place.
                    fresh = (plain and d is not upstream and type(d) is np.ndarray
                             and d.base is None)
                    previous = grads.get(parent)
                    if previous is None:  # the first gradient to reach this input
                        grads[parent] = d
                        if fresh:
                            owned.add(id(parent))
                    else:
                        _accumulate(grads, owned, parent, d, fresh, create_graph)
                    if sent is not None:
                        d = d.copy() if fresh else d
                if sent is not None:
                    sent.append(d if need else None)
            if observer is not None:
                observer(node, upstream, tuple(sent))
            if not retain_graph and ctx.saved_at is not None:
                ctx.release()
    if captured is not None:
        return [captured[t] for t in capture]
    return None


def _backward_plain(roots, root_grads, retain_graph):
    """``run_backward`` for what ``backward()`` does: gradients as arrays into ``.grad``,
    no capture, no observer, no graph of the backward pass. The same steps as the
    general loop, with the bookkeeping it pays per node and per edge left out.

    No topological order is made. A node waits on a heap, keyed by its tick, from the
    moment the first gradient reaches its output; the newest waiting node goes next.
    Every input of a node is older than it, so when a node is taken, every node that
    could still send it a gradient is newer and done: its gradient is complete. The
    leaves' ``.grad`` are written at the end. The order is ``backward_order``'s, which
    the other passes walk.

    Whether a gradient array may be summed into in place is read from its reference
    count instead of being tracked per edge: an array that owns its memory and that
    nothing but ``grads`` refers to (no rule's saved values, no other input's entry, no
    caller) can be written without anyone seeing it.
    """
    grads: dict[Tensor, object] = {}
    waiting: list[tuple[int, Tensor]] = []  # (tick, tensor): a heap, the newest first
    leaves: list[Tensor] = []  # the leaves a gradient reached
    for root, g in zip(roots, root_grads):
        if isinstance(g, Tensor):
            g = np.asarray(g.data, dtype=root.dtype)
        if root.requires_grad:
            previous = grads.get(root)
            if previous is not None:
                grads[root] = previous + g
                continue
            grads[root] = g
            ctx = root._ctx
            if ctx is None:
                leaves.append(root)
            elif ctx.saved_at is None:
                raise _released_error(ctx)
            else:
                heappush(waiting, (ctx.saved_at, root))
    g = previous = ctx = None
    ndarray, refcount, keep = np.ndarray, _refcount, KEEP_AFTER_RELEASE
    push, take, swap = heappush, heappop, heapreplace
    last_change = LAST_IN_PLACE_CHANGE[0]
    grad_was_enabled, _grad_mode.enabled = _grad_mode.enabled, False  # rules record nothing
    # The first node that the last rule's gradients reached is held off the heap, and its
    # gradient off ``grads``: it is usually the next one (in a chain the only one), and then
    # costs no heap operation and no dict entry.
    reached, reached_at, reached_grad = None, 0, None
    try:
        while True:
            if reached is not None:
                if waiting and waiting[0][0] < reached_at:  # one on the heap is newer
                    grads[reached] = reached_grad
                    t = swap(waiting, (reached_at, reached))[1]
                    upstream = grads.pop(t)
                else:
                    t, upstream = reached, reached_grad
                reached = reached_grad = None
            elif waiting:
                t = take(waiting)[1]
                upstream = grads.pop(t)
            else:
                break
            ctx = t._ctx
            if t._extras is not None and t._extras.retains_grad:
                _store_grad(t, upstream, False, False)
            t = None  # the output's memory is free while its rule runs (unless held)
            parents = ctx.parents
            if last_change < ctx.saved_at:  # something changed in place after the node
                _check_unchanged(ctx)
            downstream = ctx.fn.backward(ctx, upstream)
            if type(downstream) is not tuple:
                downstream = (downstream,)
            upstream = None
            # whether the node holds a value too big to keep once released (see below)
            big = (out := ctx.out) is not None and out.size > keep
            for parent, value, need, d in zip(parents, ctx.inputs, ctx.needs_input_grad,
                                              downstream):
                if need and d is not None:
                    # ``value``, the input's array, is the shape and dtype to send back
                    if value.size > keep:
                        big = True
                    if d.shape != value.shape:
                        d = sum_to_shape(d, value.shape)
                    if d.dtype is not value.dtype and d.dtype != value.dtype:
                        d = d.astype(value.dtype)
                    if parent is reached:  # another gradient for the held node
                        previous = reached_grad
                        # held by reached_grad, ``previous`` and getrefcount's argument only
                        if (type(previous) is ndarray and previous.base is None
                                and refcount(previous) == 3 and previous.flags.writeable):
                            previous += d
                        else:
                            reached_grad = previous + d
                        continue
                    previous = grads.get(parent)
                    if previous is None:  # the first gradient to reach this input
                        node = parent._ctx
                        if node is None:
                            grads[parent] = d
                            leaves.append(parent)
                        elif node.saved_at is None:
                            raise _released_error(node)
                        elif reached is None:
                            reached, reached_at, reached_grad = parent, node.saved_at, d
                        else:
                            grads[parent] = d
                            push(waiting, (node.saved_at, parent))
                    # held by grads, ``previous`` and getrefcount's argument only
                    elif (type(previous) is ndarray and previous.base is None
                          and refcount(previous) == 3 and previous.flags.writeable):
                        previous += d
                    else:  # a rule's or another input's array too: never written into
                        grads[parent] = previous + d
                elif isinstance(value, ndarray) and value.size > keep:
                    big = True
            # no stale references: to count, nor to keep values alive
            d = downstream = previous = parent = value = out = node = None
            if not retain_graph:  # ctx.release(), inlined: a small node keeps its values
                ctx.saved_at = None
                if big:
                    ctx._drop_values()
        ctx = None
        for t in leaves:
            g = grads.pop(t)
            # ``g`` is this pass's own when only this frame refers to it (here and as
            # getrefcount's argument)
            if t.grad is None and type(g) is ndarray and g.base is None and refcount(g) == 2:
                t.grad = g
            else:
                _store_grad(t, g, False, False)
    finally:
        _grad_mode.enabled = grad_was_enabled


def backward_order(roots, allow_released=False) -> list:
    """The tensors ``backward()`` goes through from ``roots``, in reverse: the leaves, then
    the nodes from the oldest to the newest (by tick). ``_backward_plain`` takes the nodes
    in this order from its heap; every other pass (``autograd.grad``, ``create_graph``,
    the tools' observers, the compiler's replays) walks this list from its end, so that
    all sum the gradients arriving at a tensor in the same order, bit for bit. Released
    nodes a tool walks (``allow_released``) have no tick left: then the topological order
    is used as it is.
    """
    order = topological_order(roots, allow_released)
    leaves = [t for t in order if t._ctx is None]
    nodes = [t for t in order if t._ctx is not None]
    if any(t._ctx.saved_at is None for t in nodes):
        return order
    nodes.sort(key=_tick_of, reverse=True)
    return leaves + nodes


def _tick_of(t):
    return t._ctx.saved_at


def _released_error(ctx) -> GraphError:
    return GraphError(
        f"backward: the graph through '{ctx.fn.name}' was already used by an earlier "
        "backward() and its saved values were released; pass retain_graph=True to the "
        "first backward() to go through it again")


# an interpreter without reference counts never sums in place (0 is never the count)
_refcount = getattr(sys, "getrefcount", lambda x: 0)


def _check_unchanged(ctx):
    """Refuse to backpropagate through values changed in place since the forward pass
    saved them: the gradient would be silently wrong (PyTorch's version counter). Called
    only when some tensor was changed since the node was recorded; each change carries
    the tick at which it was made, so the inputs changed after the node are exactly
    those whose last change has a tick below ``ctx.saved_at`` (ticks count down)."""
    for i, parent in enumerate(ctx.parents):
        extras = parent._extras if isinstance(parent, Tensor) else None
        if extras is not None and extras.changed_at < ctx.saved_at:
            how, label = extras.changed_by[0], parent.name or extras.changed_by[1]
            what = f"'{label}' (shape {parent.shape}, " if label else f"of shape {parent.shape} ("
            raise GraphError(
                f"backward: the tensor {what}input {i + 1} of '{ctx.fn.name}') was changed "
                f"in place{f' by {how}' if how else ''} after the forward pass used it, so its "
                "saved values are gone; run the forward pass again after changing it (e.g. "
                "call load_state_dict or optimizer.step() before the forward, not between "
                "forward and backward)")


def _call_recorded_backward(ctx, t, upstream):
    """Run a rule on Tensors, so that every operation it does is itself recorded. The
    rule gets a Context of its own for the call: the node's values with the Tensors in
    place of their arrays, and ``xp`` recording."""
    rule_ctx = _new_context(Context)
    if isinstance(ctx, Context):
        rule_ctx.__dict__.update(ctx.__dict__)
    rule_ctx.fn, rule_ctx.parents, rule_ctx.saved_at = ctx.fn, ctx.parents, ctx.saved_at
    rule_ctx.needs_input_grad = ctx.needs_input_grad
    rule_ctx.inputs = tuple(p if isinstance(p, Tensor) else a
                            for p, a in zip(ctx.parents, ctx.inputs))
    rule_ctx.out, rule_ctx.xp = t, TENSOR_MATH
    if not isinstance(upstream, Tensor):
        upstream = Tensor._wrap(upstream)
    result = ctx.fn.backward(rule_ctx, upstream)
    return result if isinstance(result, tuple) else (result,)


def _accumulate(grads, owned, key, g, fresh, create_graph):
    """Sum gradients arriving at one tensor from several consumers (gradients add at branches)."""
    previous = grads.get(key)
    if previous is None:
        grads[key] = g
        if fresh:
            owned.add(id(key))
    elif create_graph or id(key) not in owned or not isinstance(previous, np.ndarray):
        # never write into an array a rule may share (NumPy scalars cannot be written)
        grads[key] = previous + g
        owned.add(id(key))
    else:
        previous += g


def _store_grad(t, g, owned, create_graph):
    if create_graph:
        t.grad = g if t.grad is None else t.grad + g
        return
    if t.grad is None:
        # A rule may pass its upstream array straight through (add) or as a view
        # (reshape); .grad must then become an array of the tensor's own.
        t.grad = g if owned and type(g) is np.ndarray else np.array(g, dtype=t.dtype, copy=True)
    elif isinstance(t.grad, np.ndarray) and t.grad.flags.writeable:
        t.grad += g
    else:
        t.grad = t.grad + g


def backward(tensor, gradient=None, retain_graph=None, create_graph=False):
    """Backpropagate from ``tensor`` into the ``.grad`` of every leaf it depends on.

    Args:
        gradient: the upstream gradient d(loss)/d(tensor), same shape as the tensor; may
            be omitted when it holds a single value (it is then 1).
        retain_graph: keep the saved values so that backward() can run through this
            graph again; by default they are released (default: ``create_graph``).
        create_graph: record the backward pass itself, so that the gradients (which
            are then Tensors in ``.grad``) can be differentiated again.
    """
    if not tensor.requires_grad:
        raise GraphError(
            "backward: this tensor does not require grad: none of the tensors it was "
            "computed from has requires_grad=True, or it was computed under no_grad()"
        )
    seed = _seed_gradient(tensor, gradient, "backward")
    run_backward(
        [tensor], [seed], retain_graph=create_graph if retain_graph is None else retain_graph,
        create_graph=create_graph,
    )


# ``tensor.backward()``: the engine, above Tensor in the layers, gives it this method.
Tensor.backward = backward


@functools.cache
def _unit_seed(dtype):
    one = np.ones((), dtype=dtype)
    one.flags.writeable = False
    return one


def _seed_gradient(tensor, gradient, where):
    if gradient is None:
        if tensor.size != 1:
            raise GraphError(
                f"{where}: the output has shape {tensor.shape}; backward() without "
                "gradient= works only for a single value such as a loss; pass "
                f"gradient= an array of shape {tensor.shape} (the upstream gradient)"
            )
        if tensor.ndim == 0:  # the usual loss: one shared read-only 1, never written into
            return _unit_seed(tensor.dtype)
        return np.ones(tensor.shape, dtype=tensor.dtype)
    if not isinstance(gradient, Tensor):  # a Tensor is kept: with create_graph it matters
        gradient = np.asarray(gradient, dtype=tensor.dtype)
    if gradient.shape != tensor.shape:
        raise ShapeError(
            f"{where}: gradient has shape {gradient.shape} but the output has shape "
            f"{tensor.shape}"
        )
    return gradient

