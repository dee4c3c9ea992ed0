"""The ``chainrule`` command line: ``train``, ``evaluate``, ``sweep``, ``graph``, ``explain``,
``demo``.

A user error (an unknown choice, a bad size, missing data, an unreadable checkpoint)
prints one line saying what is wrong and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .data import DATASETS
from .errors import ChainruleError
from .experiment import OPTIMIZERS, SCHEDULES, RunConfig
from .nn import ACTIVATIONS
from .sweep import cli as sweep_cli
from .train import LOSSES


class UsageError(ChainruleError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


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


def _add_train_options(p):
    defaults = RunConfig()
    p.add_argument("--dataset", default=defaults.dataset, choices=DATASETS)
    p.add_argument("--data-dir", help="where the data set's files are (MNIST, CIFAR-10)")
    p.add_argument("--hidden", nargs="+", type=_hidden_size, default=defaults.hidden,
                   help="hidden layer sizes; 'none' gives the linear classifier (default 100)")
    p.add_argument("--activation", default="relu", choices=list(ACTIVATIONS))
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--loss", default="softmax", choices=list(LOSSES))
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, help="learning rate (default: per data set)")
    p.add_argument("--momentum", type=float, default=defaults.momentum,
                   help="for --optimizer momentum and nesterov (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0,
                   help="the optimizer's weight decay: wd * W added to the gradient, or "
                        "for adamw the weights shrunk by lr * wd each step")
    p.add_argument("--reg", type=float, default=0.0,
                   help="lambda of the loss term lambda * sum(W^2) over weights")
    p.add_argument("--lr-schedule", default="none", choices=SCHEDULES)
    p.add_argument("--warmup", type=int, default=0, help="epochs of linear warm-up")
    p.add_argument("--epochs", type=int, help="default: per data set")
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--patience", type=int,
                   help="stop after this many epochs without a better validation accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for the checkpoint, summary.json, history.csv, plots")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its own options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--diagnose", action="store_true",
                   help="watch for dead ReLUs, saturation and bad update sizes per layer; "
                        "writes diagnostics.png")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chainrule", description="Backpropagation you can see.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train_options(commands.add_parser("train", help="train an MLP on a data set"))
    ev = commands.add_parser("evaluate", help="re-evaluate a trained model")
    ev.add_argument("--checkpoint", required=True, help="the --out folder of a training run")
    ev.add_argument("--data-dir")
    sweep_cli.add_parser(commands)
    for name, text in (("graph", "draw the computational graph of a small formula"),
                       ("explain", "show the backward pass of a small formula step by step")):
        p = commands.add_parser(name, help=text)
        p.add_argument("expression", help='a formula such as "(x + y) * z"')
        p.add_argument("--values", default="", help="the variables, e.g. x=-2,y=5,z=-4")
        if name == "graph":
            p.add_argument("--out", help="file to write (default: print to the terminal)")
            p.add_argument("--format", choices=("svg", "dot"),
                           help="default: from --out's suffix, else svg")
        else:
            p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    demo = commands.add_parser("demo", help="the lecture's examples, then a training run")
    demo.add_argument("--out", default="runs/demo", help="where the training run goes")
    demo.add_argument("--quiet", action="store_true")
    return parser


def config_from_args(args) -> RunConfig:
    hidden = [] if args.hidden == [None] else args.hidden
    if None in hidden:
        raise UsageError("--hidden: 'none' cannot be mixed with sizes")
    return RunConfig(
        dataset=args.dataset, data_dir=args.data_dir, hidden=hidden,
        activation=args.activation, dropout=args.dropout, loss=args.loss,
        optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
        weight_decay=args.weight_decay, reg=args.reg, lr_schedule=args.lr_schedule,
        warmup=args.warmup, epochs=args.epochs, batch_size=args.batch_size,
        patience=args.patience, seed=args.seed, out=args.out)


def _check_resume(args):
    """--resume takes the run's saved options: an option given again must agree with them
    (re-running the same command with --resume works); a different one is refused."""
    from .experiment import saved_config

    saved = saved_config(args.out).to_dict()
    defaults = vars(make_parser().parse_args(["train"]))
    wanted = config_from_args(args).to_dict()
    differ = [f"--{k.replace('_', '-')}" for k, v in wanted.items()
              if k not in ("out", "data_dir") and getattr(args, k, v) != defaults.get(k, v)
              and v != saved.get(k)]
    if differ:
        raise UsageError(f"--resume continues the run in {args.out} with the options it was "
                         f"started with; {', '.join(differ)} differ from them (leave them "
                         "out, or start a new run)")


def _train(args):
    from . import experiment

    if args.resume:
        _check_resume(args)
    callbacks = []
    if args.diagnose:
        from .diagnostics import DiagnosticsMonitor

        callbacks.append(DiagnosticsMonitor(args.out))
    summary = experiment.train(config_from_args(args), resume=args.resume,
                               progress=False if args.quiet else None, callbacks=callbacks)
    print(_format_summary(summary, args.out))
    for monitor in callbacks:
        for epoch, text in monitor.warnings:
            print(f"warning (epoch {epoch}): {text}")


def _format_summary(summary, out):
    parts = [f"{key} {summary[key]:.4f}" for key in
             ("train_accuracy", "val_accuracy", "test_accuracy") if key in summary]
    line = f"{summary['epochs']} epochs in {summary['seconds']:.1f} s: " + ", ".join(parts)
    if "note" in summary:
        line += f"\n{summary['note']}"
    return line + (f"\nresults in {out}/" if out else "")


def _evaluate(args):
    from . import experiment

    results = experiment.evaluate(args.checkpoint, data_dir=args.data_dir)
    print(json.dumps(results, indent=2))


def _formula(args):
    from .viz import parse_expression, parse_values

    output, _ = parse_expression(args.expression, parse_values(args.values))
    return output


def _graph(args):
    from .viz import draw_graph

    fmt = args.format or ("dot" if args.out and args.out.endswith(".dot") else "svg")
    drawing = draw_graph(_formula(args), path=args.out, format=fmt)
    print(f"wrote {args.out}" if args.out else drawing)


def _explain(args):
    from .viz import explain

    table = explain(_formula(args))
    print(table.to_markdown() if args.markdown else table)


def _demo(args):
    from .demo import run_demo

    run_demo(args.out, progress=False if args.quiet else None)


COMMANDS = {"train": _train, "evaluate": _evaluate, "sweep": sweep_cli.run, "graph": _graph,
            "explain": _explain, "demo": _demo}


def main(argv=None) -> int:
    try:
        args = make_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except ChainruleError as e:
        print(f"chainrule: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # unreadable or unwritable paths given by the user
        print(f"chainrule: error: {e.strerror or e}: {e.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    return 0
