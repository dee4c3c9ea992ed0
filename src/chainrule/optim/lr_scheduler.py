"""Learning-rate schedules: change each parameter group's ``"lr"`` once per epoch.

Call ``scheduler.step()`` after ``optimizer.step()``, once per epoch (or per iteration,
for warm-ups). As in ``torch.optim.lr_scheduler``, building a scheduler performs its
first step: it records each group's starting rate as ``group["initial_lr"]`` (kept in
``base_lrs``), sets ``last_epoch`` to 0 and the rates to the schedule's value at epoch 0.
The rates are updated *recursively* from the current ``group["lr"]`` (so schedules can be
chained), with PyTorch's formulas, so that the numbers agree with PyTorch's exactly.
``state_dict()`` holds plain Python data only (numbers, lists, dicts, strings).
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_right
from collections import Counter

from ..errors import CheckpointError
from .optimizer import Optimizer, OptimizerError


class LRScheduler:
    """Base class: subclasses implement ``get_lr()`` (the recursive rule, from the groups'
    current rates) and ``_closed_form_lr()`` (the rate at ``last_epoch`` from ``base_lrs``).

    Args:
        optimizer: the optimizer whose ``param_groups[i]["lr"]`` are set.
        last_epoch: index of the last epoch done; -1 (the default) starts the schedule.
            Another value resumes one and needs ``"initial_lr"`` in every group.
    """

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise OptimizerError(
                    f"param_groups[{i}] has no 'initial_lr', needed to resume a schedule at "
                    f"last_epoch={last_epoch}: load the optimizer's state dict first, or "
                    "start with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        """The next rate of each group, from the current ones (called by ``step()``)."""
        raise NotImplementedError

    def _closed_form_lr(self):
        return self.get_lr()

    def get_last_lr(self):
        """The rate of each parameter group as last set by this scheduler."""
        return list(self._last_lr)

    def step(self):
        """Advance the schedule by one epoch and set the optimizer's rates."""
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch=None):
        """Move to the next epoch (recursive rule), or jump to ``epoch`` (closed form)."""
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = self._closed_form_lr()
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = self._group_lrs()

    def _group_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    # ----- saving and loading -----------------------------------------------------------
    _not_saved = ("optimizer",)

    def state_dict(self):
        """The scheduler's variables (everything but the optimizer), as plain data."""
        return {k: _plain(v) for k, v in vars(self).items() if k not in self._not_saved}

    def load_state_dict(self, state_dict):
        """Restore variables saved by ``state_dict()`` of the same kind of scheduler."""
        if not isinstance(state_dict, dict):
            raise CheckpointError("a scheduler state dict must be a dict")
        unknown = sorted(k for k in state_dict if k not in vars(self) or k in self._not_saved)
        if unknown:
            raise CheckpointError(f"the state dict has entries that a {type(self).__name__} "
                                  f"does not have: {', '.join(map(str, unknown))}")
        for key, value in state_dict.items():
            setattr(self, key, _plain(value))


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise OptimizerError(f"a learning-rate scheduler needs an Optimizer, not "
                             f"{type(optimizer).__name__}")


