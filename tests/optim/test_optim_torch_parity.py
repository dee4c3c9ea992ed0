"""The optimizers and schedulers give PyTorch's numbers: the same small MLP, data and
hyperparameters in float64 give the same losses step by step and end at the same parameters
after 20 steps, and the schedules give the same learning rates epoch by epoch.

PyTorch's side is recorded in tests/fixtures and also run live where torch is installed (see
tests/torch_reference.py), so these checks run on every machine."""

import numpy as np
import pytest
from torch_reference import Cases, assert_matches, torch

import chainrule as cr
from chainrule import optim
from chainrule.optim import lr_scheduler

STEPS = 20
CASES = Cases("optim")


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


def _train(lib, name, kwargs, split=False):
    """STEPS steps of optimizer ``name`` in ``cr`` or ``torch``:
    {"loss": the loss before each step, "param0", ...: the parameters after the last}."""
    x, y, weights = _problem()
    if lib is cr:
        params = [cr.tensor(w.copy(), requires_grad=True) for w in weights]
        opt, loss_fn = getattr(optim, name)(_groups(params, split), **kwargs), _loss_chainrule
    else:
        params = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
        opt = getattr(torch.optim, name)(_groups(params, split), foreach=False, **kwargs)
        x, y, loss_fn = torch.tensor(x), torch.tensor(y), _loss_torch
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_fn(params, x, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    trained = {f"param{i}": p.data if lib is cr else p for i, p in enumerate(params)}
    return {"loss": losses, **trained}


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
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.05, "eps": 1e-3}),
    ("Adagrad", {"lr": 0.2, "lr_decay": 0.1, "weight_decay": 0.05,
                 "initial_accumulator_value": 0.1, "eps": 1e-6}),
]


@CASES.case(config=CONFIGS)
def trained(config):
    name, kwargs = config
    return _train(torch, name, kwargs)


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_parameters_match_torch_after_20_steps(config):
    name, kwargs = config
    ours = _train(cr, name, kwargs)
    for i, start in enumerate(_problem()[2]):
        assert ours[f"param{i}"].dtype == np.float64
        assert not np.allclose(ours[f"param{i}"], start)  # the run did move the parameters
    assert_matches(CASES.expected(trained, config=config), ours, rtol=0, atol=1e-10)


OPTIMIZERS = ["SGD", "RMSprop", "Adam", "AdamW", "Adagrad"]


def _group_kwargs(name):
    return {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.01}


@CASES.case(name=OPTIMIZERS)
def trained_in_groups(name):
    return _train(torch, name, _group_kwargs(name), split=True)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_parameter_groups_match_torch(name):
    assert_matches(CASES.expected(trained_in_groups, name=name),
                   _train(cr, name, _group_kwargs(name), split=True), rtol=0, atol=1e-10)


# ----- schedulers -----------------------------------------------------------------------
EPOCHS = 30


def _optimizer(lib):
    """SGD over two parameter groups with different rates, in ``cr`` or ``torch``."""
    optimizers = optim if lib is cr else torch.optim
    return optimizers.SGD([{"params": [lib.zeros(2, requires_grad=True)]},
                           {"params": [lib.zeros(1, requires_grad=True)], "lr": 0.03}], lr=0.1)


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
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=6),
    "ConstantLR-default": lambda m, o: m.ConstantLR(o),
    "SequentialLR-constant-then-exponential": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.1, total_iters=4), m.ExponentialLR(o, gamma=0.9)],
        milestones=[4]),
    "SequentialLR-constant-inside": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.2, total_iters=3),
            m.ConstantLR(o, factor=0.5, total_iters=8), m.StepLR(o, step_size=4, gamma=0.5)],
        milestones=[3, 14]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler(
        [m.ConstantLR(o, factor=0.1, total_iters=3), m.ExponentialLR(o, gamma=0.9)]),
    "ChainedScheduler-three": lambda m, o: m.ChainedScheduler(
        [m.LinearLR(o, start_factor=0.3, total_iters=5), m.MultiStepLR(o, [7, 15], gamma=0.5),
         m.CosineAnnealingLR(o, T_max=12, eta_min=0.002)], optimizer=o),
    "SequentialLR-of-chained": lambda m, o: m.SequentialLR(
        o, [m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=2),
                                m.ExponentialLR(o, gamma=0.8)]),
            m.CosineAnnealingLR(o, T_max=10)], milestones=[6]),
    "ChainedScheduler-of-sequential": lambda m, o: m.ChainedScheduler(
        [m.SequentialLR(o, [m.ConstantLR(o, factor=0.2, total_iters=3),
                            m.StepLR(o, step_size=5, gamma=0.3)], milestones=[3]),
         m.ExponentialLR(o, gamma=0.95)]),
}



