"""``cr.compile(..., check=True)``: run each call eagerly beside its replay and compare.

A call is run eagerly first (recorded, to get every operation's value), everything the
step changes is put back as it was (parameters, gradients, optimizer state, random
generators), then the replay runs with a probe after every operation. The first
operation whose value differs (compared bit for bit, NaN equal to NaN), then the
parameters, gradients, optimizer state and outputs are compared; a difference raises
``CompileCheckError`` with one line naming it. Without a difference the replay's result
stands.
"""

from __future__ import annotations

import copy

import numpy as np

from ..tensor import as_generator
from ..tracing import tracing
from .program import MISS
from .recorder import Recorder


def compare_with_eager(step, key, entry, args, kwargs, arrays):
    from ..errors import CompileCheckError

    program = entry.program
    recording = entry.recording
    before = _Snapshot(program, recording)
    eager = Recorder(arrays)
    tracing.recorder = eager
    try:
        result = step.fn(*args, **kwargs)
    finally:
        tracing.recorder = None
    eager_outputs = [o.copy() for o in _outputs(eager, entry, result)]
    after = _Snapshot(program, recording)
    before.restore()
    probes = {}
    program.em.namespace["_probe"] = lambda k, v: probes.__setitem__(k, np.array(v))
    outputs = program.run(*arrays)
    if outputs is MISS:  # the replay no longer applies: keep eager's result, record again
        after.restore()
        del step._cache[key]
        return step._record(key, args, kwargs, arrays)
    step.replays += 1
    names = [n.fn.name for n in recording.nodes]
    eager_names = [n.fn.name for n in eager.nodes]
    if names != eager_names:
        at = next((i for i, (a, b) in enumerate(zip(names, eager_names)) if a != b),
                  min(len(names), len(eager_names)))
        raise CompileCheckError(
            f"cr.compile check: operation {at} is "
            f"{eager_names[at] if at < len(eager_names) else 'missing'} eagerly but "
            f"{names[at] if at < len(names) else 'missing'} in the recording: the step's "
            "Python code took another path; run it without compile")
    for k, node in enumerate(recording.nodes):
        if k in probes:
            _same(f"operation {k} ({node.fn.name})", eager.values[k], probes[k],
                  CompileCheckError)
    replayed = _Snapshot(program, recording)
    for what, want, got in after.differences(replayed):
        _same(what, want, got, CompileCheckError)
    for i, (want, got) in enumerate(zip(eager_outputs, outputs)):
        _same(f"returned value {i}", want, got, CompileCheckError)
    return entry.rebuild(outputs, ([*args, *(v for _, v in sorted(kwargs.items()))], arrays))


def _outputs(recorder, entry, result):
    found = []

    def walk(value):
        if isinstance(value, tuple | list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        else:
            k = recorder.node_of(value)
            if k is not None:
                found.append(recorder.values[k])

    walk(result)
    return found


def _same(what, want, got, error):
    want, got = np.asarray(want), np.asarray(got)
    if want.shape != got.shape or want.dtype != got.dtype:
        raise error(f"cr.compile check: {what} has shape {got.shape} ({got.dtype}) in the "
                    f"replay but {want.shape} ({want.dtype}) eagerly")
    if not np.array_equal(want, got, equal_nan=want.dtype.kind in "fc"):
        with np.errstate(all="ignore"):
            diff = np.max(np.abs(want.astype(np.float64) - got.astype(np.float64)))
        raise error(f"cr.compile check: {what} differs between the replay and eager code "
                    f"(largest difference {diff:.3g})")


class _Snapshot:
    """Copies of what a step changes: parameters, their gradients, optimizer state,
    the random generators it draws from."""

    def __init__(self, program, recording):
        self.leaves = [(j, leaf, leaf.data.copy(), leaf.grad,
                        None if leaf.grad is None else np.array(leaf.grad, copy=True))
                       for j, leaf in enumerate(recording.leaves)]
        self.optimizers = []
        for opt in program.optimizers:
            states = {}
            for p, state in opt.state.items():
                states[id(p)] = (state, {k: (v.copy() if isinstance(v, np.ndarray)
                                             else copy.deepcopy(v)) for k, v in state.items()})
            self.optimizers.append((opt, states))
        self.generators = []
        for _, args in recording.randoms:
            generator = as_generator(args[0])
            self.generators.append((generator, copy.deepcopy(generator.bit_generator.state)))

    def restore(self):
        for _, leaf, data, grad, values in self.leaves:
            np.copyto(leaf.data, data)
            leaf.grad = grad
            if grad is not None:
                np.copyto(grad, values)
        for _, states in self.optimizers:
            for state, saved in states.values():
                for k in [k for k in state if k not in saved]:
                    del state[k]
                for k, v in saved.items():
                    if isinstance(v, np.ndarray) and isinstance(state.get(k), np.ndarray):
                        np.copyto(state[k], v)
                    else:
                        state[k] = copy.deepcopy(v)
        for generator, state in self.generators:
            generator.bit_generator.state = state

    def differences(self, other):
        """(what, this value, other's value) for everything both snapshots hold."""
        for (j, leaf, data, _, grad), (_, _, data2, _, grad2) in zip(self.leaves,
                                                                      other.leaves):
            label = f"parameter {j} {leaf.shape}" + (f" '{leaf.name}'" if leaf.name else "")
            yield f"{label} after the step", data, data2
            if (grad is None) != (grad2 is None):
                yield f"whether {label} has a gradient", grad is None, grad2 is None
            elif grad is not None:
                yield f"the gradient of {label}", grad, grad2
        for (opt, states), (_, states2) in zip(self.optimizers, other.optimizers):
            for key, (_, saved) in states.items():
                saved2 = states2.get(key, (None, {}))[1]
                for name, value in saved.items():
                    yield (f"{type(opt).__name__} state {name!r} of a parameter", value,
                           saved2.get(name))