def _check_positive_int(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise OptimizerError(f"{name} must be a positive integer, got {value!r}")


def _plain(value):
    """A copy of ``value`` made of plain dicts, lists and numbers (no aliasing)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    return value


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs:
    ``lr = base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_positive_int("step_size", step_size)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size)
                for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each epoch listed in ``milestones`` (a milestone
    listed twice multiplies by ``gamma**2``)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._group_lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._group_lrs()]

    def _closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base in self.base_lrs]

    def state_dict(self):
        state = super().state_dict()
        state["milestones"] = sorted(self.milestones.elements())  # a list, repeats kept
        return state

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        milestones = self.milestones
        self.milestones = Counter(milestones if isinstance(milestones, list | tuple) else
                                  dict(milestones))


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch: ``lr = base_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._group_lrs()
        return [lr * self.gamma for lr in self._group_lrs()]

    def _closed_form_lr(self):
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Follow half a cosine from the base rate down to ``eta_min`` over ``T_max`` epochs
    (then back up, periodically)::

        lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Computed, as in PyTorch, recursively from the previous rate:
    ``lr(t) = eta_min + (lr(t-1) - eta_min) * (1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T))``.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):  # noqa: N803 (PyTorch)
        if T_max <= 0:
            raise OptimizerError(f"T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min  # noqa: N806
        if self._is_initial:
            return self._group_lrs()
        if self._step_count == 1 and t > 0:  # resumed at last_epoch > 0: closed form
            return [eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                    for base in self.base_lrs]
        if (t - 1 - T) % (2 * T) == 0:  # the bottom of the cosine: the ratio would be 0/0
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._group_lrs(), strict=True)]
        ratio_num = 1 + math.cos(math.pi * t / T)
        ratio_den = 1 + math.cos(math.pi * (t - 1) / T)
        return [ratio_num / ratio_den * (lr - eta_min) + eta_min for lr in self._group_lrs()]

    def _closed_form_lr(self):
        return [self.eta_min + (base - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]


class ConstantLR(LRScheduler):
    """Multiply the rate by ``factor`` for the first ``total_iters`` epochs, then restore
    it: ``lr = base_lr * factor`` while epoch < total_iters, ``base_lr`` from then on (a
    flat warm-up; chain it with a decay in ``ChainedScheduler``)."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not 0 < factor <= 1:  # the rate is divided by it at total_iters
            raise OptimizerError(f"factor must be in (0, 1], got {factor!r}")
        _check_positive_int("total_iters", total_iters)
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._group_lrs()]
        if self.last_epoch != self.total_iters:
            return self._group_lrs()
        return [lr * (1.0 / self.factor) for lr in self._group_lrs()]

    def _closed_form_lr(self):
        done = self.last_epoch >= self.total_iters
        return [base * (self.factor + done * (1 - self.factor)) for base in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the rate by a factor going linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` epochs (a warm-up when start_factor < 1), then keep it."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if not 0 < start_factor <= 1:
            raise OptimizerError(f"start_factor must be in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise OptimizerError(f"end_factor must be in [0, 1], got {end_factor!r}")
        _check_positive_int("total_iters", total_iters)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._group_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._group_lrs()
        change = self.end_factor - self.start_factor
        # factor(t) / factor(t-1), with factor(t) = start + change * t / total_iters
        ratio = 1.0 + change / (self.total_iters * self.start_factor
                                + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in self._group_lrs()]

    def _closed_form_lr(self):
        done = min(self.total_iters, self.last_epoch)
        return [base * (self.start_factor
                        + (self.end_factor - self.start_factor) * done / self.total_iters)
                for base in self.base_lrs]


class _Composite(LRScheduler):
    """A scheduler made of other schedulers (in ``_schedulers``), all on one optimizer;
    its state dict holds each child's state dict under ``"_schedulers"``."""

    _not_saved = ("optimizer", "_schedulers")

    def _adopt(self, schedulers, optimizer):
        schedulers = list(schedulers)
        name = type(self).__name__
        if not schedulers:
            raise OptimizerError(f"{name} needs at least one scheduler")
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau) or not isinstance(scheduler,
                                                                          LRScheduler):
                raise OptimizerError(f"{name}: scheduler {i} is a "
                                     f"{type(scheduler).__name__}; it takes epoch-driven "
                                     "schedulers (not ReduceLROnPlateau)")
            if scheduler.optimizer is not optimizer:
                raise OptimizerError(f"{name}: scheduler {i} belongs to another optimizer")
        self._schedulers = schedulers
        self.optimizer = optimizer

    def state_dict(self):
        """This scheduler's variables, with each child's state dict under "_schedulers"."""
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        children = state.pop("_schedulers", None)
        if children is None or len(children) != len(self._schedulers):
            raise CheckpointError(f"the state dict must hold the states of "
                                  f"{len(self._schedulers)} schedulers under '_schedulers'")
        super().load_state_dict(state)
        for scheduler, child in zip(self._schedulers, children, strict=True):
            scheduler.load_state_dict(child)


class SequentialLR(_Composite):
    """Run ``schedulers`` one after another, switching at the epochs in ``milestones``.

    Each scheduler must be built on the same optimizer; at a milestone the next one
    starts from its epoch 0 (its closed form at 0). ``len(milestones)`` must be
    ``len(schedulers) - 1``. Typical: a ``LinearLR`` warm-up, then ``CosineAnnealingLR``.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        self._adopt(schedulers, optimizer)
        milestones = [int(m) for m in milestones]
        if len(milestones) != len(self._schedulers) - 1:
            raise OptimizerError(f"SequentialLR needs one milestone fewer than schedulers: got "
                                 f"{len(self._schedulers)} schedulers and {len(milestones)} "
                                 "milestones")
        for i, scheduler in enumerate(self._schedulers[1:], start=1):
            if isinstance(scheduler, _Composite):  # it has no rate of its own at epoch 0
                raise OptimizerError(f"SequentialLR: scheduler {i} is a "
                                     f"{type(scheduler).__name__}, which cannot restart at a "
                                     "milestone; only the first scheduler may be one")
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        # Building the children stepped each of them once: undo that, then start the first.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in self._schedulers:
            _undo_step(scheduler)
        first = self._schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)  # the next schedule starts at its epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """Step several schedulers together: each ``step()`` steps every one in order, so
    their factors multiply (e.g. a ``ConstantLR`` warm-up times an ``ExponentialLR`` decay).

    The schedulers are built first, on one optimizer (each made its first step then, so
    the rates already hold the product of their epoch-0 factors); building the chain
    makes no step. ``optimizer`` defaults to the first scheduler's.
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if optimizer is None and schedulers:
            optimizer = getattr(schedulers[0], "optimizer", None)
        self._adopt(schedulers, optimizer)
        self._last_lr = self._group_lrs()

    def step(self):
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._group_lrs()


def _undo_step(scheduler):
    """Take back the step a scheduler made when it was built (PyTorch's recursive_undo)."""
    if isinstance(scheduler, _Composite):
        for child in scheduler._schedulers:
            _undo_step(child)
    else:
        scheduler.last_epoch -= 1


class ReduceLROnPlateau(LRScheduler):
    """Divide the rate by 1/``factor`` when a metric stops improving.

    Call ``step(metric)`` once per epoch with e.g. the validation loss. After more than
    ``patience`` epochs without improvement (by more than ``threshold``, relative or
    absolute) each group's rate becomes ``max(lr * factor, min_lr)``, and the next
    ``cooldown`` epochs are not counted. Changes smaller than ``eps`` are skipped.

    Args:
        mode: "min" (lower metric is better) or "max".
        threshold_mode: "rel": better means below best * (1 - threshold) (or above
            best * (1 + threshold) in "max" mode); "abs": below best - threshold.
        min_lr: a floor for all groups, or a list with one per group.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer(optimizer)
        if factor >= 1.0:
            raise OptimizerError(f"factor must be < 1.0 to reduce the rate, got {factor!r}")
        if mode not in ("min", "max"):
            raise OptimizerError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise OptimizerError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, list | tuple):
            if len(min_lr) != len(optimizer.param_groups):
                raise OptimizerError(f"expected {len(optimizer.param_groups)} min_lr values "
                                     f"(one per parameter group), got {len(min_lr)}")
            min_lr = list(min_lr)
        self.min_lr = min_lr  # as given: one floor for all groups, or a list
        self.min_lrs = list(min_lr) if isinstance(min_lr, list) else [min_lr] * len(
            optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = self._group_lrs()
        self._reset()

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def is_better(self, a, best):
        """Whether metric ``a`` improves on ``best`` by more than the threshold."""
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics):
        """Record this epoch's metric (a number or one-element Tensor); maybe reduce."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._group_lrs()

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):  # a group was added since
            if isinstance(self.min_lr, list):
                raise OptimizerError(f"the optimizer has {len(groups)} parameter groups but "
                                     f"min_lrs has {len(self.min_lrs)} values; set min_lrs "
                                     "to one per group")
            self.min_lrs = [self.min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr
