"""Benchmark 2: one training step of a 2-layer MLP written with raw Tensor operations.

batch 256, 784-512-10, float32: ``h = relu(x @ W1 + b1)``, ``scores = h @ W2 + b2``,
softmax cross-entropy, backward, SGD update in place. The loss is written two ways with
chainrule: ``log_softmax`` + indexing + mean (four graph nodes), and the fused
``nn.functional.cross_entropy`` (one node). Compared with the same step written by hand in
NumPy (and in PyTorch eager): time, and peak memory of one step (tracemalloc).
"""

from __future__ import annotations

import numpy as np
from _timing import (
    Table,
    assert_close,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    interleaved,
    peak_memory,
    torch,
)

import chainrule as cr
from chainrule.nn import functional as F

N, D, H, C = 256, 784, 512, 10
LR = 0.1
TIME_TARGET, MEMORY_TARGET = 1.15, 1.20


def make_problem(seed=0):
    """Inputs, labels and initial weights (W1 (D, H), b1, W2 (H, C), b2), float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(np.float32)
    y = rng.integers(0, C, N)
    w1 = rng.uniform(-1, 1, (D, H)).astype(np.float32) / np.float32(np.sqrt(D))
    b1 = rng.uniform(-1, 1, H).astype(np.float32) / np.float32(np.sqrt(D))
    w2 = rng.uniform(-1, 1, (H, C)).astype(np.float32) / np.float32(np.sqrt(H))
    b2 = rng.uniform(-1, 1, C).astype(np.float32) / np.float32(np.sqrt(H))
    return x, y, [w1, b1, w2, b2]


# ----- NumPy, by hand -------------------------------------------------------------------
def numpy_step(x, y, params, lr=LR):
    """One SGD step in place on ``params``; returns (loss, gradients)."""
    w1, b1, w2, b2 = params
    n = len(x)
    rows = np.arange(n)
    h = x @ w1
    h += b1
    np.maximum(h, 0, out=h)  # ReLU in place: the pre-activation is not needed again
    scores = h @ w2
    scores += b2
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)  # now the softmax probabilities
    probs = scores
    loss = -np.log(probs[rows, y]).mean()
    dscores = probs  # d loss / d scores = (probs - onehot) / n, in place
    dscores[rows, y] -= 1
    dscores /= n
    dw2 = h.T @ dscores
    db2 = dscores.sum(axis=0)
    dh = dscores @ w2.T
    dh *= h > 0
    dw1 = x.T @ dh
    db1 = dh.sum(axis=0)
    grads = [dw1, db1, dw2, db2]
    for p, g in zip(params, grads):
        g *= lr
        p -= g
    return loss, grads


# ----- chainrule, raw Tensor operations ---------------------------------------------------
def chainrule_step(x, y, params, loss_kind="log_softmax", lr=LR):
    """The same step with chainrule Tensors; ``params`` are Tensors requiring grad."""
    w1, b1, w2, b2 = params
    rows = np.arange(len(y))
    xt = cr.tensor(x)

    def step():
        h = cr.relu(xt @ w1 + b1)
        scores = h @ w2 + b2
        if loss_kind == "log_softmax":
            loss = -cr.log_softmax(scores, axis=1)[rows, y].mean()
        else:
            loss = F.cross_entropy(scores, y)
        loss.backward()
        grads = [p.grad for p in params]
        for p in params:  # SGD in place, as in the NumPy step
            g = p.grad
            g *= lr
            p.data -= g
            p.grad = None
        return loss.item(), grads

    return step


def torch_step(x, y, params, lr=LR):
    w1, b1, w2, b2 = params
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        h = torch.relu(xt @ w1 + b1)
        scores = h @ w2 + b2
        loss = torch.nn.functional.cross_entropy(scores, yt)
        loss.backward()
        grads = [p.grad for p in params]  # scaled by lr in place below, as in the others
        with torch.no_grad():
            for p in params:
                p.grad.mul_(lr)
                p.sub_(p.grad)
                p.grad = None
        return loss.item(), grads

    return step


# ----- set-up and check -------------------------------------------------------------------
def build(x, y, weights):
    """Each candidate's step on its own copy of the same initial weights."""
    steps = {}
    steps["numpy"] = (lambda p=[w.copy() for w in weights]: numpy_step(x, y, p))
    steps["chainrule"] = chainrule_step(x, y, _cr_params(weights), "log_softmax")
    steps["chainrule F.cross_entropy"] = chainrule_step(x, y, _cr_params(weights), "fused")
    if torch is not None:
        steps["torch"] = torch_step(x, y, [torch.tensor(w, requires_grad=True)
                                           for w in weights])
    return steps


def _cr_params(weights):
    return [cr.tensor(w, requires_grad=True) for w in weights]


def check(x, y, weights) -> None:
    """The first step's loss and gradients (after the lr scaling) agree everywhere."""
    results = {name: step() for name, step in build(x, y, weights).items()}
    want_loss, want_grads = results.pop("numpy")
    for name, (loss, grads) in results.items():
        assert_close(f"mlp step: {name} loss", loss, want_loss)
        for label, g, w in zip(("dW1", "db1", "dW2", "db2"), grads, want_grads):
            g = g.detach().numpy() if hasattr(g, "detach") else g
            assert_close(f"mlp step: {name} {label}", g, w)


def run(quick=False) -> Table:
    x, y, weights = make_problem()
    check(x, y, weights)
    steps = build(x, y, weights)
    timings = interleaved(steps, repeats=11 if quick else 101, warmup=3)
    memory = {name: peak_memory(step) for name, step in steps.items() if name != "torch"}
    table = Table(
        f"2. Raw-Tensor MLP training step: batch {N}, {D}-{H}-{C}, float32, SGD in place",
        notes=["chainrule: relu(x @ W1 + b1) @ W2 + b2; loss -log_softmax(s)[rows, y].mean() "
               "(or F.cross_entropy); backward; p.data -= lr * p.grad",
               "numpy: the same step by hand (in-place bias, ReLU, softmax and update); "
               "torch: the same ops, F.cross_entropy, in-place update",
               "memory: tracemalloc peak above the step's start, one step after warm-up "
               "(torch's allocator is invisible to tracemalloc)",
               "checked first: loss and the 4 gradients agree between all implementations"])
    has_torch = "torch" in timings
    for name, case in (("chainrule", "step, log_softmax + index + mean"),
                       ("chainrule F.cross_entropy", "step, F.cross_entropy")):
        ratio = timings.ratio(name, "numpy")
        table.add(case, fmt_time(timings.median(name)), fmt_time(timings.median("numpy")),
                  fmt_time(timings.median("torch")) if has_torch else "n/a", fmt_ratio(ratio),
                  fmt_ratio(timings.ratio(name, "torch")) if has_torch else "n/a",
                  f"<= {TIME_TARGET:.2f}x numpy", ratio[0] <= TIME_TARGET)
    for name, case in (("chainrule", "peak memory, log_softmax"),
                       ("chainrule F.cross_entropy", "peak memory, F.cross_entropy")):
        ratio = memory[name] / memory["numpy"]
        table.add(case, fmt_bytes(memory[name]), fmt_bytes(memory["numpy"]), "n/a",
                  f"{ratio:.3f}x", "n/a", f"<= {MEMORY_TARGET:.2f}x numpy",
                  ratio <= MEMORY_TARGET)
    return table


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run().render())
