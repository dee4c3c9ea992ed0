"""The ``chainrule`` command line: ``train``, ``evaluate``, ``sweep``, ``export``, ``graph``,
``explain``, ``player``, ``playground``, ``demo``.

A user error (an unknown choice, a bad size, missing data, an unreadable checkpoint)
prints one line saying what is wrong and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import signal
import sys
import threading
from pathlib import Path

from . import __version__
from .data import DATASETS
from .data.plane import FEATURES
from .errors import ChainruleError, UsageError
from .experiment import (
    BUNDLED_DATASETS,
    DATASET_DEFAULTS,
    GENERATED_DATASETS,
    MOMENTUM_OPTIMIZERS,
    OPTIMIZERS,
    SCHEDULES,
    RunConfig,
)
from .nn import ACTIVATIONS
from .sweep import cli as sweep_cli
from .train import LOSSES


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _ShowDefaults)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


class _ShowDefaults(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default in (None, argparse.SUPPRESS)
                or isinstance(action, argparse._StoreTrueAction)):
            return text
        default = (" ".join(map(str, action.default)) if isinstance(action.default, list)
                   else action.default)
        return f"{text} (default: {default})".lstrip()


def warn(text):
    print(f"chainrule: warning: {text}", file=sys.stderr)


def _hidden_size(text):
    if text.lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (a positive integer, "
                                         "or 'none' for a linear classifier)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {value}")
    return value


def _lr_help():
    rates = ", ".join(f"{name} {choice.lr:g}" for name, choice in OPTIMIZERS.items())
    toys = ", ".join(name for name, d in DATASET_DEFAULTS.items() if d["lr_scale"] != 1)
    return (f"learning rate (default: per optimizer: {rates}; ten times that on {toys})")


def _memory_size(text):
    """'8G', '512M', '100K' or a number of bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("B")
    scale = units.get(text[-1:], 1)
    try:
        value = float(text[:-1] if text[-1:] in units else text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 8G or 512M") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"a memory size must be positive, got {text!r}")
    return int(value)


def _add_train_options(p):
    defaults = RunConfig()
    epochs = ", ".join(f"{name} {d['epochs']}" for name, d in DATASET_DEFAULTS.items())
    p.add_argument("--dataset", choices=DATASETS,
                   help=f"a data set by name (default: {defaults.dataset})")
    p.add_argument("--data", metavar="FILE.csv",
                   help="train on your own 2-D points instead: a CSV of x1,x2,label rows "
                        "(x1,x2,target with --loss mse), an optional header line and an "
                        "optional 4th column split (train or val; without it 20%% of the "
                        "rows are held out for validation; default: none, use --dataset)")
    p.add_argument("--features", nargs="+", choices=list(FEATURES), metavar="FEATURE",
                   help="for 2-D data: the network's inputs, computed from the standardised "
                        f"points, any of {' '.join(FEATURES)} (default: x1 x2)")
    p.add_argument("--data-dir", help="where the data set's files are (mnist, fashion-mnist, "
                                      "cifar10; default: $CHAINRULE_DATA/<name>)")
    p.add_argument("--hidden", nargs="+", type=_hidden_size, default=defaults.hidden,
                   help="hidden layer sizes; 'none' gives the linear classifier")
    p.add_argument("--activation", nargs="+", choices=list(ACTIVATIONS),
                   help="the hidden layers' non-linearity: one for all, or one per hidden "
                        f"layer (default: {defaults.activation})")
    p.add_argument("--dropout", type=float, default=defaults.dropout)
    p.add_argument("--loss", default=defaults.loss, choices=list(LOSSES),
                   help="softmax or svm for classes; mse (squared error) for a regression "
                        "on --data with real targets")
    p.add_argument("--optimizer", default=defaults.optimizer, choices=list(OPTIMIZERS))
    p.add_argument("--lr", type=float, help=_lr_help())
    p.add_argument("--momentum", type=float,
                   help=f"for --optimizer momentum and nesterov (default: {defaults.momentum})")
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay,
                   help="the optimizer's weight decay: wd * W added to the gradient, or "
                        "for adamw the weights shrunk by lr * wd each step")
    p.add_argument("--reg", type=float, default=defaults.reg,
                   help="lambda of the L2 loss term lambda * sum(W^2) over weights")
    p.add_argument("--l1", type=float, default=defaults.l1,
                   help="lambda of the L1 loss term lambda * sum(|W|) over weights")
    p.add_argument("--lr-schedule", default=defaults.lr_schedule, choices=list(SCHEDULES))
    p.add_argument("--warmup", type=int, default=defaults.warmup,
                   help="epochs of linear warm-up")
    p.add_argument("--epochs", type=int, help=f"default: per data set: {epochs}; with "
                   "--resume, a larger number extends the run")
    p.add_argument("--schedule-epochs", type=int,
                   help="the epochs the learning-rate schedule spans (default: --epochs when "
                        "the run starts; it stays fixed when a run is extended)")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without a better validation accuracy "
                        "(default: no early stopping)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", help="folder for the checkpoints, summary.json, history.csv, "
                                 "pictures (default: a new folder runs/<dataset>-<n>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own options")
    p.add_argument("--max-memory", type=_memory_size,
                   help="refuse a model needing more than this (e.g. 16G; default: the "
                        "machine's RAM)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument("--no-compile", action="store_true",
                   help="run every training step eagerly instead of replaying a compiled "
                        "recording of it (same numbers, slower; for debugging; default: "
                        "compiled)")
    p.add_argument("--diagnose", action="store_true",
                   help="watch for dead ReLUs, saturation and bad update sizes per layer; "
                        "writes diagnostics.png")


