"""Search spaces: what each ``chainrule train`` option may take in a sweep, and the trials
drawn from them.

An option is fixed (one value) or searched: ``a:b:log`` (log-uniform between a and b, as
CS231n samples learning rates and regularization strengths), ``a:b`` (uniform) or a list
``v1,v2,v3`` (one of them). Random search draws trial ``i`` from its own generator,
``SeedSequence([seed, i])``, so the same seed gives the same trials whatever their number;
grid search walks every combination (a range contributes ``grid_points`` values).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import SpaceError
from ..experiment import RunConfig

# Every option of a run and the kind of value it takes. Lists of hidden sizes are written
# "100" (one layer), "100x50" (two) or "none" (the linear classifier).
KINDS = {"dataset": str, "data_dir": str, "hidden": "layers", "activation": str,
         "dropout": float, "loss": str, "optimizer": str, "lr": float, "momentum": float,
         "weight_decay": float, "reg": float, "lr_schedule": str, "warmup": int,
         "epochs": int, "batch_size": int, "patience": int, "seed": int}
RANGE_KINDS = (float, int)


@dataclass(frozen=True)
class Range:
    """Uniform between low and high, or log-uniform (``log``); integers are rounded."""

    low: float
    high: float
    log: bool
    integer: bool

    def sample(self, rng):
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.integer else float(value)

    def grid(self, points):
        values = (np.geomspace if self.log else np.linspace)(self.low, self.high, points)
        if self.integer:
            return list(dict.fromkeys(int(round(v)) for v in values))
        return [float(v) for v in values]

    def near_border(self, value) -> str | None:
        """'lower' or 'upper' when ``value`` lies in the outer tenth of the range (on the
        log scale for log ranges), else None."""
        scale = math.log if self.log else float
        low, high, at = scale(self.low), scale(self.high), scale(value)
        width = high - low
        if at <= low + 0.1 * width:
            return "lower"
        if at >= high - 0.1 * width:
            return "upper"
        return None

    def __str__(self):
        return f"{self.low:g}:{self.high:g}" + (":log" if self.log else "")


@dataclass(frozen=True)
class Choice:
    """One of a list of values."""

    values: tuple

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def grid(self, points):
        return list(self.values)

    def near_border(self, value) -> str | None:
        numbers = [v for v in self.values if isinstance(v, int | float)]
        if len(numbers) < 3 or len(numbers) != len(self.values):
            return None
        if value == min(numbers):
            return "lower"
        if value == max(numbers):
            return "upper"
        return None

    def __str__(self):
        return ",".join(_format_value(v) for v in self.values)


def _format_value(value):
    if isinstance(value, list | tuple):
        return "x".join(str(v) for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _parse_value(option, kind, text):
    flag = "--" + option.replace("_", "-")
    text = text.strip()
    if kind == "layers":
        if text.lower() == "none":
            return []
        try:
            sizes = [int(part) for part in text.lower().split("x")]
        except ValueError:
            raise SpaceError(f"{flag}: {text!r} is not a list of layer sizes (write 100, "
                             "100x50 for two layers, or none)") from None
        if any(size <= 0 for size in sizes):
            raise SpaceError(f"{flag}: layer sizes must be positive, got {text!r}")
        return sizes
    if kind is str:
        if not text:
            raise SpaceError(f"{flag}: an empty value; give one or a list like a,b")
        return None if option == "activation" and text.lower() == "none" else text
    try:
        value = float(text)
    except ValueError:
        raise SpaceError(f"{flag}: {text!r} is not a number") from None
    if kind is int:
        if value != int(value):
            raise SpaceError(f"{flag}: {text!r} is not an integer")
        return int(value)
    return value


def parse_space(option: str, text: str):
    """The space (or the fixed value) an option's text describes.

    ``"1e-4:1e-1:log"`` -> Range, ``"0:0.5"`` -> Range, ``"relu,tanh"`` -> Choice, a single
    value -> that value. Raises SpaceError with a one-line reason for anything else.
    """
    if option not in KINDS:
        raise SpaceError(f"unknown option {option!r}; a sweep takes "
                         + ", ".join(KINDS))
    kind, flag = KINDS[option], "--" + option.replace("_", "-")
    text = str(text).strip()
    if not text:
        raise SpaceError(f"{flag}: an empty space; give a value, a list a,b,c or a range a:b")
    if ":" in text:
        parts = text.split(":")
        log = len(parts) == 3 and parts[2].strip().lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise SpaceError(f"{flag}: {text!r} is not a range; write a:b or a:b:log")
        if kind not in RANGE_KINDS:
            raise SpaceError(f"{flag} takes a value or a list (a,b,c), not a range {text!r}")
        low, high = (_parse_value(option, float, p) for p in parts[:2])
        if not low < high:
            raise SpaceError(f"{flag}: the range {text!r} is empty or reversed; write the "
                             f"smaller end first ({parts[1]}:{parts[0]}"
                             + (":log)" if log else ")"))
        if log and low <= 0:
            raise SpaceError(f"{flag}: a log range needs positive ends, got {text!r}; use "
                             "a:b for a uniform range that includes 0")
        return Range(low, high, log, integer=kind is int)
    items = text.split(",")
    if any(not item.strip() for item in items):
        raise SpaceError(f"{flag}: {text!r} has an empty entry; write a list as a,b,c")
    values = [_parse_value(option, kind, item) for item in items]
    if len(values) == 1:
        return values[0]
    return Choice(tuple(tuple(v) if isinstance(v, list) else v for v in values))


def _is_space(value) -> bool:
    return isinstance(value, Range | Choice)


@dataclass
class SearchSpace:
    """Fixed options (a ``RunConfig``) plus the searched ones ({option: Range or Choice})."""

    base: RunConfig
    spaces: dict

    @classmethod
    def from_options(cls, options: dict, base: RunConfig | None = None) -> SearchSpace:
        """Build from {option: value or text}; text is parsed with ``parse_space``.

        Values that are not strings are taken as fixed (``{"epochs": 20}``); lists of
        strings are lists of choices (``{"activation": ["relu", "tanh"]}``).
        """
        fixed, spaces = {}, {}
        for option, value in options.items():
            if option not in KINDS:
                raise SpaceError(f"unknown option {option!r}; a sweep takes "
                                 + ", ".join(KINDS))
            if isinstance(value, Range | Choice):
                space = value
            elif isinstance(value, str):
                space = parse_space(option, value)
            elif isinstance(value, list | tuple) and option != "hidden":
                if not value:
                    raise SpaceError(f"--{option.replace('_', '-')}: an empty list")
                space = parse_space(option, ",".join(_format_value(v) for v in value))
            else:
                space = value
            (spaces if _is_space(space) else fixed)[option] = (
                list(space) if option == "hidden" and isinstance(space, tuple) else space)
        base = dataclasses.replace(base or RunConfig(), **fixed)
        return cls(base, spaces)

    def config(self, values: dict) -> RunConfig:
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return dataclasses.replace(self.base, **values)

    def random(self, trials: int, seed: int) -> list[dict]:
        """``trials`` draws; trial i depends on (seed, i) alone."""
        draws = []
        for i in range(trials):
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), i]))
            draws.append({name: space.sample(rng) for name, space in self.spaces.items()})
        return draws

    def grid(self, points: int = 3) -> list[dict]:
        """Every combination; a range gives ``points`` values."""
        names = list(self.spaces)
        axes = [self.spaces[name].grid(points) for name in names]
        return [dict(zip(names, combo)) for combo in itertools.product(*axes)]

    def border_warnings(self, best: dict) -> list[str]:
        """One sentence per searched option whose best value lies on its range's border."""
        warnings = []
        for name, space in self.spaces.items():
            value = best.get(name)
            if value is None or isinstance(value, list | tuple):
                continue
            side = space.near_border(value)
            if side is not None:
                flag = "--" + name.replace("_", "-")
                warnings.append(f"the best {flag} {_format_value(value)} lies at the {side} "
                                f"border of {space}; widen the range to see past it")
        return warnings

    def describe(self) -> dict:
        return {name: str(space) for name, space in self.spaces.items()}
