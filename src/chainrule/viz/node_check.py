"""A numerical gradient check of every node of a graph, not only of its leaves.

For each tensor t of the graph, backpropagation's d output / d t (the node's upstream
gradient in ``explain``) is compared with centered differences
(out(t + h) - out(t - h)) / 2h, as CS231n recommends. Leaves are nudged in place.
An intermediate value has no storage to nudge, so the graph is built again by
``recompute`` while each operation's result is counted as it is made, and the chosen
one is nudged as it comes out; everything computed from it sees the nudged value.
The rebuilt graph runs in float64 so that the differences mean something. Only the
checking thread's operations are counted and nudged; other threads (a training run in
the playground) compute as usual meanwhile.

Relative errors are read with CS231n's thresholds (``verdict``).
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import engine
from ..engine import no_grad
from ..gradcheck import rel_error
from ..tensor import Tensor
from .graph import forward_order

# CS231n: relative error > 1e-2: the gradient is probably wrong; 1e-2 .. 1e-4: be
# uncomfortable; 1e-4 .. 1e-7: fine for objectives with kinks (ReLU, max), else too high;
# < 1e-7: agreement.
THRESHOLDS = ((1e-7, "agree"), (1e-4, "kinks"), (1e-2, "uncomfortable"))
_ONE_AT_A_TIME = threading.Lock()  # the count is of this thread's operations only
SAMPLES = 6  # elements checked per node (the largest-gradient one and random others)


def verdict(error: float) -> str:
    """CS231n's reading of a relative error: "agree", "kinks", "uncomfortable" or "wrong"."""
    for limit, word in THRESHOLDS:
        if error <= limit:
            return word
    return "wrong"


@contextlib.contextmanager
def _counting_operations(nudge=None):
    """Record every operation result made inside, in order. ``nudge = (k, index, h)``
    adds h to element ``index`` of the k-th result as it is made; ``nudge = (name, index,
    h)`` adds it to the leaf of that name the first time an operation reads it (for a
    ``recompute`` that makes its leaves anew, as a parsed formula does)."""
    made, nudged = [], set()
    owner = threading.get_ident()

    def apply(cls, inputs, params):
        if threading.get_ident() != owner:  # another thread (a training run): untouched
            return engine.apply_unhooked(cls, inputs, params)
        if nudge is not None and isinstance(nudge[0], str):
            for x in inputs:
                if (isinstance(x, Tensor) and x._ctx is None and x.name == nudge[0]
                        and id(x) not in nudged):
                    nudged.add(id(x))
                    x.data = np.array(x.data, dtype=np.float64, copy=True)
                    x.data[nudge[1]] += nudge[2]
        out = engine.apply_unhooked(cls, inputs, params)
        if nudge is not None and len(made) == nudge[0]:
            data = np.array(out.data, dtype=np.float64, copy=True)
            data[nudge[1]] += nudge[2]
            out.data = data
        made.append(out)
        return out

    with _ONE_AT_A_TIME:
        previous, engine.operation_hook = engine.operation_hook, apply
        try:
            yield made
        finally:
            engine.operation_hook = previous


def check_nodes(output: Tensor, recompute, upstreams: dict, h: float = 1e-6,
                seed: int = 0) -> dict:
    """Relative error of each node's analytic gradient against centered differences.

    Args:
        output: the Tensor whose graph is checked (its graph must still be alive).
        recompute: called with no argument, builds the same graph again from the same
            leaf Tensors and returns its output (e.g. ``lambda: (x + y) * z``).
        upstreams: id(tensor) -> d output / d tensor from backpropagation (an array).
        h: the step of the differences.
        seed: chooses the elements checked in nodes with more than ``SAMPLES`` of them.

    Returns: id(tensor) -> {"error": worst relative error, "verdict": ..., "checked":
    number of elements}; a node whose graph could not be matched is left out.
    """
    order = forward_order(output)
    leaves = [t for t in order if t._ctx is None]
    saved = {id(t): t.data for t in leaves}
    try:
        for t in leaves:  # float64 for the differences; restored below
            if t.data.dtype.kind == "f" and t.data.dtype != np.float64:
                t.data = t.data.astype(np.float64)
        with _counting_operations() as made:  # recorded, so that its graph can be walked
            again = recompute()
        if not isinstance(again, Tensor):
            return {}
        position = {id(t): k for k, t in enumerate(made)}
        redone = forward_order(again)
        if len(redone) != len(order) or any(
                (a._ctx is None) != (b._ctx is None)
                or (a._ctx is not None and a._ctx.fn is not b._ctx.fn)
                for a, b in zip(order, redone)):
            return {}  # recompute built another graph: nothing to compare with

        def value(nudge=None):
            with no_grad(), _counting_operations(nudge):
                return float(np.sum(np.asarray(recompute().data, dtype=np.float64)))

        # The differences cannot resolve less than rounding of the output over 2h: an
        # analytic gradient closer than that to the numerical one agrees with it.
        floor = 64 * np.finfo(np.float64).eps * max(1.0, abs(value())) / h
        rng = np.random.default_rng(seed)
        results = {}
        for t, r in zip(order, redone):
            analytic = upstreams.get(id(t))
            k = None if t._ctx is None else position.get(id(r))
            same_leaf = k is None and np.shares_memory(r.data, t.data)
            named_leaf = k is None and not same_leaf and t.name and r.name == t.name
            if analytic is None or (k is None and not (same_leaf or named_leaf)):
                continue  # no gradient reached it, or a leaf it cannot find again
            analytic = np.broadcast_to(np.asarray(analytic, dtype=np.float64), t.shape)
            flat = np.abs(analytic).reshape(-1)
            picks = {int(np.argmax(flat))} if flat.size else set()
            if flat.size > SAMPLES:
                picks |= set(rng.choice(flat.size, SAMPLES - 1, replace=False).tolist())
            else:
                picks = set(range(flat.size))
            worst = 0.0
            for i in sorted(picks):
                index = np.unravel_index(i, t.shape)
                if same_leaf:
                    numeric = _nudge_leaf(t, index, h, value)
                elif named_leaf:
                    numeric = (value((t.name, index, h)) - value((t.name, index, -h))) / (2 * h)
                else:
                    numeric = (value((k, index, h)) - value((k, index, -h))) / (2 * h)
                if abs(analytic[index] - numeric) > floor:
                    worst = max(worst, rel_error(analytic[index], numeric))
            results[id(t)] = {"error": worst, "verdict": verdict(worst), "checked": len(picks)}
        return results
    finally:
        for t in leaves:
            t.data = saved[id(t)]


def _nudge_leaf(t: Tensor, index, h, value) -> float:
    data = t.data
    saved = data[index]
    data[index] = saved + h
    plus = value()
    data[index] = saved - h
    minus = value()
    data[index] = saved
    return (plus - minus) / (2 * h)
