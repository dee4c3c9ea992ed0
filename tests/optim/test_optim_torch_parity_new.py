"""Adagrad and the ConstantLR / SequentialLR / ChainedScheduler schedules give PyTorch's
numbers: the same small MLP, data and hyperparameters in float64 end at the same
parameters after 20 steps, the saved states agree, and the schedules give the same
learning rates epoch by epoch, also after a save and a load halfway."""

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


def _step_both(ours, theirs, opt_ours, opt_theirs, steps):
    x, y, _ = _problem()
    x_t, y_t = torch.tensor(x), torch.tensor(y)
    for _ in range(steps):
        opt_ours.zero_grad()
        _loss_chainrule(ours, x, y).backward()
        opt_ours.step()
        opt_theirs.zero_grad()
        _loss_torch(theirs, x_t, y_t).backward()
        opt_theirs.step()


def _build_both(name, kwargs, split=False):
    _, _, weights = _problem()
    ours = [cr.tensor(w.copy(), requires_grad=True) for w in weights]
    theirs = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    opt_ours = getattr(optim, name)(_groups(ours, split), **kwargs)
    opt_theirs = getattr(torch.optim, name)(_groups(theirs, split), foreach=False, **kwargs)
    return ours, theirs, opt_ours, opt_theirs, weights


def _train_both(name, kwargs, split=False):
    ours, theirs, opt_ours, opt_theirs, weights = _build_both(name, kwargs, split)
    _step_both(ours, theirs, opt_ours, opt_theirs, STEPS)
    return ours, theirs, weights


CONFIGS = [
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.05}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.05, "eps": 1e-3}),
    ("Adagrad", {"lr": 0.2, "lr_decay": 0.1, "weight_decay": 0.05,
                 "initial_accumulator_value": 0.1, "eps": 1e-6}),
]


@pytest.mark.parametrize("name, kwargs", CONFIGS, ids=[f"{n}-{k}" for n, k in CONFIGS])
def test_parameters_match_torch_after_20_steps(name, kwargs):
    ours, theirs, start = _train_both(name, kwargs)
    for p, q, w0 in zip(ours, theirs, start, strict=True):
        assert p.dtype == np.float64
        assert not np.allclose(p.data, w0)  # the run did move the parameters
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["Adagrad"])
def test_parameter_groups_match_torch(name):
    ours, theirs, _ = _train_both(name, {"lr": 0.05, "lr_decay": 0.01}, split=True)
    for p, q in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=0, atol=1e-10)


def _as_numpy(state_dict):
    """PyTorch's optimizer state dict with its tensors as NumPy arrays and numbers."""
    state = {index: {k: (float(v) if k == "step" else v.detach().numpy().copy())
                     for k, v in values.items()}
             for index, values in state_dict["state"].items()}
    return {"state": state, "param_groups": state_dict["param_groups"]}


@pytest.mark.parametrize("steps", [0, 7])
def test_adagrad_state_dict_matches_torch(steps):
    kwargs = {"lr": 0.1, "lr_decay": 0.02, "initial_accumulator_value": 0.3}
    ours, theirs, opt_ours, opt_theirs, _ = _build_both("Adagrad", kwargs, split=True)
    _step_both(ours, theirs, opt_ours, opt_theirs, steps)
    saved, reference = opt_ours.state_dict(), _as_numpy(opt_theirs.state_dict())
    assert sorted(saved["state"]) == sorted(reference["state"]) == [0, 1, 2, 3]
    for index, values in reference["state"].items():
        assert set(saved["state"][index]) == set(values) == {"step", "sum"}
        assert saved["state"][index]["step"] == values["step"] == steps
        np.testing.assert_allclose(saved["state"][index]["sum"], values["sum"], rtol=1e-12)
    for group, ref_group in zip(saved["param_groups"], reference["param_groups"], strict=True):
        assert group["params"] == ref_group["params"]
        for key in ("lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value"):
            assert group[key] == ref_group[key], key


