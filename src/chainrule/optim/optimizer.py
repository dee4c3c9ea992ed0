"""``Optimizer``: the base class that turns gradients into parameter updates.

An optimizer holds *parameter groups* (``param_groups``: a list of dicts, each with the
``"params"`` it updates and its hyperparameters such as ``"lr"``) and a per-parameter
``state`` (momentum buffers, moving averages, step counts). ``step()`` walks every
parameter whose ``.grad`` is not ``None`` and updates its array in place, as PyTorch's
``torch.optim`` does; ``state_dict()`` / ``load_state_dict()`` save and restore all of it
in PyTorch's layout, with parameters referred to by their position.

Memory: every update writes into ``p.data`` itself (its array object never changes) and
into the state's buffers. The intermediate results of one update live in parameter-sized
scratch arrays (a ``Scratch`` per parameter, kept in ``optimizer._scratch``, not in
``state``: they carry nothing from one step to the next and are not saved). Each is made
the first time an update asks for it by name, so a rule only pays for what it uses.
"""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from ..engine import enable_grad
from ..errors import CheckpointError, OptimizerError, ShapeError
from ..tensor import Tensor
from ..tracing import tracing


def check_hyperparameter(name, value, low=0.0, high=None, high_inclusive=False):
    """Raise ``OptimizerError`` unless ``low <= value`` (and ``value < high`` if given)."""
    try:  # np.all: a population's hyperparameter holds one value per member
        ok = bool(np.all(value >= low)) and (high is None or bool(np.all(
            (value < high) | (high_inclusive & (value == high)))))
    except TypeError:
        raise OptimizerError(f"invalid {name}: {value!r} is not a number") from None
    if not ok:
        bound = "" if high is None else f" and {'<=' if high_inclusive else '<'} {high}"
        raise OptimizerError(f"invalid {name}: {value!r} (it must be >= {low}{bound})")


class Scratch(dict):
    """Named parameter-sized arrays for one update's intermediates.

    ``scratch["work"]`` is made (uninitialised, the parameter's shape, dtype and memory
    order: "C" row-major, "F" column-major, as ``Linear.weight``) the first time it is
    asked for and the same array is returned at every later step, so a step allocates
    nothing. The lookup of an existing array is a plain dict lookup. ``array`` is the
    parameter array it was last checked against (``Optimizer._work``).
    """

    __slots__ = ("shape", "dtype", "order", "array")

    def __init__(self, shape, dtype, order="C"):
        super().__init__()
        self.shape, self.dtype, self.order, self.array = shape, dtype, order, None

    def __missing__(self, name):
        array = self[name] = np.empty(self.shape, dtype=self.dtype, order=self.order)
        return array


