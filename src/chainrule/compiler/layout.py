"""Parameters moved into flat arrays, so that an optimizer updates many at once.

A ``Bucket`` holds the parameters of one parameter group that a step updates together:
their ``.data``, their gradients and every array of their optimizer state become views
of one flat array each (the values are copied in once; ``p.data`` is then that view, and
``state["exp_avg"]`` and the others too). The optimizer's own update rule, run once on
the flat arrays, then does for all of them what it would do for each: for an update rule
that treats every element alone (SGD, Adam, AdamW, RMSprop) the numbers are the same.

The ``Layout`` of a compiled step keeps its buckets, shared by all of its recordings
(so the smaller last batch of an epoch reuses the same flat arrays).
"""

from __future__ import annotations

import numpy as np

from ..optim import SGD, Adam, AdamW, RMSprop
from ..optim.optimizer import Optimizer, Scratch

# Update rules that act on each element alone, so one call on a flat array is exact.
ELEMENTWISE_UPDATES = (SGD, Adam, AdamW, RMSprop)

# An update rule passes over its arrays a dozen times; run on slices of about this many
# elements (at least this many, unless the bucket is smaller: each slice costs a call of
# the rule), the parameter, gradient, state and scratch slices (~5 MB in float32) stay in
# the cache from one pass to the next instead of streaming through memory each time.
CHUNK = 262_144


