"""Full garbage collections wait while a large graph is alive, and the user's collector
settings come back exactly afterwards."""

import gc
import weakref

import pytest

import chainrule as cr
from chainrule import _collector, engine

pacing = engine.COLLECTOR_PACING
pytestmark = pytest.mark.skipif(pacing is None, reason="needs CPython's reference counts")


@pytest.fixture
def user_thresholds():
    """The test's own collector thresholds, and the process's back afterwards."""
    previous = gc.get_threshold()
    gc.set_threshold(650, 9, 8)
    yield (650, 9, 8)
    gc.set_threshold(*previous)


def chain(n):
    h = x = cr.tensor(1.0, requires_grad=True)
    for _ in range(n):
        h = h * 1.0
    return x, h


def test_counts_live_nodes():
    before = pacing.live_nodes()
    x, h = chain(100)
    assert pacing.live_nodes() - before == 100
    del x, h
    assert pacing.live_nodes() == before


def test_large_graph_defers_full_collections_and_restores_exactly(user_thresholds):
    x, h = chain(_collector.LARGE_GRAPH + 1000)
    gc.collect(0)  # a young collection: the moment the callback looks
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == user_thresholds[:2]
    assert oldest > 10**6, "full collections should wait while the graph is alive"

    h.backward()
    assert x.grad is not None
    del x, h
    gc.collect(0)
    assert gc.get_threshold() == user_thresholds


def test_small_graphs_leave_the_collector_alone(user_thresholds):
    for _ in range(3):
        x, h = chain(500)
        gc.collect(0)
        assert gc.get_threshold() == user_thresholds
        h.backward()


def test_thresholds_the_user_sets_meanwhile_are_kept(user_thresholds, monkeypatch):
    monkeypatch.setattr(_collector, "LARGE_GRAPH", 200)
    x, h = chain(300)
    gc.collect(0)
    assert gc.get_threshold()[2] > 10**6
    gc.set_threshold(1000, 20, 30)  # the user's own choice while the graph lives
    del x, h
    gc.collect(0)
    assert gc.get_threshold() == (1000, 20, 30)


def test_gc_collect_still_frees_cycles_while_deferred(monkeypatch, user_thresholds):
    monkeypatch.setattr(_collector, "LARGE_GRAPH", 200)
    x, h = chain(300)
    gc.collect(0)
    assert gc.get_threshold()[2] > 10**6

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    gc.collect()
    assert alive() is None
    del x, h
    gc.collect(0)
    assert gc.get_threshold() == user_thresholds


def test_no_live_nodes_are_counted_right_after_import():
    import subprocess
    import sys

    code = ("import gc, chainrule\n"
            "gc.collect()\n"
            "print(chainrule.engine.COLLECTOR_PACING.live_nodes())\n")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout
    assert shown.strip() == "0"


def test_the_count_stays_exact_while_a_forward_is_replaced():
    import numpy as np

    from chainrule.ops.elementwise import Exp

    def saving_forward(ctx, a):  # saves on ctx: its nodes are of another kind
        ctx.note = "saved"
        return np.exp(a)

    original = Exp.__dict__["forward"]
    before = pacing.live_nodes()
    x = cr.tensor(np.ones(2), requires_grad=True)
    y = cr.exp(x)  # a node of the original forward, alive throughout
    try:
        for forward in (saving_forward, original, saving_forward, original):
            Exp.forward = staticmethod(forward) if forward is saving_forward else forward
            z = cr.exp(x)
            assert pacing.live_nodes() - before == 2
            del z
            assert pacing.live_nodes() - before == 1
    finally:
        Exp.forward = original
    del x, y
    assert pacing.live_nodes() == before
