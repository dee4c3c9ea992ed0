"""Benchmark 3: one full training step with the library, at three sizes.

chainrule: ``nn.MLP`` + ``nn.functional.cross_entropy`` + ``optim.Adam`` (forward, loss,
zero_grad, backward, step), run eagerly and compiled (``cr.compile``: recorded at the
first call, replayed after). NumPy: the same network and Adam by hand (``_numpy_ref``).
PyTorch: ``nn.Sequential`` of Linear/ReLU, ``F.cross_entropy``, ``torch.optim.Adam`` with
its default implementation (for CPU tensors the single-tensor loop, foreach=False).
All three start from the same weights and see the same batch.
"""

from __future__ import annotations

import re
import time
import types

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
# The compiled step: at most the hand-written NumPy time at every size, and at tiny size
# at most 0.4x PyTorch eager's.
COMPILED_TARGET, COMPILED_TINY_VS_TORCH = 1.0, 0.4


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


def compiled_step(model, x, y):
    opt = optim.Adam(model.parameters(), lr=LR)

    def train_step(x, y):
        scores = model(x)
        loss = F.cross_entropy(scores, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    replay = cr.compile(train_step)

    def step():
        return replay(x, y)

    step.zero_grad = opt.zero_grad
    step.compiled = replay
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


def build_inputs(batch, sizes):
    x, y, _ = make_problem(batch, sizes)
    return x, y


def build(batch, sizes):
    """Fresh candidates on copies of one initialisation; also returns their parameters in
    (W1, b1, W2, b2, ...) order, weights as (out, in), for the check."""
    x, y, model = make_problem(batch, sizes)
    twin = make_problem(batch, sizes)[2]
    net = NumpyMLP.from_chainrule(model)
    steps = {"chainrule": chainrule_step(model, x, y), "compiled": compiled_step(twin, x, y),
             "numpy": numpy_step(net, x, y)}
    params = {"chainrule": lambda: [p.data for p in model.parameters()],
              "compiled": lambda: [p.data for p in twin.parameters()],
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
    for _ in range(2):  # the compiled step's replays give the eager step's numbers
        eager, replayed = _value(steps["chainrule"]()), _value(steps["compiled"]())
        if eager != replayed:
            raise CheckFailed(f"{label}: compiled loss {replayed} != eager loss {eager}")


def python_per_kernel(step, x, y, repeats=2000):
    """Seconds of Python the replay runs per NumPy call it makes, measured by running its
    generated code with every NumPy function (and the optimizer update) made a no-op;
    what is left is the interpreter's own work: the guards, name lookups, calls. (The
    few kernels written as indexing or methods still run; they count against us.)"""
    program = step.compiled.programs()[0]
    namespace = dict(program.em.namespace)

    def nothing(*args, **kwargs):
        return None

    nothing.reduce = nothing  # np.add(...) and np.add.reduce(...) alike
    used = set(re.findall(r"\bnp\.(\w+)", program.source))
    namespace["np"] = types.SimpleNamespace(**{name: nothing for name in used})
    for name, value in program.em.namespace.items():
        if type(value).__name__ == "Bucket":
            namespace[name] = types.SimpleNamespace(ready=lambda: True, update=nothing,
                                                    intact=lambda: True)
    namespace["_check_labels"] = nothing
    exec(compile(program.source, "<replay without numpy>", "exec"), namespace)
    replay = namespace["replay"]
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            replay(x, y)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best / program.kernel_count, program.kernel_count


def _value(loss):
    return float(loss.item()) if hasattr(loss, "item") else float(loss)


def run(quick=False) -> Table:
    table = Table(
        "3. Library training step: nn.MLP + F.cross_entropy + optim.Adam "
        "(forward, loss, zero_grad, backward, step), float32",
        notes=["numpy: the same MLP, loss and PyTorch-formula Adam by hand, in place "
               "(bench/_numpy_ref.py); torch: nn.Sequential, F.cross_entropy, "
               "optim.Adam default (CPU: foreach=False)",
               "compiled: cr.compile(step), recorded at the first call, replayed after",
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
        compiled = timings.ratio("compiled", "numpy")
        vs_torch = timings.ratio("compiled", "torch") if has_torch else None
        target = f"<= {COMPILED_TARGET:g}x numpy"
        met = compiled[0] <= COMPILED_TARGET
        if label == "tiny" and has_torch:
            target += f", <= {COMPILED_TINY_VS_TORCH:g}x torch"
            met = met and vs_torch[0] <= COMPILED_TINY_VS_TORCH
        table.add(f"{label}: compiled (cr.compile)", fmt_time(timings.median("compiled")),
                  fmt_time(timings.median("numpy")),
                  fmt_time(timings.median("torch")) if has_torch else "n/a",
                  fmt_ratio(compiled), fmt_ratio(vs_torch) if has_torch else "n/a", target, met)
        if label == "tiny":
            per_kernel, kernels = python_per_kernel(steps["compiled"], *build_inputs(batch, sizes))
            table.add(f"tiny: compiled, Python per replayed kernel ({kernels} kernels)",
                      fmt_time(per_kernel), "-", "n/a", "", "n/a", "<= 1 us",
                      per_kernel <= 1e-6)
        if not quick:
            mem = {name: peak_memory(steps[name], warmup=1,
                                     reset=getattr(steps[name], "zero_grad", None))
                   for name in ("chainrule", "compiled", "numpy")}
            for name in ("chainrule", "compiled"):
                table.add(f"{label}: peak memory, {name}", fmt_bytes(mem[name]),
                          fmt_bytes(mem["numpy"]), "n/a",
                          f"{mem[name] / max(mem['numpy'], 1):.3f}x", "n/a",
                          "<= 1x numpy" if name == "compiled" else "-",
                          mem[name] <= mem["numpy"] if name == "compiled" else None)
            held = sum(p.buffer_bytes for p in steps["compiled"].compiled.programs())
            table.add(f"{label}: compiled buffers kept between steps", fmt_bytes(held), "-",
                      "n/a", "", "n/a", "-", None)
    return table


if __name__ == "__main__":
    from _timing import fix_threads, header

    fix_threads()
    print(header(), "\n")
    print(run().render())