class Bucket:
    """Parameters of one group whose data, gradients and state are views of flat arrays."""

    def __init__(self, optimizer, group, params):
        self.optimizer, self.group, self.params = optimizer, group, tuple(params)
        dtype = params[0].dtype
        sizes = [p.size for p in params]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        total = int(offsets[-1])

        def views(flat):  # each in its parameter's memory order (Linear.weight: "F")
            return [_shaped_like(flat[a:b], p.data) for p, a, b in
                    zip(params, offsets[:-1], offsets[1:])]

        self.data, self.grad = np.empty(total, dtype), np.zeros(total, dtype)
        self.data_views, self.grad_views = views(self.data), views(self.grad)
        for p, view in zip(params, self.data_views):
            view[...] = p.data
            p.data = view
        self.state = optimizer.state
        self.states = [optimizer.state[p] for p in params]
        first = self.states[0]
        self.array_keys = [k for k, v in first.items() if isinstance(v, np.ndarray)]
        self.scalar_keys = [k for k in first if k not in self.array_keys]
        self.flat_state, self.state_views = {}, []
        for key in self.array_keys:
            flat = np.empty(total, dtype)
            for state, view in zip(self.states, views(flat)):
                view[...] = state[key]
                state[key] = view
                self.state_views.append((state, key, view))
            self.flat_state[key] = flat
        for p in params:  # the per-parameter scratch arrays are not needed any more
            optimizer._scratch.pop(p, None)
        # (data, grad, state, scratch) slices, each updated by one call of the rule; each
        # slice has its own Scratch, whose arrays the rule makes at its first update
        count = max(1, total // CHUNK)  # equal slices of CHUNK to 2 * CHUNK elements
        edges = [total * i // count for i in range(count + 1)]
        self.chunks = [(self.data[a:b], self.grad[a:b],
                        {k: flat[a:b] for k, flat in self.flat_state.items()},
                        Scratch((b - a,), dtype))
                       for a, b in zip(edges[:-1], edges[1:])]
        self.kernel_count = 14 * len(self.chunks)  # about 14 NumPy calls per rule call

    @property
    def nbytes(self) -> int:
        """The flat gradient and the scratch arrays the update rule has made so far."""
        return self.grad.nbytes + sum(a.nbytes for *_, scratch in self.chunks
                                      for a in scratch.values())

    @staticmethod
    def fits(optimizer, p):
        """Whether parameter ``p`` can live in a flat array of ``optimizer``'s bucket."""
        state = optimizer.state.get(p, {})
        flags = p.data.flags
        return ((flags.c_contiguous or flags.f_contiguous) and isinstance(p.grad, np.ndarray)
                and all(v.shape == p.shape and v.dtype == p.dtype
                        for v in state.values() if isinstance(v, np.ndarray)))

    def signature_of(self):
        return _signature(self.optimizer, self.group, self.params)

    def intact(self) -> bool:
        """The parameters and their state are still the views (nobody replaced them)."""
        if self.optimizer.state is not self.state:
            return False
        for p, view, state in zip(self.params, self.data_views, self.states):
            if p.data is not view or self.state.get(p) is not state:
                return False
        for state, key, view in self.state_views:
            if state.get(key) is not view:
                return False
        return True

    def ready(self) -> bool:
        """At the step: every gradient is in the flat gradient array and the parameters
        share their step counts, as when the bucket was made."""
        for p, view in zip(self.params, self.grad_views):
            if p.grad is not view:
                return False
        first = self.states[0]
        for key in self.scalar_keys:
            value = first.get(key)
            for state in self.states:
                if state.get(key) != value:
                    return False
        return True

    def update(self):
        """The optimizer's update rule on the flat arrays, one cache-sized slice at a
        time (each element sees the very operations it would see alone)."""
        first, update, group = self.states[0], self.optimizer._update, self.group
        for data, grad, state, scratch in self.chunks:
            for key in self.scalar_keys:  # the step count, as every parameter has it
                state[key] = first[key]
            update(data, grad, state, group, scratch)
        for key in self.scalar_keys:
            value = state[key]
            for each in self.states:
                each[key] = value


def _shaped_like(piece, array):
    """The 1-D ``piece`` seen with ``array``'s shape and memory order (row- or
    column-major), so that elementwise passes over both walk memory alike."""
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        return piece.reshape(array.shape[::-1]).T
    return piece.reshape(array.shape)


def _signature(optimizer, group, params):
    return (id(optimizer), id(group), tuple(id(p) for p in params))


class Layout:
    """The buckets of one compiled step, and which parameter lives in which."""

    def __init__(self):
        self._buckets: dict[tuple, Bucket] = {}
        self._data_view: dict[int, np.ndarray] = {}
        self._grad_view: dict[int, np.ndarray] = {}

    def plan_step(self, optimizer, stepped):
        """How to replay ``optimizer.step()`` when ``stepped`` had gradients: (buckets,
        [(parameter, group) updated one by one], parameters that must have no gradient),
        or None to call ``optimizer.step()`` itself."""
        fusable = (type(optimizer) in ELEMENTWISE_UPDATES
                   and type(optimizer).step is Optimizer.step)
        if not fusable:
            return None
        stepped_ids = {id(p) for p in stepped}
        buckets, singles, idle = [], [], []
        for group in optimizer.param_groups:
            mine = [p for p in group["params"] if id(p) in stepped_ids]
            idle += [p for p in group["params"] if id(p) not in stepped_ids]
            together = [p for p in mine if Bucket.fits(optimizer, p)]
            if together:
                dtype = together[0].dtype
                together = [p for p in together if p.dtype == dtype]
            chosen = {id(p) for p in together}
            singles += [(p, group) for p in mine if id(p) not in chosen]
            if together:
                buckets.append(self._bucket(optimizer, group, together))
        return buckets, singles, idle

    def _bucket(self, optimizer, group, params):
        key = _signature(optimizer, group, params)
        bucket = self._buckets.get(key)
        if bucket is None or not bucket.intact():
            bucket = self._buckets[key] = Bucket(optimizer, group, params)
        for p, data, grad in zip(bucket.params, bucket.data_views, bucket.grad_views):
            self._data_view[id(p)], self._grad_view[id(p)] = data, grad
        return bucket

    def data_view(self, leaf):
        view = self._data_view.get(id(leaf))
        return view if view is not None and leaf.data is view else None

    def grad_view(self, leaf):
        return self._grad_view.get(id(leaf)) if self.data_view(leaf) is not None else None
