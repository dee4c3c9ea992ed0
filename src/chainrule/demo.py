"""What ``make demo`` shows: the lecture's worked examples, node by node, then a network
trained on real data (scikit-learn's handwritten digits, shipped with the package, so
nothing is downloaded)."""

from __future__ import annotations

import sys
from pathlib import Path

from .experiment import RunConfig, earlier_run_files, train
from .tensor import float64, tensor
from .viz import draw_graph, explain


def _heading(text):
    print(f"\n{text}\n{'=' * len(text)}")


def lecture_examples(out: Path):
    _heading("1. f(x, y, z) = (x + y) * z with x = -2, y = 5, z = -4")
    x, y, z = (tensor(v, requires_grad=True, name=n) for n, v in (("x", -2.0), ("y", 5.0),
                                                                    ("z", -4.0)))
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    print(explain(f))
    draw_graph(f, path=out / "gates.svg")

    _heading("2. the sigmoid neuron f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))")
    v = {n: tensor(val, requires_grad=True, name=n, dtype=float64) for n, val in
         (("w0", 2.0), ("x0", -1.0), ("w1", -3.0), ("x1", -2.0), ("w2", -3.0))}
    dot = v["w0"] * v["x0"] + v["w1"] * v["x1"] + v["w2"]
    dot.name = "dot"
    neuron = 1.0 / (1.0 + (-dot).exp())
    neuron.name = "f"
    print(explain(neuron))
    draw_graph(neuron, path=out / "sigmoid_neuron.svg")
    print(f"\ndrawings of both graphs: {out / 'gates.svg'}, {out / 'sigmoid_neuron.svg'}")


def run_demo(out="runs/demo", progress=None):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lecture_examples(out)
    _heading("3. a 2-layer network f = W2 max(0, W1 x) trained on handwritten digits")
    run_dir = out / "digits"
    if earlier_run_files(run_dir):
        print(f"(replacing the demo's earlier run in {run_dir}/)")
    summary = train(RunConfig(dataset="digits", hidden=[100], out=str(run_dir)),
                    progress=progress, replace=True)
    print(f"{summary['epochs']} epochs in {summary['seconds']:.1f} s: "
          f"train accuracy {summary['train_accuracy']:.1%}, "
          f"test accuracy {summary['test_accuracy']:.1%}")
    print(f"results (summary.json, history.csv, curves.png, templates.png, checkpoints) "
          f"are in {run_dir}/")
    print(next_steps(run_dir))


def next_steps(run_dir) -> str:
    """What to type next: the command lives in the project's virtual environment."""
    command = _command_name()
    return "\n".join([
        "",
        "Next: the `chainrule` command is installed in .venv. Run it as",
        f"  {command} train --dataset spiral",
        f"  {command} evaluate --checkpoint {run_dir}",
        f"  {command} --help",
        "or activate the environment first (source .venv/bin/activate) and type `chainrule`.",
    ])


def _command_name() -> str:
    """The path of the ``chainrule`` script beside this Python, relative when possible."""
    script = Path(sys.executable).parent / "chainrule"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
