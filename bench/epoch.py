"""Benchmark 4: one training epoch on Fashion-MNIST-sized data.

Random float32 data, 60,000 x 784, 10 classes; batch 256 (235 steps); MLP 784-100-10
with ReLU; Adam (lr 1e-3). Every loop shuffles with the same seeded permutation, gathers
each minibatch by fancy indexing, and keeps the running loss and accuracy, as
``chainrule.train.Trainer`` does. Candidates:

* ``Trainer._train_epoch``: the trainer's own inner loop (without validation), whose
  step is compiled (``cr.compile``, the Trainer's default);
* the same loop written with the library (``DataLoader`` + model + ``F.cross_entropy`` +
  ``Adam``);
* the loop by hand in NumPy (``_numpy_ref``), and in PyTorch eager.

A round runs one whole epoch of every candidate, but they take turns every ``SEGMENT``
steps (``_timing.interleaved_segments``), so that load from elsewhere on the machine
falls on all of them alike.
"""

from __future__ import annotations

import numpy as np
from _numpy_ref import NumpyAdam, NumpyMLP
from _timing import (
    CheckFailed,
    Table,
    assert_close,
    fmt_ratio,
    fmt_time,
    interleaved_segments,
    torch,
)
from train_step import torch_model

import chainrule as cr
from chainrule import optim
from chainrule.data import DataLoader
from chainrule.nn import functional as F

try:
    from chainrule.train import Trainer
except ImportError:  # the trainer is optional here: the library loop is measured anyway
    Trainer = None

N, D, H, C, BATCH = 60_000, 784, 100, 10, 256
LR, SEED, TARGET = 1e-3, 0, 1.1
TRAINER_TARGET = 1.0  # the Trainer compiles its step (cr.compile): at most NumPy's time
SEGMENT = 10  # steps between two turns of the interleaved candidates


def make_data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D), dtype=np.float32), rng.integers(0, C, n)


def library_epoch(X, y, model):
    """The minibatch loop written with chainrule; returns (mean loss, accuracy)."""
    loader = DataLoader(X, y, batch_size=BATCH, shuffle=True, seed=SEED)
    opt = optim.Adam(model.parameters(), lr=LR)

    def epoch(tick=None, max_steps=None):
        total, correct, seen = 0.0, 0, 0
        for step, (xb, yb) in enumerate(_ticking(loader, tick), 1):
            scores = model(xb)
            loss = F.cross_entropy(scores, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            correct += int((scores.data.argmax(axis=1) == yb).sum())
            seen += len(yb)
            if step == max_steps:
                break
        return total / seen, correct / seen

    return epoch


def trainer_epoch(X, y, model):
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=LR), loss="softmax",
                      batch_size=BATCH, seed=SEED, progress=False)
    loader = DataLoader(X, y, batch_size=BATCH, shuffle=True, seed=SEED)
    return lambda tick=None: trainer._train_epoch(_TickingLoader(loader, tick), 1, None)


class _TickingLoader:
    """A DataLoader that gives the other candidates their turn every SEGMENT batches."""

    def __init__(self, loader, tick):
        self.loader, self.tick = loader, tick

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        return _ticking(self.loader, self.tick)


def _ticking(batches, tick):
    for i, batch in enumerate(batches, 1):
        yield batch
        if tick is not None and i % SEGMENT == 0:
            tick()


def numpy_epoch(X, y, net):
    rng = np.random.default_rng(SEED)
    opt = NumpyAdam(net.params(), lr=LR)

    def epoch(tick=None, max_steps=None):
        total, correct, seen = 0.0, 0, 0
        order = rng.permutation(len(X))
        for step, start in enumerate(_ticking(range(0, len(X), BATCH), tick), 1):
            idx = order[start:start + BATCH]
            xb, yb = X[idx], y[idx]
            loss, grads, predicted = net.loss_and_grads(xb, yb)
            opt.step(grads)
            total += loss * len(yb)
            correct += int((predicted == yb).sum())
            seen += len(yb)
            if step == max_steps:
                break
        return total / seen, correct / seen

    return epoch


