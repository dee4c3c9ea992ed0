"""Grad mode belongs to a thread: no_grad() or a backward pass in one thread leaves every
other thread recording, and two threads training two models get the numbers each would
get alone."""

import threading

import numpy as np

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn, optim


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def evaluator():
        with cr.no_grad():
            inside.set()
            release.wait(5)
            seen["evaluator"] = cr.is_grad_enabled()

    thread = threading.Thread(target=evaluator)
    thread.start()
    assert inside.wait(5)
    x = cr.tensor(np.ones(3), requires_grad=True)
    seen["main"] = cr.is_grad_enabled()
    y = (x * 2).sum()  # recorded here, although the other thread is inside no_grad()
    release.set()
    thread.join(5)
    y.backward()
    assert seen == {"evaluator": False, "main": True}
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def _train(seed, steps=60):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    model = nn.MLP(5, [16], 3, seed=seed)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with cr.no_grad():  # evaluation between steps flips grad mode in this thread only
            model(X)
        losses.append(float(loss.item()))
    return losses, [p.data.copy() for p in model.parameters()]


def test_two_threads_training_two_models_match_one_thread_each():
    alone = {seed: _train(seed) for seed in (0, 1)}
    results, errors = {}, []

    def worker(seed):
        try:
            results[seed] = _train(seed)
        except Exception as e:  # noqa: BLE001 - reported below with the thread's seed
            errors.append((seed, repr(e)))

    threads = [threading.Thread(target=worker, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for seed in (0, 1):
        assert results[seed][0] == alone[seed][0]
        for a, b in zip(results[seed][1], alone[seed][1]):
            np.testing.assert_array_equal(a, b)


def test_a_thread_that_ends_with_grad_off_leaves_the_others_on_their_fast_path():
    """Operations read their thread's grad mode and recorder only while some thread has
    changed them; a thread that ends without setting them back must not keep every
    other thread on the slow path, and one still inside no_grad keeps its own mode."""
    from chainrule.grad_mode import GRAD_OFF_THREADS
    from chainrule.tracing import RECORDING_THREADS, tracing

    def leaves_everything_changed():
        cr.set_grad_enabled(False)  # at once, never set back
        tracing.recorder = object()
        seen["inside"] = (len(GRAD_OFF_THREADS), len(RECORDING_THREADS))
        tracing.recorder = None

    seen = {}
    thread = threading.Thread(target=leaves_everything_changed)
    thread.start()
    thread.join(5)
    assert seen["inside"] == (1, 1)
    assert not GRAD_OFF_THREADS and not RECORDING_THREADS
    x = cr.tensor([1.0], requires_grad=True)
    with cr.no_grad():
        assert GRAD_OFF_THREADS and not (x * 2).requires_grad
    assert not GRAD_OFF_THREADS and (x * 2).requires_grad
