"""Learning-rate schedulers: the recursive updates follow the closed-form schedules,
the constructor's first step, ReduceLROnPlateau's rules, state_dict round-trips."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.errors import CheckpointError
from chainrule.optim import lr_scheduler as sched

from .test_optimizers import assert_plain

BASES = [0.1, 0.04]


def make_optimizer():
    return optim.SGD([{"params": [cr.zeros(2, requires_grad=True)]},
                      {"params": [cr.zeros(1, requires_grad=True)], "lr": BASES[1]}],
                     lr=BASES[0], momentum=0.9)


def rates(scheduler, epochs):
    """The rates of every group at epochs 0 .. epochs-1 (stepping the optimizer first)."""
    out = []
    for _ in range(epochs):
        out.append([g["lr"] for g in scheduler.optimizer.param_groups])
        assert out[-1] == scheduler.get_last_lr()
        scheduler.optimizer.step()
        scheduler.step()
    return np.array(out)


def expected(factor, epochs):
    """Each group's base rate times ``factor(epoch)``."""
    return np.array([[base * factor(e) for base in BASES] for e in range(epochs)])


def cosine(e, T, eta_min, base):  # noqa: N803
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T)) / 2


def test_step_lr():
    got = rates(sched.StepLR(make_optimizer(), step_size=3, gamma=0.5), 12)
    np.testing.assert_allclose(got, expected(lambda e: 0.5 ** (e // 3), 12), rtol=1e-12)


def test_multistep_lr_counts_repeated_milestones():
    got = rates(sched.MultiStepLR(make_optimizer(), milestones=[2, 5, 5], gamma=0.1), 8)
    factor = lambda e: 0.1 ** sum(m <= e for m in [2, 5, 5])  # noqa: E731
    np.testing.assert_allclose(got, expected(factor, 8), rtol=1e-12)


def test_exponential_lr():
    got = rates(sched.ExponentialLR(make_optimizer(), gamma=0.8), 10)
    np.testing.assert_allclose(got, expected(lambda e: 0.8**e, 10), rtol=1e-12)


def test_cosine_annealing_recursive_form_follows_the_cosine_through_several_periods():
    T, eta_min = 7, 0.002  # noqa: N806
    got = rates(sched.CosineAnnealingLR(make_optimizer(), T_max=T, eta_min=eta_min), 3 * T + 2)
    want = [[cosine(e, T, eta_min, b) for b in BASES] for e in range(3 * T + 2)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-15)
    assert got[T, 0] == pytest.approx(eta_min) and got[2 * T, 0] == pytest.approx(BASES[0])


def test_linear_lr_warm_up():
    got = rates(sched.LinearLR(make_optimizer(), start_factor=0.2, end_factor=0.8,
                               total_iters=4), 8)
    factor = lambda e: 0.2 + (0.8 - 0.2) * min(e, 4) / 4  # noqa: E731
    np.testing.assert_allclose(got, expected(factor, 8), rtol=1e-12)


def test_sequential_lr_warm_up_then_cosine():
    opt = make_optimizer()
    warm = sched.LinearLR(opt, start_factor=0.1, total_iters=4)
    cos = sched.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    got = rates(sched.SequentialLR(opt, [warm, cos], milestones=[4]), 16)
    want = [[b * (0.1 + 0.9 * e / 4) if e < 4 else cosine(e - 4, 10, 0.001, b) for b in BASES]
            for e in range(16)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_constant_lr_holds_a_factor_then_restores_the_rate():
    got = rates(sched.ConstantLR(make_optimizer(), factor=0.25, total_iters=3), 7)
    np.testing.assert_allclose(got, expected(lambda e: 0.25 if e < 3 else 1.0, 7), rtol=1e-12)


def test_chained_scheduler_multiplies_the_factors():
    opt = make_optimizer()
    chain = sched.ChainedScheduler([sched.ConstantLR(opt, factor=0.5, total_iters=2),
                                    sched.ExponentialLR(opt, gamma=0.8)])
    assert chain.optimizer is opt
    got = rates(chain, 6)
    np.testing.assert_allclose(got, expected(lambda e: (0.5 if e < 2 else 1) * 0.8**e, 6),
                               rtol=1e-12)


def test_chained_scheduler_of_warm_up_and_steps():
    opt = make_optimizer()
    chain = sched.ChainedScheduler([sched.LinearLR(opt, start_factor=0.5, total_iters=2),
                                    sched.StepLR(opt, step_size=3, gamma=0.1)], optimizer=opt)
    got = rates(chain, 7)
    factor = lambda e: (0.5 + 0.5 * min(e, 2) / 2) * 0.1 ** (e // 3)  # noqa: E731
    np.testing.assert_allclose(got, expected(factor, 7), rtol=1e-12)


def test_constructor_performs_the_first_step():
    opt = make_optimizer()
    s = sched.LinearLR(opt, start_factor=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == BASES
    assert s.base_lrs == BASES and s.last_epoch == 0
    assert [g["lr"] for g in opt.param_groups] == [b * 0.5 for b in BASES] == s.get_last_lr()


def test_resuming_needs_initial_lr():
    with pytest.raises(optim.OptimizerError, match="initial_lr"):
        sched.StepLR(make_optimizer(), step_size=2, last_epoch=4)


@pytest.mark.parametrize("make, message", [
    (lambda o: sched.StepLR(o, step_size=0), "step_size"),
    (lambda o: sched.LinearLR(o, start_factor=0), "start_factor"),
    (lambda o: sched.LinearLR(o, end_factor=1.5), "end_factor"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: sched.SequentialLR(o, [sched.StepLR(o, 2)], milestones=[3]), "milestone"),
    (lambda o: sched.SequentialLR(o, [sched.StepLR(make_optimizer(), 2)], []), "another"),
    (lambda o: sched.SequentialLR(o, [sched.ReduceLROnPlateau(o)], []), "ReduceLROnPlateau"),
    (lambda o: sched.ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: sched.ReduceLROnPlateau(o, mode="up"), "mode"),
    (lambda o: sched.ReduceLROnPlateau(o, min_lr=[0.1]), "min_lr"),
    (lambda o: sched.ExponentialLR("optimizer", gamma=0.9), "Optimizer"),
    (lambda o: sched.ConstantLR(o, factor=0), "factor"),
    (lambda o: sched.ConstantLR(o, factor=1.5), "factor"),
    (lambda o: sched.ConstantLR(o, total_iters=0), "total_iters"),
    (lambda o: sched.ChainedScheduler([]), "at least one"),
    (lambda o: sched.SequentialLR(o, [sched.StepLR(o, 2), sched.ChainedScheduler(
        [sched.ExponentialLR(o, 0.9)])], milestones=[3]), "only the first"),
    (lambda o: sched.ChainedScheduler([sched.StepLR(o, 2), sched.StepLR(make_optimizer(), 2)]),
     "another"),
    (lambda o: sched.ChainedScheduler([sched.ReduceLROnPlateau(o)]), "ReduceLROnPlateau"),
    (lambda o: sched.ChainedScheduler([sched.StepLR(o, 2)], optimizer=make_optimizer()),
     "another"),
])
def test_invalid_arguments_are_rejected(make, message):
    with pytest.raises(optim.OptimizerError, match=message):
        make(make_optimizer())


# ----- ReduceLROnPlateau ----------------------------------------------------------------
def plateau_rates(metrics, **kwargs):
    opt = make_optimizer()
    s = sched.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        s.step(m)
        out.append(s.get_last_lr()[0])
    return out


def test_plateau_reduces_after_patience_bad_epochs():
    # best = 1 after epoch 1; epochs 2 and 3 are bad; the 2nd bad one exceeds patience 1.
    got = plateau_rates([1.0, 2.0, 3.0, 0.5, 0.6, 0.7, 0.8], factor=0.5, patience=1)
    np.testing.assert_allclose(got, [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])


def test_plateau_threshold_cooldown_and_floor():
    # 0.99995 is not better than 1 by the relative threshold 1e-4: it counts as bad.
    assert plateau_rates([1.0, 0.99995], patience=0)[-1] == pytest.approx(0.01)
    # after a reduction, `cooldown` epochs are not counted as bad
    got = plateau_rates([1.0] * 6, factor=0.5, patience=0, cooldown=2)
    np.testing.assert_allclose(got, [0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    # never below min_lr, and no change smaller than eps
    got = plateau_rates([1.0] * 6, factor=0.5, patience=0, min_lr=0.03)
    np.testing.assert_allclose(got, [0.1, 0.05, 0.03, 0.03, 0.03, 0.03])


def test_plateau_max_mode_with_absolute_threshold():
    got = plateau_rates([0.5, 0.6, 0.62, 0.7, 0.71], mode="max", threshold=0.05,
                        threshold_mode="abs", patience=0, factor=0.5)
    np.testing.assert_allclose(got, [0.1, 0.1, 0.05, 0.05, 0.025])


# ----- state_dict -----------------------------------------------------------------------
def _warmup_cosine(opt):
    return sched.SequentialLR(opt, [sched.LinearLR(opt, start_factor=0.1, total_iters=3),
                                    sched.CosineAnnealingLR(opt, T_max=6)], milestones=[3])


MAKERS = {
    "StepLR": lambda o: sched.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: sched.MultiStepLR(o, milestones=[1, 4, 4, 7], gamma=0.5),
    "ExponentialLR": lambda o: sched.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda o: sched.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
    "LinearLR": lambda o: sched.LinearLR(o, total_iters=8),
    "SequentialLR": _warmup_cosine,
    "ConstantLR": lambda o: sched.ConstantLR(o, factor=0.5, total_iters=4),
    "ChainedScheduler": lambda o: sched.ChainedScheduler(
        [sched.ConstantLR(o, factor=0.5, total_iters=3), sched.ExponentialLR(o, gamma=0.9)]),
}


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("split", [2, 5])
def test_scheduler_state_dict_round_trip(name, split):
    opt = make_optimizer()
    straight = MAKERS[name](opt)
    rates(straight, split)
    saved_opt, saved = opt.state_dict(), straight.state_dict()
    assert_plain(saved)
    later = rates(straight, 6)

    opt2 = make_optimizer()
    resumed = MAKERS[name](opt2)
    resumed.load_state_dict(saved)
    opt2.load_state_dict(saved_opt)  # after the scheduler, as in PyTorch
    np.testing.assert_allclose(rates(resumed, 6), later, rtol=1e-12)


def test_plateau_state_dict_round_trip():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]
    opt = make_optimizer()
    straight = sched.ReduceLROnPlateau(opt, patience=1, cooldown=1, min_lr=[0.0, 0.001])
    for m in metrics[:4]:
        straight.step(m)
    saved, saved_opt = straight.state_dict(), opt.state_dict()
    assert_plain(saved)
    opt2 = make_optimizer()
    resumed = sched.ReduceLROnPlateau(opt2, patience=1, cooldown=1, min_lr=[0.0, 0.001])
    resumed.load_state_dict(saved)
    opt2.load_state_dict(saved_opt)
    for m in metrics[4:]:
        straight.step(m)
        resumed.step(m)
        assert resumed.get_last_lr() == straight.get_last_lr()
    assert straight.get_last_lr()[0] < BASES[0]


def test_sequential_state_dict_holds_the_children():
    saved = _warmup_cosine(make_optimizer()).state_dict()
    assert len(saved["_schedulers"]) == 2 and saved["_milestones"] == [3]
    assert saved["_schedulers"][1]["T_max"] == 6
    with pytest.raises(CheckpointError, match="2 schedulers"):
        _warmup_cosine(make_optimizer()).load_state_dict({**saved, "_schedulers": []})


def test_chained_state_dict_holds_the_children():
    saved = MAKERS["ChainedScheduler"](make_optimizer()).state_dict()
    assert [child["factor" if i == 0 else "gamma"] for i, child in
            enumerate(saved["_schedulers"])] == [0.5, 0.9]
    with pytest.raises(CheckpointError, match="2 schedulers"):
        MAKERS["ChainedScheduler"](make_optimizer()).load_state_dict(
            {**saved, "_schedulers": saved["_schedulers"][:1]})


def test_load_state_dict_rejects_another_schedulers_state():
    saved = sched.StepLR(make_optimizer(), step_size=2).state_dict()
    with pytest.raises(CheckpointError, match="step_size"):
        sched.ExponentialLR(make_optimizer(), gamma=0.5).load_state_dict(saved)