def torch_epoch(X, y, net):
    rng = np.random.default_rng(SEED)
    opt = torch.optim.Adam(net.parameters(), lr=LR)

    def epoch(tick=None, max_steps=None):
        total, correct, seen = 0.0, 0, 0
        order = rng.permutation(len(X))
        for step, start in enumerate(_ticking(range(0, len(X), BATCH), tick), 1):
            idx = order[start:start + BATCH]
            xb, yb = torch.from_numpy(X[idx]), torch.from_numpy(y[idx])
            scores = net(xb)
            loss = torch.nn.functional.cross_entropy(scores, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            correct += int((scores.detach().argmax(dim=1) == yb).sum())
            seen += len(yb)
            if step == max_steps:
                break
        return total / seen, correct / seen

    return epoch


def build(X, y):
    model = cr.nn.MLP(D, [H], C, seed=SEED)
    candidates = {}
    if Trainer is not None:
        candidates["Trainer"] = trainer_epoch(X, y, _copy_model(model))
    candidates["chainrule"] = library_epoch(X, y, _copy_model(model))
    candidates["numpy"] = numpy_epoch(X, y, NumpyMLP.from_chainrule(model))
    if torch is not None:
        candidates["torch"] = torch_epoch(X, y, torch_model(model))
    return candidates


def _copy_model(model):
    twin = cr.nn.MLP(D, [H], C, seed=SEED + 1)
    twin.load_state_dict(model.state_dict())
    return twin


def check(X, y) -> None:
    """The first 5 steps (same batches, same start) give the same losses and accuracy in
    every loop, and a whole epoch of the Trainer gives what the library loop gives."""
    candidates = build(X, y)
    want = candidates["numpy"](max_steps=5)
    for name in ("chainrule", "torch"):
        if name in candidates:
            got = candidates[name](max_steps=5)
            assert_close(f"epoch: {name} mean loss of 5 steps", got[0], want[0], rtol=1e-4)
            if abs(got[1] - want[1]) > 1 / (5 * BATCH):
                raise CheckFailed(f"epoch: {name} accuracy {got[1]} != numpy's {want[1]}")
    if "Trainer" in candidates:
        fresh = build(X, y)
        got, want = fresh["Trainer"](), fresh["chainrule"]()
        assert_close("epoch: Trainer's mean loss", got[0], want[0], rtol=1e-6)
        assert_close("epoch: Trainer's accuracy", got[1], want[1], rtol=0)


def run(quick=False) -> Table:
    X, y = make_data()
    check(X, y)
    candidates = build(X, y)
    timings = interleaved_segments(candidates, repeats=2 if quick else 5,
                                   warmup=0 if quick else 1)
    has_torch = "torch" in timings
    table = Table(
        f"4. One epoch: {N:,} x {D} float32 random data, {C} classes, batch {BATCH} "
        f"({-(-N // BATCH)} steps), MLP {D}-{H}-{C}, Adam",
        notes=["each loop: shuffle, gather the batch, forward, loss, zero_grad, backward, "
               "Adam step, running loss and accuracy; every candidate trains its own copy",
               f"a round is one whole epoch of each candidate, taking turns every {SEGMENT} "
               "steps (so load from elsewhere hits all alike)",
               "Trainer: chainrule.train.Trainer._train_epoch (its inner loop, no validation; "
               "its step compiled, as by default)"
               if Trainer is not None else "chainrule.train is not importable: Trainer row "
               "left out",
               "checked first: the first 5 steps give the same mean loss and accuracy in "
               "chainrule, numpy and torch; a whole Trainer epoch matches the library loop"])
    names = [n for n in ("Trainer", "chainrule") if n in timings]
    for name in names:
        ratio = timings.ratio(name, "numpy")
        target = TRAINER_TARGET if name == "Trainer" else TARGET
        case = "Trainer inner loop" if name == "Trainer" else "DataLoader + model + Adam loop"
        table.add(case, fmt_time(timings.median(name)), fmt_time(timings.median("numpy")),
                  fmt_time(timings.median("torch")) if has_torch else "n/a", fmt_ratio(ratio),
                  fmt_ratio(timings.ratio(name, "torch")) if has_torch else "n/a",
                  f"<= {target:g}x numpy", ratio[0] <= target)
    return table


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run().render())
