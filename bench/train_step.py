"""Benchmark 3: one full training step with the library, at three sizes.

chainrule: ``nn.MLP`` + ``nn.functional.cross_entropy`` + ``optim.Adam`` (forward, loss,
zero_grad, backward, step). NumPy: the same network and Adam by hand (``_numpy_ref``).
PyTorch: ``nn.Sequential`` of Linear/ReLU, ``F.cross_entropy``, ``torch.optim.Adam`` with
its default implementation (for CPU tensors the single-tensor loop, foreach=False).
All three start from the same weights and see the same batch.
"""

from __future__ import annotations

import numpy as np
from _numpy_ref import NumpyAdam, NumpyMLP
from _timing import (
    CheckFailed,
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
from chainrule import optim
from chainrule.nn import functional as F

LR = 1e-3
# name: (batch, layer sizes, target ratio to NumPy, (repeats, inner) full, quick)
SIZES = {
    "tiny": (64, (2, 100, 3), 1.5, (201, 10), (31, 5)),
    "medium": (256, (784, 512, 10), 1.1, (101, 1), (11, 1)),
    "large": (256, (3072, 2048, 2048, 10), 1.1, (15, 1), (3, 1)),
}


def make_problem(batch, sizes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    model = cr.nn.MLP(sizes[0], list(sizes[1:-1]), sizes[-1], seed=seed)
    return x, y, model


def chainrule_step(model, x, y):
    opt = optim.Adam(model.parameters(), lr=LR)

    def step():  # the attribute lets the memory measurement free the last gradients
        scores = model(x)
        loss = F.cross_entropy(scores, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    step.zero_grad = opt.zero_grad
    return step


def numpy_step(net, x, y):
    opt = NumpyAdam(net.params(), lr=LR)

    def step():
        loss, grads, _ = net.loss_and_grads(x, y)
        opt.step(grads)
        return loss

    return step


def torch_model(model):
    layers = []
    linears = model.linear_layers()
    for i, m in enumerate(linears):
        lin = torch.nn.Linear(m.in_features, m.out_features)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(m.weight.data))
            lin.bias.copy_(torch.from_numpy(m.bias.data))
        layers.append(lin)
        if i < len(linears) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_step(net, x, y):
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        scores = net(xt)
        loss = torch.nn.functional.cross_entropy(scores, yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def build(batch, sizes):
    """Fresh candidates on copies of one initialisation; also returns their parameters in
    (W1, b1, W2, b2, ...) order, weights as (out, in), for the check."""
    x, y, model = make_problem(batch, sizes)
    net = NumpyMLP.from_chainrule(model)
    steps = {"chainrule": chainrule_step(model, x, y), "numpy": numpy_step(net, x, y)}
    params = {"chainrule": lambda: [p.data for p in model.parameters()],
              "numpy": lambda: [p.T if p.ndim == 2 else p for p in net.params()]}
    if torch is not None:
        tnet = torch_model(model)
        steps["torch"] = torch_step(tnet, x, y)
        params["torch"] = lambda: [p.detach().numpy() for p in tnet.parameters()]
    return steps, params, (x, y, model, net)


def check(batch, sizes, label) -> None:
    """First step: the losses agree, chainrule's gradients agree, and every parameter's
    Adam update agrees wherever the gradient is clearly larger than eps."""
    steps, params, (x, y, model, net) = build(batch, sizes)
    before = {name: [p.copy() for p in get()] for name, get in params.items()}
    _, want_grads, _ = NumpyMLP(net.weights, net.biases).loss_and_grads(x, y)
    want_grads = [g.T if g.ndim == 2 else g for g in want_grads]
    losses = {name: _value(step()) for name, step in steps.items()}
    for p, g in zip(model.parameters(), want_grads):
        assert_close(f"{label}: chainrule gradient {p.shape}", p.grad, g)
    for name, loss in losses.items():
        assert_close(f"{label}: {name} loss", loss, losses["numpy"])
        for i, (new, old, ref_new, ref_old, g) in enumerate(zip(
                params[name](), before[name], params["numpy"](), before["numpy"], want_grads)):
            # The first Adam step moves each weight by lr * g / (|g| + eps): compare the
            # moves, not the weights. Where |g| is within a few hundred eps, float32
            # rounding of g changes that ratio, so there only check the bound |move| <= lr.
            move, ref_move = new - old, ref_new - ref_old
            clear = np.abs(g) > 1e-6
            assert_close(f"{label}: {name} Adam update of parameter {i}", move[clear],
                         ref_move[clear], rtol=1e-3)
            if np.abs(move).max(initial=0) > LR * (1 + 1e-3):
                raise CheckFailed(f"{label}: {name} moved parameter {i} by more than lr")


def _value(loss):
    return float(loss.item()) if hasattr(loss, "item") else float(loss)


def run(quick=False) -> Table:
    table = Table(
        "3. Library training step: nn.MLP + F.cross_entropy + optim.Adam "
        "(forward, loss, zero_grad, backward, step), float32",
        notes=["numpy: the same MLP, loss and PyTorch-formula Adam by hand, in place "
               "(bench/_numpy_ref.py); torch: nn.Sequential, F.cross_entropy, "
               "optim.Adam default (CPU: foreach=False)",
               "memory: tracemalloc peak above the step's start (chainrule's previous "
               "gradients freed first by zero_grad, as numpy's die with its step), one step "
               "after warm-up; torch not visible to it",
               "checked first: loss, chainrule's gradients and every parameter's first Adam "
               "update agree with the numpy reference (and torch's)"])
    for label, (batch, sizes, target, full, fast) in SIZES.items():
        check(batch, sizes, label)
        steps, _, _ = build(batch, sizes)
        repeats, inner = fast if quick else full
        timings = interleaved(steps, repeats=repeats, warmup=1 if quick else 2, inner=inner)
        has_torch = "torch" in timings
        ratio = timings.ratio("chainrule", "numpy")
        case = f"{label}: batch {batch}, {'-'.join(map(str, sizes))}"
        table.add(case, fmt_time(timings.median("chainrule")), fmt_time(timings.median("numpy")),
                  fmt_time(timings.median("torch")) if has_torch else "n/a", fmt_ratio(ratio),
                  fmt_ratio(timings.ratio("chainrule", "torch")) if has_torch else "n/a",
                  f"<= {target:g}x numpy", ratio[0] <= target)
        if label != "tiny" and not quick:
            mem = {name: peak_memory(steps[name], warmup=1,
                                     reset=getattr(steps[name], "zero_grad", None))
                   for name in ("chainrule", "numpy")}
            table.add(f"{label}: peak memory", fmt_bytes(mem["chainrule"]),
                      fmt_bytes(mem["numpy"]), "n/a", f"{mem['chainrule'] / mem['numpy']:.3f}x",
                      "n/a", "-", None)
    return table


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run().render())