def test_adagrad_resumes_from_torchs_state_dict():
    """Train 8 steps in PyTorch, load its state into a fresh Adagrad, and train 12 more
    in both: the parameters agree, so every saved entry means what PyTorch means."""
    kwargs = {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.02,
              "initial_accumulator_value": 0.2}
    ours, theirs, opt_ours, opt_theirs, _ = _build_both("Adagrad", kwargs)
    _step_both(ours, theirs, opt_ours, opt_theirs, 8)
    resumed = [cr.tensor(q.detach().numpy().copy(), requires_grad=True) for q in theirs]
    opt_resumed = optim.Adagrad(resumed, **kwargs)
    opt_resumed.load_state_dict(_as_numpy(opt_theirs.state_dict()))
    _step_both(resumed, theirs, opt_resumed, opt_theirs, 12)
    for p, q in zip(resumed, theirs, strict=True):
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


# PyTorch's SequentialLR starts a ChainedScheduler child by stepping its children, which
# PyTorch itself then reports as "lr_scheduler.step() before optimizer.step()".
_TORCH_OWN_ORDER_WARNING = pytest.mark.filterwarnings(
    "ignore:Detected call of `lr_scheduler.step\\(\\)` before:UserWarning")


@_TORCH_OWN_ORDER_WARNING
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
    assert len(set(seen)) > 1  # the schedule did change the rate


@_TORCH_OWN_ORDER_WARNING
@pytest.mark.parametrize("name", list(SCHEDULES))
@pytest.mark.parametrize("split", [2, 9])
def test_schedule_resumed_from_a_state_dict_matches_torch(name, split):
    """Ours saved after ``split`` epochs and loaded into a fresh scheduler (and optimizer)
    goes on exactly as PyTorch's scheduler that was never interrupted."""
    opt_ours, opt_theirs = _optimizers()
    ours = SCHEDULES[name](lr_scheduler, opt_ours)
    theirs = SCHEDULES[name](torch.optim.lr_scheduler, opt_theirs)
    for _ in range(split):
        for opt, scheduler in ((opt_ours, ours), (opt_theirs, theirs)):
            opt.step()
            scheduler.step()
    opt_resumed, _ = _optimizers()
    resumed = SCHEDULES[name](lr_scheduler, opt_resumed)
    resumed.load_state_dict(ours.state_dict())
    opt_resumed.load_state_dict(opt_ours.state_dict())
    for _ in range(15):
        np.testing.assert_allclose(resumed.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)
        np.testing.assert_allclose([g["lr"] for g in opt_resumed.param_groups],
                                   [g["lr"] for g in opt_theirs.param_groups], rtol=1e-12)
        for opt, scheduler in ((opt_resumed, resumed), (opt_theirs, theirs)):
            opt.step()
            scheduler.step()


@pytest.mark.parametrize("name", ["ConstantLR", "ChainedScheduler",
                                  "SequentialLR-constant-then-exponential"])
def test_scheduler_state_dict_holds_torchs_entries(name):
    opt_ours, opt_theirs = _optimizers()
    ours = SCHEDULES[name](lr_scheduler, opt_ours)
    theirs = SCHEDULES[name](torch.optim.lr_scheduler, opt_theirs)
    for _ in range(5):
        for opt, scheduler in ((opt_ours, ours), (opt_theirs, theirs)):
            opt.step()
            scheduler.step()

    def compare(saved, reference):
        for key, value in reference.items():
            if key == "_schedulers":
                assert len(saved[key]) == len(value)
                for child, ref_child in zip(saved[key], value, strict=True):
                    compare(child, ref_child)
            elif key in ("last_epoch", "base_lrs", "_last_lr", "factor", "total_iters",
                         "gamma", "_milestones", "_step_count"):
                assert saved[key] == pytest.approx(value, rel=1e-12), key

    compare(ours.state_dict(), theirs.state_dict())