def _schedule(lib, name):
    """{"last_lr", "group_lr"}: (EPOCHS, 2) learning rates, before each epoch's step."""
    opt = _optimizer(lib)
    scheduler = SCHEDULES[name](lr_scheduler if lib is cr else torch.optim.lr_scheduler, opt)
    last, groups = [], []
    for _ in range(EPOCHS):
        last.append(scheduler.get_last_lr())
        groups.append([g["lr"] for g in opt.param_groups])
        opt.step()
        scheduler.step()
    return {"last_lr": last, "group_lr": groups}


@CASES.case(name=list(SCHEDULES))
def schedule(name):
    return _schedule(torch, name)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch_over_30_epochs(name):
    ours = _schedule(cr, name)
    assert_matches(CASES.expected(schedule, name=name), ours, rtol=1e-12, atol=0)
    assert len(set(np.asarray(ours["last_lr"])[:, 0])) > 1  # the schedule did change the rate


@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("split", [2, 9])
def test_schedule_resumed_from_a_state_dict_matches_torch(name, split):
    """Ours saved after ``split`` epochs and loaded into a fresh scheduler (and optimizer)
    goes on exactly as PyTorch's scheduler that was never interrupted."""
    opt = _optimizer(cr)
    scheduler = SCHEDULES[name](lr_scheduler, opt)
    for _ in range(split):
        opt.step()
        scheduler.step()
    opt_resumed = _optimizer(cr)
    resumed = SCHEDULES[name](lr_scheduler, opt_resumed)
    resumed.load_state_dict(scheduler.state_dict())
    opt_resumed.load_state_dict(opt.state_dict())
    last, groups = [], []
    for _ in range(EPOCHS - split):
        last.append(resumed.get_last_lr())
        groups.append([g["lr"] for g in opt_resumed.param_groups])
        opt_resumed.step()
        resumed.step()
    for source, outputs in CASES.expected(schedule, name=name):
        np.testing.assert_allclose(last, outputs["last_lr"][split:], rtol=1e-12,
                                   err_msg=f"against {source}")
        np.testing.assert_allclose(groups, outputs["group_lr"][split:], rtol=1e-12,
                                   err_msg=f"against {source}")


# ----- Adagrad's saved state means what PyTorch's means -----------------------------------
ADAGRAD = {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.02, "initial_accumulator_value": 0.2}


