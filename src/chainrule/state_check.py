"""Checking a loaded checkpoint against the state the trainer itself would save.

A checkpoint is data from a file, which anyone may have edited. Before the trainer
restores anything, ``check_like`` compares it, value by value, with a *template*: the
state this very trainer produces (``Trainer._state``), so that a value of the wrong kind,
shape or length is reported once, as one ``CheckpointError`` naming where it is, rather
than failing later, deep in a training step.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import CheckpointError

# Where a dict's keys may be a subset of the template's: an optimizer keeps state only
# for parameters that have had a gradient; a scheduler's milestones may repeat.
_OPTIONAL_KEYS = ("['optimizer']['state']",)
_FREE_LENGTH = ("['milestones']",)


def check_like(saved, template, where: str = "") -> None:
    """Raise ``CheckpointError`` unless ``saved`` has the structure of ``template``.

    Dicts need the same keys, lists and tuples the same length, arrays the same shape and
    kind of dtype with no NaN; numbers must be numbers (an int where the template has an
    int) and not NaN; strings, bools and None must match in kind.
    """
    if isinstance(template, dict):
        if not isinstance(saved, dict):
            _refuse(where, "a dict", saved)
        missing = [k for k in template if k not in saved]
        unexpected = [k for k in saved if k not in template]
        if where in _OPTIONAL_KEYS:
            missing = []
        if missing or unexpected:
            parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"has unknown {', '.join(map(repr, unexpected))}"] if unexpected else [])
            raise CheckpointError(f"checkpoint{where} {' and '.join(parts)}")
        for key, value in saved.items():
            check_like(value, template[key], f"{where}[{key!r}]")
    elif isinstance(template, list | tuple):
        if not isinstance(saved, list | tuple):
            _refuse(where, "a list", saved)
        if any(where.endswith(free) for free in _FREE_LENGTH):
            for i, value in enumerate(saved):
                if template:
                    check_like(value, template[0], f"{where}[{i}]")
            return
        if len(saved) != len(template):
            raise CheckpointError(f"checkpoint{where} has {len(saved)} entries; this model "
                                  f"and optimizer need {len(template)}")
        for i, (value, expected) in enumerate(zip(saved, template)):
            check_like(value, expected, f"{where}[{i}]")
    elif isinstance(template, np.ndarray):
        if not isinstance(saved, np.ndarray):
            _refuse(where, f"an array of shape {template.shape}", saved)
        if saved.shape != template.shape or saved.dtype.kind != template.dtype.kind:
            raise CheckpointError(f"checkpoint{where} is {saved.dtype} of shape {saved.shape}; "
                                  f"this model needs {template.dtype} of shape "
                                  f"{template.shape}")
        if saved.dtype.kind in "fc" and np.isnan(saved).any():
            raise CheckpointError(f"checkpoint{where} holds NaN")
    elif isinstance(template, bool) or template is None or isinstance(template, str):
        if type(saved) is not type(template):
            _refuse(where, type(template).__name__ if template is not None else "None", saved)
    elif isinstance(template, int | float):
        wanted = int if isinstance(template, int) else int | float
        if isinstance(saved, bool) or not isinstance(saved, wanted):
            _refuse(where, "an integer" if wanted is int else "a number", saved)
        if isinstance(saved, float) and math.isnan(saved):
            raise CheckpointError(f"checkpoint{where} is NaN")


def check_history(history, epoch: int) -> list:
    """The per-epoch records: one dict of numbers per finished epoch, epochs 1, 2, ..."""
    if not isinstance(history, list) or len(history) != epoch:
        raise CheckpointError(f"checkpoint['history'] must list the {epoch} finished epochs")
    for i, record in enumerate(history, 1):
        if not isinstance(record, dict) or record.get("epoch") != i:
            raise CheckpointError(f"checkpoint['history'][{i - 1}] is not the record of "
                                  f"epoch {i}")
        for key, value in record.items():
            if not isinstance(key, str) or not (
                    value is None or isinstance(value, int | float | str | dict | list)):
                raise CheckpointError(f"checkpoint['history'][{i - 1}][{key!r}] is not a "
                                      "plain value")
    return history


def check_settings(saved, template, where: str, changing) -> None:
    """Values that only the run's options set (a rate's decay, a schedule's length) must
    equal this run's; only the keys in ``changing`` (counters, the current rate) may
    differ. ``saved`` must already have passed ``check_like``."""
    if isinstance(template, dict):
        for key, expected in template.items():
            if key in changing:
                continue
            if isinstance(expected, list) and expected and isinstance(expected[0], dict):
                for i, (a, b) in enumerate(zip(saved[key], expected)):
                    check_settings(a, b, f"{where}[{key!r}][{i}]", changing)
            elif _plain(saved[key]) != _plain(expected):
                raise CheckpointError(f"checkpoint{where}[{key!r}] is {_brief(saved[key])}; "
                                      f"this run's options give {_brief(expected)}")


def check_range(value, where: str, low=0.0, high=math.inf) -> None:
    """A number in [low, high]."""
    if not low <= value <= high:
        raise CheckpointError(f"checkpoint{where} is {value!r}, outside [{low}, {high}]")


def _plain(value):
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _brief(value) -> str:
    """A value in a few characters, on one line."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return " ".join(repr(value).split())[:40]


def _refuse(where, wanted, saved):
    raise CheckpointError(f"checkpoint{where} should be {wanted}, found "
                          f"{type(saved).__name__} {_brief(saved)}")
