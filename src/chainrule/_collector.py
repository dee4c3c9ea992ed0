"""Python's garbage collector and large graphs: why full collections wait while one lives.

The cyclic garbage collector looks for reference cycles among the objects it tracks. It
collects the young objects often and cheaply; a *full* collection walks every tracked
object in the process, and CPython runs one whenever the objects that survived the young
collections have grown by a quarter. A computational graph is the worst case for that
rule: every operation adds a node (its output Tensor, its Context and the tuple of its
parents) that lives until ``backward()``, so while a graph of n nodes is built, full
collections walk it again and again, and building costs more per node the larger the
graph (measured: 3.2 us a node at 2e4 nodes, 7.7 us at 2e6, against a flat 2.15 us with
the collector off). Yet the walks can find nothing: a node refers only to the nodes made
before it, so the graph holds no cycle, and reference counting frees it the moment its
last output is dropped.

So while more than ``LARGE_GRAPH`` nodes are alive, full collections are deferred: the
oldest generation's threshold (``gc.get_threshold()[2]``) is raised, and the young
generations go on collecting as before. When fewer than half as many nodes are left the
threshold the user had is put back exactly (unless the user has set thresholds of their
own in between, which are then left alone). ``gc.collect()`` still collects everything
at any time. A cycle of other objects that outlives two young collections while a large
graph is alive is freed once the graph is gone, or by ``gc.collect()``.

The number of live nodes costs nothing to keep: in CPython every instance holds a
reference to its class, so the reference counts of the node classes rise and fall with them.
It is read after each young collection, by a callback in ``gc.callbacks``; on an
interpreter without reference counts (PyPy) nothing is done. (Each operation has a node
class of its own, so the count is a sum over all of them: a few microseconds per young
collection, which comes every few hundred nodes.)
"""

from __future__ import annotations

import gc
import sys

LARGE_GRAPH = 10_000  # live graph nodes from which full collections wait
_DEFERRED = 1 << 30  # an oldest-generation threshold that is never reached


class CollectorPacing:
    """Defers full collections while more than ``LARGE_GRAPH`` instances of the node
    types are alive, and restores the collector's thresholds exactly afterwards."""

    def __init__(self, *node_types: type):
        self.node_types: list[type] = []
        self.baseline = 0  # the references to the node types that are not nodes
        self.saved = None  # the user's thresholds while deferred
        self.ours = None  # the thresholds set here, to notice the user's own changes
        for node_type in node_types:
            self.count(node_type)

    def count(self, node_type: type) -> None:
        """Count the instances of ``node_type`` too (made before any is alive)."""
        self.node_types.append(node_type)
        # less this call's own reference to it, which live_nodes() does not see
        self.baseline += sys.getrefcount(node_type) - 1

    def forget(self, node_type: type, refs_before: int) -> None:
        """``node_type`` was given up by its operation (whose forward was replaced) since
        it had ``refs_before`` references: take the references it lost, none of them a
        node, out of the baseline. Its nodes still alive still count."""
        self.baseline -= refs_before - (sys.getrefcount(node_type) - 1)  # less this call's

    def live_nodes(self) -> int:
        return sum(map(sys.getrefcount, self.node_types)) - self.baseline

    def __call__(self, phase: str, info: dict) -> None:
        if phase != "stop":
            return
        live = self.live_nodes()
        if self.saved is None:
            if live > LARGE_GRAPH:
                self.defer()
        elif live < LARGE_GRAPH // 2:
            self.restore()

    def defer(self) -> None:
        self.saved = gc.get_threshold()
        young, middle = self.saved[0], self.saved[1] if len(self.saved) > 1 else 10
        gc.set_threshold(young, middle, _DEFERRED)
        self.ours = gc.get_threshold()

    def restore(self) -> None:
        if gc.get_threshold() == self.ours:  # else the user set thresholds: keep theirs
            gc.set_threshold(*self.saved)
        self.saved = self.ours = None


def install(*node_types: type) -> CollectorPacing | None:
    """Start pacing full collections by the number of live instances of ``node_types``
    (and of the types given to ``count`` later)."""
    if not hasattr(sys, "getrefcount") or sys.implementation.name != "cpython":
        return None
    pacing = CollectorPacing(*node_types)
    gc.callbacks.append(pacing)
    return pacing
