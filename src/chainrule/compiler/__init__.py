"""``cr.compile``: record a training step once, replay it as a flat list of NumPy calls.

    step = cr.compile(train_step)     # train_step(X, y): forward, loss, backward, step
    for X, y in loader:
        loss = step(X, y)

The first call with inputs of given shapes and dtypes runs ``train_step`` eagerly and
records every array operation of it: the forward operations, the backward pass, each
``zero_grad`` and optimizer step, each dropout mask drawn (``recorder``). Later calls
with inputs of the same shapes and dtypes run the recording instead (``program``): no
graph is built; operations write into arrays allocated once; the optimizer updates all
the parameters of a group in one go (``layout``). The numbers are those of eager code,
bit for bit.

What a replay cannot see, and what happens then:

- other input shapes or dtypes (or other non-array arguments): a new recording, kept in
  a small cache (``cache_size``), so an epoch's smaller last batch is recorded once;
- modules switched between train and eval, parameters added, removed or replaced, an
  optimizer's ``param_groups`` or ``state`` replaced or a setting other than ``lr``
  changed, parameters' arrays replaced (``Module.to``): detected, the step is recorded
  again (the learning rate is read at every replay, so schedulers work as they are);
- parameters frozen or unfrozen (``requires_grad``): detected, recorded again;
- a step that reads a value while it runs (``item()``, ``bool()``, ``tolist()``),
  changes a tensor in place, sets ``.grad`` by hand, uses ``autograd.grad``, has forward
  hooks, uses arrays it made itself outside chainrule's operations, or returns a number
  or such an array: detected at the recording, the step then always runs eagerly (with
  a warning);
- NumPy code in the step working directly on ``.data`` or ``.grad`` (say, clipping
  gradients by hand), or Python branches on anything but the inputs' shapes: *not*
  seen. Keep such code outside the compiled function, or check with ``check=True``.

Results: the step's returned tensors (and arrays) are copies, detached from any graph;
``.grad`` of each parameter after a replayed step holds the step's gradient, as after
an eager step. ``CHAINRULE_COMPILE=0`` in the environment turns compilation off.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections import OrderedDict

import numpy as np

from .. import engine
from ..errors import ChainruleError, CompileCheckError  # noqa: F401  (cr.compiler.CompileCheckError)
from ..tensor import Tensor
from ..tracing import tracing
from .layout import Layout
from .program import MISS, Program
from .recorder import Recorder

__all__ = ["compile", "CompiledStep", "CompileCheckError", "enabled"]

_EAGER = object()  # a cache entry for a step that cannot be replayed


def enabled() -> bool:
    """False when the environment says ``CHAINRULE_COMPILE=0`` (compile nothing)."""
    return os.environ.get("CHAINRULE_COMPILE", "1").strip().lower() not in ("0", "false",
                                                                             "no", "off")


def compile(fn=None, *, check=False, cache_size=8):
    """Compile a training step: ``step = cr.compile(train_step)``; also a decorator.

    Args:
        fn: the step, called as ``fn(*args)``; its arguments are arrays, Tensors and
            hashable Python values; it returns Tensors, arrays, or tuples/lists/dicts of
            them (returned as detached copies).
        check: run every call eagerly as well, and raise ``CompileCheckError`` naming the
            first operation (or parameter, gradient, optimizer state) whose value differs
            between the replay and eager code. Slow; for tests and debugging.
        cache_size: how many recordings (one per input shapes and dtypes) to keep.
    """
    if fn is None:
        return functools.partial(compile, check=check, cache_size=cache_size)
    return CompiledStep(fn, check=check, cache_size=cache_size)


class CompiledStep:
    """A step function with its recordings; ``recordings`` and ``replays`` count calls."""

    def __init__(self, fn, check=False, cache_size=8):
        if not callable(fn):
            raise ChainruleError(f"cr.compile: expected the step function, got "
                                 f"{type(fn).__name__}")
        if not isinstance(cache_size, int) or cache_size < 1:
            raise ChainruleError(f"cr.compile: cache_size must be a positive integer, got "
                                 f"{cache_size!r}")
        functools.update_wrapper(self, fn)
        self.fn, self.check, self.cache_size = fn, check, cache_size
        self.recordings = self.replays = 0
        self._cache: OrderedDict = OrderedDict()
        self._layout = Layout()
        self._last = None  # the entry last replayed or recorded (the next call's likely one)

    def __repr__(self):
        return (f"<compiled {getattr(self.fn, '__qualname__', self.fn)!s}: "
                f"{self.recordings} recording(s), {self.replays} replay(s)>")

    def programs(self) -> list[Program]:
        """The replays in the cache (``program.source`` is the generated code)."""
        return [entry.program for entry in self._cache.values() if entry is not _EAGER]

    def __call__(self, *args, **kwargs):
        if not enabled() or tracing.recorder is not None:
            return self.fn(*args, **kwargs)
        last = self._last
        if last is not None and not kwargs and last.takes(args):
            # the common call, a batch like the last one: no cache key to build
            outputs = last.program.run(*args)
            if outputs is not MISS:
                self.replays += 1
                return last.quick_rebuild(outputs, args)
        key, arrays = _signature(args, kwargs)
        entry = self._cache.get(key)
        if entry is _EAGER:
            return self.fn(*args, **kwargs)
        if entry is not None:
            self._cache.move_to_end(key)
            if self.check:
                return self._checked(key, entry, args, kwargs, arrays)
            outputs = entry.program.run(*arrays)
            if outputs is not MISS:
                self.replays += 1
                self._last = None if self.check else entry
                return entry.rebuild(outputs, (_values(args, kwargs), arrays))
            del self._cache[key]
            self._last = None
        return self._record(key, args, kwargs, arrays)

    # ----- recording ------------------------------------------------------------------------
    def _record(self, key, args, kwargs, arrays):
        recorder = Recorder(arrays)
        tracing.recorder = recorder
        try:
            result = self.fn(*args, **kwargs)
        finally:
            tracing.recorder = None
        self.recordings += 1
        entry = _Entry(recorder, result)
        returned = entry.rebuild(tuple(recorder.values[k] for k in entry.output_nodes),
                                 (_values(args, kwargs), arrays))
        del result
        recorder.finish()
        if recorder.problem is not None:
            warnings.warn(f"cr.compile: {getattr(self.fn, '__name__', 'the step')} runs "
                          f"eagerly: {recorder.problem}", stacklevel=3)
            self._cache[key] = _EAGER
        else:
            recorder.output_nodes = entry.output_nodes
            recorder.random_values = recorder._random_arrays
            entry.program = Program(recorder, self._layout, probe=self.check)
            entry.recording = recorder if self.check else None
            entry.plan_quick_calls(key)
            self._cache[key] = entry
            self._last = None if self.check else entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        if self._last is not None and self._last not in self._cache.values():
            self._last = None
        return returned

    # ----- check=True -----------------------------------------------------------------------
    def _checked(self, key, entry, args, kwargs, arrays):
        from .check import compare_with_eager

        return compare_with_eager(self, key, entry, args, kwargs, arrays)


class _Entry:
    """One recording's program and how to rebuild the step's return value from it."""

    def __init__(self, recorder, result):
        self.output_nodes: list[int] = []
        self.program = None
        self.spec = self._describe(recorder, result)
        self.arg_specs = None  # (shape, dtype) of each argument, when all are plain arrays
        self.quick_rebuild = None

    def plan_quick_calls(self, key):
        """Prepare ``takes`` and ``quick_rebuild`` for calls whose arguments are all plain
        arrays (positional), the usual ``step(X, y)``; others take the keyed path."""
        if not all(part[0] == "array" for part in key):
            return
        expression = self._rebuild_expression(self.spec)
        if expression is None:
            return
        namespace = {"_wrap": Tensor._wrap}
        namespace.update({f"k{i}": value for i, value in enumerate(self._constants)})
        self.quick_rebuild = eval(f"lambda outputs, args: {expression}", namespace)
        self.arg_specs = tuple((shape, np.dtype(dtype)) for _, _, shape, dtype in key)

    def takes(self, args) -> bool:
        """Whether ``args`` are plain arrays of the recorded shapes and dtypes."""
        specs = self.arg_specs
        if specs is None or len(args) != len(specs):
            return False
        for a, (shape, dtype) in zip(args, specs):
            if type(a) is not np.ndarray or a.shape != shape or a.dtype != dtype:
                return False
        return True

    def _rebuild_expression(self, spec, top=True):
        """``rebuild`` for one spec as a Python expression over ``outputs`` and ``args``
        (None for specs it does not cover: dicts and named tuples)."""
        if top:
            self._constants = []
        kind, what = spec
        if kind == "tensor":
            return f"_wrap(outputs[{what}].copy())"
        if kind == "array":
            return f"outputs[{what}].copy()"
        if kind == "arg":  # every argument is an array: its value and its array coincide
            return f"args[{what[0]}]"
        if kind == "as_is":
            self._constants.append(what)
            return f"k{len(self._constants) - 1}"
        if kind in (tuple, list):
            items = [self._rebuild_expression(s, top=False) for s in what]
            if any(item is None for item in items):
                return None
            inner = ", ".join(items) + ("," if kind is tuple and len(items) == 1 else "")
            return f"({inner})" if kind is tuple else f"[{inner}]"
        return None

    def _describe(self, recorder, value):
        if isinstance(value, Tensor | np.ndarray):
            k = recorder.node_of(value)
            if k is not None:
                self.output_nodes.append(k)
                return ("tensor" if isinstance(value, Tensor) else "array",
                        len(self.output_nodes) - 1)
            if isinstance(value, Tensor) and value._ctx is None and value.requires_grad:
                return ("as_is", value)  # a parameter: the object itself, always current
            for i, a in enumerate(recorder.arg_arrays):
                if a is not None and (value is a or getattr(value, "data", None) is a):
                    # an argument: at every call, this call's argument (or its array)
                    return ("arg", (i, value is a))
            recorder.refuse("the step returns an array it computed outside chainrule's "
                            "operations, which a replay would return unchanged; return the "
                            "tensors and compute from them outside the step")
            return ("as_is", value)
        if isinstance(value, tuple | list):
            return (type(value), [self._describe(recorder, v) for v in value])
        if isinstance(value, dict):
            return (dict, {k: self._describe(recorder, v) for k, v in value.items()})
        if isinstance(value, int | float | complex | np.generic) and not isinstance(value, bool):
            recorder.refuse(f"the step returns a number ({type(value).__name__}), which a "
                            "replay would return unchanged; return the tensor and read it "
                            "outside the step")
        return ("as_is", value)

    def rebuild(self, outputs, arguments, spec=None):
        """The step's return value from the replay's ``outputs`` (copied) and this call's
        ``arguments`` (its values, then its arrays)."""
        kind, what = self.spec if spec is None else spec
        if kind == "tensor":
            return Tensor._wrap(outputs[what].copy())
        if kind == "array":
            return outputs[what].copy()
        if kind == "arg":
            values, arrays = arguments
            return arrays[what[0]] if what[1] else values[what[0]]
        if kind == "as_is":
            return what
        if kind is dict:
            return {k: self.rebuild(outputs, arguments, s) for k, s in what.items()}
        items = [self.rebuild(outputs, arguments, s) for s in what]
        return kind(items) if kind in (tuple, list) else kind(*items)  # named tuples


def _values(args, kwargs):
    """The call's arguments in the order of ``_signature``'s arrays."""
    return [*args, *(value for _, value in sorted(kwargs.items()))]


def _signature(args, kwargs):
    """The cache key of a call (shapes, dtypes, other values) and its argument arrays."""
    key, arrays = [], []
    for position, value in [*enumerate(args), *sorted(kwargs.items())]:
        if isinstance(value, Tensor):
            if value.requires_grad:
                key.append(("leaf", position, id(value)))
                arrays.append(None)
            else:
                key.append(("tensor", position, value.data.shape, value.data.dtype.str))
                arrays.append(value.data)
        elif isinstance(value, np.ndarray):
            key.append(("array", position, value.shape, value.dtype.str))
            arrays.append(value)
        else:
            try:
                hash(value)
            except TypeError:
                raise ChainruleError(
                    f"cr.compile: argument {position!r} is a {type(value).__name__}; a "
                    "compiled step takes arrays, Tensors and hashable values (make it an "
                    "array)") from None
            key.append(("value", position, type(value), value))
            arrays.append(None)
    return tuple(key), arrays