def make_parser() -> argparse.ArgumentParser:
    from .viz import recording

    parser = _Parser(prog="chainrule", description="Backpropagation you can see.")
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train an MLP on a data set")
    _add_train_options(train)
    recording.add_arguments(train)
    ev = commands.add_parser("evaluate", help="re-evaluate a trained model")
    ev.add_argument("--checkpoint", required=True,
                    help="a checkpoint file (model.crk, best.crk, checkpoint.crk), or a run's "
                         "folder for its model.crk")
    ev.add_argument("--data-dir", help="where the data set's files are (default: where "
                                       "the run found them)")
    ex = commands.add_parser("export", help="write a trained model as ONNX or safetensors")
    ex.add_argument("--checkpoint", required=True,
                    help="a checkpoint file (model.crk, best.crk), or a run's folder for its "
                         "model.crk")
    ex.add_argument("--format", required=True, choices=("onnx", "safetensors"))
    ex.add_argument("--out", required=True, help="the file to write, e.g. model.onnx")
    sweep_cli.add_parser(commands)
    for name, text in (("graph", "draw the computational graph of a small formula"),
                       ("explain", "show the backward pass of a small formula step by step")):
        p = commands.add_parser(name, help=text)
        p.add_argument("expression", help='a formula such as "(x + y) * z"')
        p.add_argument("--values", help="the variables, e.g. x=-2,y=5,z=-4 (default: none)")
        if name == "graph":
            p.add_argument("--out", help="the file to write: .svg, .png, .pdf or .dot "
                                         "(default: a new graph-<n>.svg here)")
            p.add_argument("--layout", choices=("builtin", "graphviz"),
                           help="who places the boxes (default: graphviz when its 'dot' "
                                "program is installed, else builtin)")
        else:
            p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    from .viz import player_cli

    player_cli.add_arguments(commands.add_parser(
        "player", help="write a page that steps through a formula's forward and backward pass"))
    from .playground import cli as playground_cli

    playground_cli.add_arguments(commands.add_parser(
        "playground", help="a local web app that trains a network live and shows its gradients"))
    demo = commands.add_parser("demo", help="the lecture's examples, then a training run")
    demo.add_argument("--out", default="runs/demo", help="where the drawings and the run go")
    demo.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    return parser


