"""The optimizers and schedulers give PyTorch's numbers: the same small MLP, data and
hyperparameters in float64 end at the same parameters after 20 steps, and the schedules
give the same learning rates epoch by epoch."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.optim import lr_scheduler

torch = pytest.importorskip("torch")

STEPS = 20


def _problem():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 4))
    y = rng.integers(0, 3, size=16)
    weights = [rng.standard_normal((4, 8)) * 0.5, rng.standard_normal(8) * 0.1,
               rng.standard_normal((8, 3)) * 0.5, rng.standard_normal(3) * 0.1]
    return x, y, weights


def _loss_chainrule(params, x, y):
    w1, b1, w2, b2 = params
    hidden = cr.relu(cr.matmul(x, w1) + b1)
    logp = cr.log_softmax(cr.matmul(hidden, w2) + b2, axis=-1)
    return -logp[np.arange(len(y)), y].mean()


def _loss_torch(params, x, y):
    w1, b1, w2, b2 = params
    hidden = torch.relu(x @ w1 + b1)
    logp = torch.log_softmax(hidden @ w2 + b2, dim=-1)
    return -logp[torch.arange(len(y)), y].mean()


def _groups(params, split):
    """All parameters in one group, or the layers in two groups with different rates."""
    if not split:
        return params
    return [{"params": params[:2]}, {"params": params[2:], "lr": 0.003}]


def _train_both(name, kwargs, split=False):
    x, y, weights = _problem()
    ours = [cr.tensor(w.copy(), requires_grad=True) for w in weights]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    opt_ours = getattr(optim, name)(_groups(ours, split), **kwargs)
    opt_theirs = getattr(torch.optim, name)(_groups(theirs, split), foreach=False, **kwargs)
    x_t, y_t = torch.tensor(x), torch.tensor(y)
    for _ in range(STEPS):
        opt_ours.zero_grad()
        _loss_chainrule(ours, x, y).backward()
        opt_ours.step()
        opt_theirs.zero_grad()
        _loss_torch(theirs, x_t, y_t).backward()
        opt_theirs.step()
    return ours, theirs, weights


CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.1, "momentum": 0.7, "dampening": 0.2, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "weight_decay": 0.05}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.3, "momentum": 0.5, "centered": True,
                 "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.6), "eps": 1e-6, "amsgrad": True,
              "weight_decay": 0.05}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
]


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_parameters_match_torch_after_20_steps(name, kwargs):
    ours, theirs, start = _train_both(name, kwargs)
    for p, q, w0 in zip(ours, theirs, start, strict=True):
        assert p.dtype == np.float64
        assert not np.allclose(p.data, w0)  # the run did move the parameters
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["SGD", "RMSprop", "Adam", "AdamW"])
def test_parameter_groups_match_torch(name):
    kwargs = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.01}
    ours, theirs, _ = _train_both(name, kwargs, split=True)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=0, atol=1e-10)


# ----- schedulers -----------------------------------------------------------------------
def _optimizers():
    ours = optim.SGD([{"params": [cr.zeros(2)]}, {"params": [cr.zeros(1)], "lr": 0.03}],
                     lr=0.1)
    theirs = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)]},
                              {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.03}],
                             lr=0.1)
    return ours, theirs


SCHEDULES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=4, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.25, end_factor=0.9, total_iters=6),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5),
            m.CosineAnnealingLR(o, T_max=25, eta_min=1e-4)], milestones=[5]),
    "SequentialLR-3": lambda m, o: m.SequentialLR(
        o, [m.ExponentialLR(o, gamma=0.8), m.StepLR(o, step_size=3),
            m.CosineAnnealingLR(o, T_max=6)], milestones=[4, 12]),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch_over_30_epochs(name):
    opt_ours, opt_theirs = _optimizers()
    ours = SCHEDULES[name](lr_scheduler, opt_ours)
    theirs = SCHEDULES[name](torch.optim.lr_scheduler, opt_theirs)
    seen = []
    for _ in range(30):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose([g["lr"] for g in opt_ours.param_groups],
                                   [g["lr"] for g in opt_theirs.param_groups], rtol=1e-12)
        seen.append(ours.get_last_lr()[0])
        opt_ours.step()
        opt_theirs.step()
        ours.step()
        theirs.step()
    assert len(set(seen)) > 3  # the schedule did change the rate


@pytest.mark.parametrize("kwargs", [
    {"patience": 2},
    {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.05, "threshold_mode": "abs",
     "cooldown": 2, "min_lr": [0.02, 0.001]},
    {"patience": 0, "factor": 0.5, "min_lr": 0.01, "cooldown": 1},
])
def test_reduce_on_plateau_matches_torch(kwargs):
    opt_ours, opt_theirs = _optimizers()
    ours = lr_scheduler.ReduceLROnPlateau(opt_ours, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_theirs, **kwargs)
    metrics = [1.0, 0.9, 0.9, 0.95, 0.9, 0.89995, 0.8, 0.8, 0.81, 0.7, 0.75, 0.9, 0.6, 0.6,
               0.6, 0.6, 0.65, 0.5, 0.5, 0.52, 0.5, 0.49, 0.49, 0.7, 0.7, 0.4, 0.4, 0.4, 0.4, 0.4]
    lrs = []
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
        lrs.append(ours.get_last_lr()[0])
    assert lrs[-1] < lrs[0]