def _adagrad_run(lib, steps, start=None):
    """Adagrad on the MLP problem for ``steps`` steps, from the weights and accumulators of
    ``start`` (a dict from a torch run) or from scratch: parameters and ``sum`` states."""
    x, y, weights = _problem()
    if start is not None:
        weights = [start[f"param{i}"] for i in range(4)]
    if lib is cr:
        params = [cr.tensor(w.copy(), requires_grad=True) for w in weights]
        opt, loss_fn = optim.Adagrad(params, **ADAGRAD), _loss_chainrule
    else:
        params = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
        opt = torch.optim.Adagrad(params, foreach=False, **ADAGRAD)
        x, y, loss_fn = torch.tensor(x), torch.tensor(y), _loss_torch
    if start is not None:
        state = opt.state_dict()
        for i in range(4):
            if lib is cr:
                state["state"][i]["sum"] = start[f"sum{i}"].copy()
                state["state"][i]["step"] = float(start["step"])
            else:
                state["state"][i]["sum"] = torch.tensor(start[f"sum{i}"])
                state["state"][i]["step"] = torch.tensor(float(start["step"]))
        opt.load_state_dict(state)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(params, x, y).backward()
        opt.step()
    saved = opt.state_dict()["state"]
    out = {"step": float(saved[0]["step"])}
    for i, p in enumerate(params):
        out[f"param{i}"] = np.array(p.data if lib is cr else p.detach().numpy())
        out[f"sum{i}"] = np.array(saved[i]["sum"] if lib is cr else saved[i]["sum"].numpy())
    return out


@CASES.case(steps=[0, 8])
def adagrad_state(steps):
    return _adagrad_run(torch, steps)


@pytest.mark.parametrize("steps", [0, 8])
def test_adagrad_state_dict_matches_torch(steps):
    assert_matches(CASES.expected(adagrad_state, steps=steps), _adagrad_run(cr, steps),
                   rtol=1e-12, atol=1e-12)


@CASES.case(steps=[12])
def adagrad_resumed(steps):
    start = {k: np.array(v) for k, v in _adagrad_run(torch, 8).items()}
    return _adagrad_run(torch, steps, start)


def test_adagrad_resumes_from_torchs_saved_state():
    """PyTorch's state after 8 steps, loaded into a fresh Adagrad: 12 more steps in each give
    the same parameters, so every saved entry means what PyTorch means."""
    for source, outputs in CASES.expected(adagrad_resumed, steps=12):
        start = dict(CASES.expected(adagrad_state, steps=8)[0][1])
        ours = _adagrad_run(cr, 12, start)
        for name, expected in outputs.items():
            np.testing.assert_allclose(ours[name], expected, rtol=0, atol=1e-10,
                                       err_msg=f"{name} against {source}")


PLATEAU_KWARGS = [
    {"patience": 2},
    {"mode": "max", "factor": 0.5, "patience": 1, "threshold": 0.05, "threshold_mode": "abs",
     "cooldown": 2, "min_lr": [0.02, 0.001]},
    {"patience": 0, "factor": 0.5, "min_lr": 0.01, "cooldown": 1},
]


def _plateau(lib, kwargs):
    """{"last_lr"}: (len(metrics), 2) learning rates after each step."""
    opt = _optimizer(lib)
    schedulers = lr_scheduler if lib is cr else torch.optim.lr_scheduler
    scheduler = schedulers.ReduceLROnPlateau(opt, **kwargs)
    metrics = [1.0, 0.9, 0.9, 0.95, 0.9, 0.89995, 0.8, 0.8, 0.81, 0.7, 0.75, 0.9, 0.6, 0.6,
               0.6, 0.6, 0.65, 0.5, 0.5, 0.52, 0.5, 0.49, 0.49, 0.7, 0.7, 0.4, 0.4, 0.4, 0.4, 0.4]
    lrs = []
    for metric in metrics:
        scheduler.step(metric)
        lrs.append(scheduler.get_last_lr())
    return {"last_lr": lrs}


@CASES.case(kwargs=PLATEAU_KWARGS)
def reduce_on_plateau(kwargs):
    return _plateau(torch, kwargs)


@pytest.mark.parametrize("kwargs", PLATEAU_KWARGS)
def test_reduce_on_plateau_matches_torch(kwargs):
    ours = _plateau(cr, kwargs)
    assert_matches(CASES.expected(reduce_on_plateau, kwargs=kwargs), ours, rtol=1e-12, atol=0)
    assert ours["last_lr"][-1][0] < ours["last_lr"][0][0]