def config_from_args(args) -> RunConfig:
    hidden = [] if args.hidden == [None] else args.hidden
    if None in hidden:
        raise UsageError("--hidden: 'none' cannot be mixed with sizes")
    if args.data is not None and args.dataset is not None:
        raise UsageError("--data FILE.csv trains on your own points; give it or --dataset, "
                         "not both")
    defaults = RunConfig()
    dataset = "csv" if args.data is not None else args.dataset or defaults.dataset
    activation = args.activation or [defaults.activation]
    return RunConfig(
        dataset=dataset, data_dir=args.data_dir, hidden=hidden,
        activation=activation[0] if len(activation) == 1 else activation,
        dropout=args.dropout,
        loss=args.loss, optimizer=args.optimizer, lr=args.lr,
        momentum=defaults.momentum if args.momentum is None else args.momentum,
        weight_decay=args.weight_decay, reg=args.reg, lr_schedule=args.lr_schedule,
        warmup=args.warmup, epochs=args.epochs, schedule_epochs=args.schedule_epochs,
        batch_size=args.batch_size, patience=args.patience, seed=args.seed, out=args.out,
        data=args.data, features=args.features, l1=args.l1)


def _warn_ignored(args):
    """Options given that this run would not use: say so rather than drop them silently."""
    if args.momentum is not None and args.optimizer not in MOMENTUM_OPTIMIZERS:
        warn(f"--momentum is ignored: it is used by --optimizer momentum and nesterov, "
             f"not {args.optimizer}")
    if args.activation is not None and args.hidden == [None]:
        warn("--activation is ignored: --hidden none has no hidden layer")
    if args.dropout and args.hidden == [None]:
        warn("--dropout is ignored: --hidden none has no hidden layer")
    _warn_data_dir(args.data_dir, config_from_args(args).dataset)


def _warn_data_dir(data_dir, dataset):
    if data_dir is None:
        return
    if dataset in GENERATED_DATASETS:
        warn(f"--data-dir is ignored: {dataset} is generated, not read from files")
    elif dataset in BUNDLED_DATASETS:
        warn(f"--data-dir is ignored: {dataset} comes with scikit-learn")
    elif dataset == "csv":
        warn("--data-dir is ignored: --data names the file")


def _check_resume(args):
    """--resume takes the run's saved options: an option given again must agree with them
    (re-running the same command with --resume works); a different one is refused."""
    from .experiment import saved_config

    saved = saved_config(args.out).to_dict()
    defaults = vars(make_parser().parse_args(["train"]))
    wanted = config_from_args(args).to_dict()
    differ = [f"--{k.replace('_', '-')}" for k, v in wanted.items()
              if k not in ("out", "data_dir", "epochs")
              and getattr(args, k, v) != defaults.get(k, v) and v != saved.get(k)]
    if differ:
        raise UsageError(f"--resume continues the run in {args.out} with the options it was "
                         f"started with; {', '.join(differ)} differ from them (leave them "
                         "out, or start a new run)")


def _train(args):
    from . import experiment

    if args.resume:
        _check_resume(args)
    else:
        config_from_args(args).resolved()  # a bad option is refused before anything else
        _warn_ignored(args)
    if args.out is None and not args.resume:
        args.out = str(experiment.new_run_folder(config_from_args(args).dataset))
    callbacks = []
    if args.diagnose:
        from .diagnostics import DiagnosticsMonitor

        callbacks.append(DiagnosticsMonitor(args.out))
    from .viz import recording

    recorders = recording.callbacks(args)
    summary = experiment.train(config_from_args(args), resume=args.resume,
                               progress=False if args.quiet else None,
                               callbacks=callbacks + recorders,
                               compile=not args.no_compile,
                               max_memory=args.max_memory)
    print(_format_summary(summary, args.out))
    for line in recording.report(recorders):
        print(line)
    for monitor in callbacks:
        for epoch, text in monitor.warnings:
            print(f"warning (epoch {epoch}): {text}")


def _format_summary(summary, out):
    keys = (("train_accuracy", "val_accuracy", "test_accuracy")
            if summary.get("val_accuracy") is not None else ("train_loss", "val_loss"))
    parts = [f"{key} {summary[key]:.4f}" for key in keys if summary.get(key) is not None]
    line = f"{summary['epochs']} epochs in {summary['seconds']:.1f} s: " + ", ".join(parts)
    if "note" in summary:
        line += f"\n{summary['note']}"
    return line + (f"\nresults in {out}/" if out else "")