class Optimizer:
    """Base class of the optimizers: parameter groups, state, ``zero_grad`` and saving.

    Subclasses pass their hyperparameters' defaults (a dict) and implement
    ``_update(param, grad, state, group, scratch)``, which changes the array ``param``
    (the parameter's ``.data``) in place given ``grad`` (same shape), the parameter's
    ``state`` dict, its ``group`` and its ``Scratch``, with the operations of
    ``chainrule.optim.inplace``. They may override ``_check_group`` to validate their
    hyperparameters and ``_init_state`` to fill a parameter's state when it joins.

    Args:
        params: an iterable of Tensors, or of dicts ``{"params": [...], "lr": ...}`` whose
            keys override the defaults for that group.
        defaults: every hyperparameter with its default value.
    """

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise OptimizerError(
                "params must be an iterable of Tensors or of dicts, not a single Tensor "
                "(wrap it in a list: [tensor])"
            )
        if hasattr(params, "parameters") and callable(params.parameters):
            raise OptimizerError(f"params must be the parameters, not the "
                                 f"{type(params).__name__} itself: pass model.parameters()")
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        self._scratch = {}
        groups = list(params)
        if not groups:
            raise OptimizerError("the optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----- parameter groups -------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a group of parameters with its own hyperparameters (missing ones default).

        Useful to unfreeze layers during training. A parameter may belong to one group only.
        """
        if not isinstance(param_group, dict):
            raise OptimizerError(f"a parameter group must be a dict, not "
                                 f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise OptimizerError('a parameter group needs a "params" entry')
        if isinstance(params, set):
            raise OptimizerError("parameters must be given in an ordered collection (a list), "
                                 "not a set, so that saved states match them")
        params = [params] if isinstance(params, Tensor) else list(params)
        for i, p in enumerate(params):
            self._check_parameter(p, i)
        if len({id(p) for p in params}) != len(params):
            raise OptimizerError("a parameter group lists the same parameter more than once")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        group["params"] = params
        self._check_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise OptimizerError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)
        for p in params:
            state = {}
            self._init_state(state, p.data, group)
            if state:  # no entry for rules that start their state on the first step
                self.state[p] = state

    @staticmethod
    def _check_parameter(p, i):
        if not isinstance(p, Tensor):
            raise OptimizerError(f"optimizers update Tensors; parameter {i} is a "
                                 f"{type(p).__name__}")
        if p.dtype.kind != "f":
            raise OptimizerError(f"parameter {i} has dtype {p.dtype}; only floating-point "
                                 "tensors can be optimized")
        if not p.is_leaf:
            raise OptimizerError(f"parameter {i} is not a leaf tensor (it was computed from "
                                 "others); optimize the tensors it was computed from")

    def _check_group(self, group):
        """Validate a group's hyperparameters (subclasses check theirs)."""
        check_hyperparameter("learning rate (lr)", group["lr"])

    def _init_state(self, state, param, group):
        """Fill a parameter's ``state`` when it joins (most rules start theirs lazily, on
        the parameter's first step; nothing to do here)."""

    # ----- gradients and steps ----------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter before the next backward pass.

        With ``set_to_none=True`` (PyTorch 2's default) ``.grad`` becomes ``None``, so a
        parameter that receives no gradient is skipped by ``step()``; with ``False`` the
        gradient arrays are filled with zeros in place and reused by the next backward.
        """
        if tracing.recorder is not None:
            tracing.recorder.on_zero_grad(self, set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif isinstance(p.grad, np.ndarray) and p.grad.flags.writeable:
                    p.grad.fill(0)
                else:  # a Tensor from create_graph=True, or a read-only array
                    p.grad = np.zeros_like(p.data)

    def step(self, closure=None):
        """Update every parameter that has a gradient, in place; return ``closure()``'s loss.

        Args:
            closure: optional function that recomputes the loss (zero_grad, forward,
                backward) and returns it; it runs, with gradients enabled, before the update.
        """
        if tracing.recorder is not None:
            tracing.recorder.on_optimizer_step(self, closure)
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        how = f"{type(self).__name__}.step()"
        state, update = self.state, self._update
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if type(grad) is not np.ndarray:
                    grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
                data = p.data
                if grad.shape != data.shape:
                    raise ShapeError(f"{type(self).__name__}.step: a parameter of shape "
                                     f"{p.shape} has a gradient of shape {grad.shape}")
                update(data, grad, state[p], group, self._work(p))
                p.mark_changed(how)
        return loss

    def _update(self, param, grad, state, group, scratch):
        raise NotImplementedError

    def _work(self, p):
        """The parameter's ``Scratch``, reused across steps (remade if p changed shape,
        dtype or memory order). Checked again only when ``p.data`` is another array
        than at the last check: an array's dtype and memory order never change."""
        scratch, data = self._scratch.get(p), p.data
        if scratch is not None and scratch.array is data and scratch.shape == data.shape:
            return scratch
        order = memory_order(data)
        if (scratch is None or scratch.shape != data.shape or scratch.dtype != data.dtype
                or scratch.order != order):
            scratch = self._scratch[p] = Scratch(p.shape, p.dtype, order)
        scratch.array = data
        return scratch

    # ----- saving and loading -----------------------------------------------------------
    def state_dict(self):
        """A snapshot of the optimizer: ``{"state": {index: {...}}, "param_groups": [...]}``.

        Parameters are numbered in the order of the groups (PyTorch's layout); each
        group lists its parameters' numbers under ``"params"``. Arrays are copies, so the
        snapshot does not change as training goes on. Values are NumPy arrays, Python
        numbers, bools, strings, lists, tuples and dicts only.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            saved = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            saved["params"] = [index.setdefault(p, len(index)) for p in group["params"]]
            groups.append(saved)
        state = {
            index[p]: {k: _copy_value(v) for k, v in s.items()}
            for p, s in self.state.items() if p in index and s
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a snapshot from ``state_dict()`` onto this optimizer's parameters.

        The groups must have the same numbers of parameters and the saved arrays the
        shapes of the parameters they belong to; arrays are copied (cast to each
        parameter's dtype), so the given dict can be changed or reused afterwards.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise CheckpointError('an optimizer state dict has the keys "state" and '
                                  '"param_groups"')
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise CheckpointError(f"the state dict has {len(saved_groups)} parameter groups; "
                                  f"this optimizer has {len(self.param_groups)}")
        id_to_param = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise CheckpointError(
                    f"parameter group {i} has {len(saved['params'])} parameters in the state "
                    f"dict and {len(group['params'])} in this optimizer")
            missing = [k for k in self.defaults if k not in saved]
            if missing:
                raise CheckpointError(
                    f"parameter group {i} of the state dict lacks {', '.join(missing)}: it "
                    f"was not saved by a {type(self).__name__}")
            id_to_param.update(zip(saved["params"], group["params"]))
        new_state = defaultdict(dict)
        for key, values in state_dict["state"].items():
            if isinstance(key, str) and key.isdigit():
                key = int(key)  # a checkpoint format whose keys are strings (JSON)
            if key not in id_to_param:
                raise CheckpointError(f"the state dict has state for parameter {key!r}, "
                                      "which none of its parameter groups lists")
            p = id_to_param[key]
            new_state[p] = {name: _load_value(v, p, key, name) for name, v in values.items()}
        for group, saved in zip(self.param_groups, saved_groups):
            params = group["params"]
            group.clear()
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            group["params"] = params
        self.state = new_state
        self._scratch = {}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])


def _copy_value(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


def _load_value(value, p, key, name):
    """A state value ready for parameter ``p``: arrays copied, shape-checked and cast."""
    if isinstance(value, Tensor):
        value = value.data
    if name == "step" and isinstance(value, np.ndarray | np.generic) and np.ndim(value) == 0:
        return float(value)  # a step count saved as a 0-d array
    if isinstance(value, np.ndarray):
        if value.shape != p.shape:
            raise CheckpointError(f"state {name!r} of parameter {key} has shape {value.shape}; "
                                  f"the parameter has shape {p.shape}")
        # in the parameter's memory order, so the update never mixes layouts
        return np.array(value, dtype=p.dtype, order=memory_order(p.data), copy=True)
    return copy.deepcopy(value)


def memory_order(array) -> str:
    """"F" for an array stored column-major (and not also row-major), else "C": the
    order in which a parameter's state and scratch arrays are made."""
    flags = array.flags
    return "F" if flags.f_contiguous and not flags.c_contiguous else "C"
