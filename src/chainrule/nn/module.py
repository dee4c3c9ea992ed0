"""``Module``, the building block of networks, and ``Parameter``, a learnable tensor.

A Module registers the Parameters and sub-Modules assigned to its attributes, so that
``parameters()``, ``state_dict()`` and ``zero_grad()`` reach every one of them.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Iterator, NamedTuple

import numpy as np

from ..errors import ChainruleError, DTypeError, ShapeError
from ..tensor import Tensor
from ..tracing import tracing


class Parameter(Tensor):
    """A Tensor that is a learnable parameter of a Module: it requires grad."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class LoadResult(NamedTuple):
    missing_keys: list
    unexpected_keys: list


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``remove()`` takes the hook away."""

    def __init__(self, hooks: dict, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        self._hooks.pop(self._key, None)
        _structure[0] += 1


# Labels for drawings and explanations: when an outermost Module is called, its parameters
# are remembered under their ``named_parameters()`` names and its input array as "X".
# Only weak references are kept, so nothing stays alive because it was drawn.
_labels: dict[int, tuple] = {}


class _Calls(threading.local):
    running = False  # whether a Module call is running in this thread (an outermost one)


_calls = _Calls()


def label_of(obj) -> str | None:
    """The label a model call gave ``obj`` ("0.weight", "X"), or None."""
    entry = _labels.get(id(obj))
    return entry[1] if entry is not None and entry[0]() is obj else None


def _remember(obj, label):
    key = id(obj)

    def forget(ref, key=key):
        if _labels.get(key, (None,))[0] is ref:
            del _labels[key]

    try:
        _labels[key] = (weakref.ref(obj, forget), label)
    except TypeError:  # a value that cannot be weakly referenced is not labelled
        pass


# Bumped whenever any module's parameters, submodules, attributes, mode (train/eval) or
# forward hooks may have changed: an outermost call walks its parameters for their labels
# only when they can be new, and a compiled step re-checks the modules it ran only then.
_structure = [0]


def _remember_labels(module, args):
    if module.__dict__.get("_labelled_at") != _structure[0]:
        for name, p in module.named_parameters():
            if p.name is None:
                _remember(p, name)
        module.__dict__["_labelled_at"] = _structure[0]
    if not args:
        return
    x = args[0]
    if isinstance(x, np.ndarray) or (isinstance(x, Tensor) and x.name is None):
        entry = _labels.get(id(x))  # the same input as the last call's: labelled already
        if entry is None or entry[1] != "X" or entry[0]() is not x:
            _remember(x, "X")


class Module:
    """Base class of every layer and network; subclasses define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_hooks", {})

    # ----- registration on attribute assignment -----------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise ChainruleError(f"{type(self).__name__}: call super().__init__() in __init__ "
                                 "before assigning attributes")
        if name in self._buffers and not isinstance(value, Parameter | Module):
            self._buffers[name] = None if value is None else np.asarray(
                value.data if isinstance(value, Tensor) else value)
            return
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        _structure[0] += 1
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        # Also an ordinary attribute: reading self.weight in forward() is then a plain
        # lookup, not a search of the registries.
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Only called when normal lookup fails: look in the registries.
        for registry in ("_parameters", "_modules", "_buffers"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        self.__dict__.pop(name, None)
        _structure[0] += 1

    def register_buffer(self, name: str, array):
        """A state array that is saved in ``state_dict`` but not learned (no gradient)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = None if array is None else np.asarray(array)

    def register_parameter(self, name: str, param):
        if param is None:
            self._parameters.pop(name, None)
            _structure[0] += 1
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param if isinstance(param, Parameter) else Parameter(param))

    # ----- calling ------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward(); a "
                                  "Module subclass computes its output there")

    def __call__(self, *args, **kwargs):
        if tracing.recorder is not None:  # a compiled step guards the modules it ran
            tracing.recorder.on_module_call(self)
        calls = _calls
        if calls.running:  # inside another module's call: one read of the thread's flag
            output = self.forward(*args, **kwargs)
        else:
            _remember_labels(self, args)
            calls.running = True
            try:
                output = self.forward(*args, **kwargs)
            finally:
                calls.running = False
        if self._forward_hooks:
            for hook in list(self._forward_hooks.values()):
                result = hook(self, args, output)
                if result is not None:
                    output = result
        return output

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, inputs, output)`` after every forward; a hook that returns
        a value replaces the output. Returns a handle whose ``remove()`` unregisters it."""
        key = object()
        self._forward_hooks[key] = hook
        _structure[0] += 1
        return RemovableHandle(self._forward_hooks, key)

    # ----- traversal ----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _every_parameter(self):
        """(dotted name, parameter) for every place a parameter sits, shared ones included."""
        for module_name, module in self.named_modules():
            for name, p in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), p

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, p in module._parameters.items():
                if id(p) not in seen:  # a parameter shared by two layers is listed once
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter, in ``named_parameters()``'s order, each shared one once.

        Called at every step (an L2 term, an optimizer made each epoch), so the list is
        kept until the structure of any module may have changed (``_structure``): then
        most calls are a lookup instead of a walk of the modules and their names."""
        if not recurse:
            return (p for _, p in self.named_parameters(recurse=False))
        kept = self.__dict__.get("_parameter_list")
        if kept is None or kept[0] != _structure[0]:
            kept = (_structure[0], tuple(p for _, p in self.named_parameters()))
            self.__dict__["_parameter_list"] = kept
        return iter(kept[1])

    def named_buffers(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def apply(self, fn):
        """Call ``fn`` on every sub-module (children first) and on this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ----- modes and gradients ------------------------------------------------------------
    def train(self, mode: bool = True):
        """Training mode (dropout active); ``eval()`` switches it off."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        _structure[0] += 1
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True):
        """Reset the gradients of every parameter (to None, or to zeros in place)."""
        if tracing.recorder is not None:
            tracing.recorder.on_zero_grad(self, set_to_none)
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def to(self, dtype):
        """Cast every parameter and buffer to ``dtype`` (e.g. ``cr.float64`` to check
        gradients); do it before making an optimizer, which holds the arrays."""
        for m in self.modules():
            for p in m._parameters.values():
                p.data, p.grad = p.data.astype(dtype), None
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ----- state ----------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Every parameter and buffer by its dotted name, as a copy of its array."""
        state = OrderedDict()
        for name, p in self._every_parameter():
            state[name] = p.data.copy()
        for name, b in self.named_buffers():
            state[name] = np.array(b, copy=True)
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> LoadResult:
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        With ``strict``, missing keys, unexpected keys and shape mismatches are each named
        in the error; without it, shape mismatches still fail and the key lists are
        returned.
        """
        own = dict(self._every_parameter())
        if not hasattr(state_dict, "keys"):
            raise ChainruleError(f"load_state_dict: expected a mapping of names to arrays "
                                 f"(a state_dict()), got {type(state_dict).__name__}")
        own_buffers = {n: (m, key) for mn, m in self.named_modules()
                       for key, value in m._buffers.items() if value is not None
                       for n in [f"{mn}.{key}" if mn else key]}
        expected = list(own) + list(own_buffers)
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own and k not in own_buffers]
        mismatched = []
        shapes = {name: p.shape for name, p in own.items()}
        shapes.update({name: np.shape(module._buffers[key])
                       for name, (module, key) in own_buffers.items()
                       if module._buffers[key] is not None})
        for name, shape in shapes.items():
            if name in state_dict and np.shape(state_dict[name]) != shape:
                mismatched.append(f"{name}: checkpoint {np.shape(state_dict[name])}, "
                                  f"model {shape}")
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatch for " + "; ".join(mismatched))
        if problems:
            raise ShapeError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for name in expected:
            if name in state_dict:
                values = np.asarray(state_dict[name])
                if values.dtype.kind not in "biuf":
                    raise DTypeError(f"load_state_dict: {name} holds {values.dtype} values; "
                                     "parameters take numbers")
        for name, p in own.items():
            if name in state_dict:
                p.data[...] = np.asarray(state_dict[name])
                p.mark_changed("load_state_dict", name)
        for name, (module, key) in own_buffers.items():
            if name in state_dict:
                module._buffers[key] = np.array(state_dict[name], copy=True)
        return LoadResult(missing, unexpected)

    # ----- state that is not an array ---------------------------------------------------------
    def get_extra_state(self):
        """State of this module that is not a parameter or buffer (as PyTorch's hook of the
        same name), e.g. a random generator's position; None when there is none. Override
        it together with ``set_extra_state``. It is kept out of ``state_dict()``, which
        holds arrays only, and saved by the trainer beside it (``extra_states()``)."""
        return None

    def set_extra_state(self, state):
        """Restore what ``get_extra_state`` returned."""

    def extra_states(self) -> dict:
        """``{module name: get_extra_state()}`` for every submodule that has extra state."""
        states = {}
        for name, module in self.named_modules():
            state = module.get_extra_state()
            if state is not None:
                states[name] = state
        return states

    def load_extra_states(self, states: dict):
        """Restore what ``extra_states()`` returned; names must match this model's."""
        own = dict(self.named_modules())
        wanted = {name for name, m in own.items() if m.get_extra_state() is not None}
        if not isinstance(states, dict) or set(states) != wanted:
            got = sorted(states) if isinstance(states, dict) else type(states).__name__
            raise ShapeError(f"load_extra_states into {type(self).__name__}: expected extra "
                             f"state for {sorted(wanted)}, got {got}")
        for name, state in states.items():
            own[name].set_extra_state(state)

    # ----- display --------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"