def _evaluate(args):
    from . import experiment

    if args.data_dir is not None:
        _, state = experiment.read_checkpoint(args.checkpoint)
        _warn_data_dir(args.data_dir, RunConfig.from_dict(state["config"]).dataset)
    results = experiment.evaluate(args.checkpoint, data_dir=args.data_dir)
    print(json.dumps(results, indent=2))


def _export(args):
    from .export import export_run

    print(f"wrote {export_run(args.checkpoint, args.out, format=args.format)}")


GRAPH_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot"}


def _formula(args):
    from .viz import parse_expression, parse_values

    values = parse_values(args.values or "")
    output, leaves = parse_expression(args.expression, values)
    unused = [name for name in values if name not in leaves]
    if unused:
        warn(f"--values: {', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not in "
             f"the formula {args.expression!r}; ignored")
    return output


def _fresh_file(stem, suffix) -> str:
    """``stem.suffix`` in the current folder, or ``stem-2.suffix``... if that exists."""
    for n in itertools.count(1):
        path = Path(f"{stem}{'' if n == 1 else f'-{n}'}{suffix}")
        if not path.exists():
            return str(path)


def _graph(args):
    from .viz import draw_graph

    out = args.out if args.out is not None else _fresh_file("graph", ".svg")
    fmt = GRAPH_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise UsageError(f"--out {out}: the drawing's format follows the file name's "
                         f"extension, one of {', '.join(GRAPH_FORMATS)}")
    draw_graph(_formula(args), path=out, format=fmt, layout=args.layout or "auto")
    print(f"wrote {out}")


def _explain(args):
    from .viz import explain

    output = _formula(args)
    if not output.requires_grad:
        raise UsageError("the formula has no variable, so there is no backward pass to "
                         'explain; use a letter for a value, e.g. chainrule explain "x * 3" '
                         "--values x=2")
    table = explain(output)
    print(table.to_markdown() if args.markdown else table)


def _demo(args):
    from .demo import run_demo

    run_demo(args.out, progress=False if args.quiet else None)


def _player(args):
    from .viz import player_cli

    player_cli.run(args)


def _playground(args):
    from .playground import cli as playground_cli

    playground_cli.run(args)


COMMANDS = {"train": _train, "evaluate": _evaluate, "sweep": sweep_cli.run, "export": _export,
            "graph": _graph, "explain": _explain, "demo": _demo, "player": _player,
            "playground": _playground}


def _interrupted(args) -> str:
    """What a Ctrl-C leaves behind, and how to go on."""
    out = getattr(args, "out", None) if args is not None else None
    if getattr(args, "command", None) != "train" or not out:
        return "chainrule: interrupted"
    from .train import CHECKPOINT

    if (Path(out) / CHECKPOINT).exists():
        return (f"chainrule: interrupted; the last finished epoch is saved in {out}: "
                f"continue with `chainrule train --out {out} --resume`")
    return ("chainrule: interrupted before the first epoch ended, so there is nothing to "
            f"resume in {out}: start the run again (without --resume)")


def main(argv=None) -> int:
    code = _main(argv)
    if argv is None and threading.current_thread() is threading.main_thread():
        # The work is done and reported: a Ctrl-C while Python shuts down must not turn
        # a finished run into a silent failure (exit -2).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Nothing is left to clean up but memory, which the process's end returns: spare
        # the interpreter its last full garbage collections on the way out (a tenth of a
        # second after a sweep, which has loaded Dask and matplotlib).
        gc.freeze()
    return code


def _main(argv) -> int:
    args = None
    try:
        args = make_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except ChainruleError as e:
        print(f"chainrule: error: {' '.join(str(e).split())}", file=sys.stderr)  # one line
        return 2
    except OSError as e:  # unreadable or unwritable paths given by the user
        print(f"chainrule: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(_interrupted(args), file=sys.stderr)
        return 130
    return 0
