"""Optimizers: updates against the documented formulas, in-place updates, groups,
zero_grad, validation and state_dict round-trips."""

import tracemalloc

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.errors import ChainruleError, CheckpointError

P0 = np.array([0.5, -1.0, 2.0])
GRADS = [np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.1, -1.5]), np.array([-0.7, 0.4, 0.2])]


def run(cls, grads=GRADS, p0=P0, **kwargs):
    """The parameter after one optimizer step per gradient in ``grads`` (set by hand)."""
    p = cr.tensor(p0.copy(), requires_grad=True)
    opt = cls([p], **kwargs)
    for g in grads:
        p.grad = g.copy()
        opt.step()
    return p.data


# ----- the formulas of PyTorch's documentation, written plainly --------------------------
def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    b = None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    return p


def rmsprop_reference(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                      centered=False):
    v, g_avg, b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            v_tilde = v - g_avg**2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (np.sqrt(v_tilde) + eps)
    return p


def adam_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                   decoupled=False):
    beta1, beta2 = betas
    m, v, v_max = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - beta2**t)
        else:
            v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def adagrad_reference(p, grads, lr, lr_decay=0.0, weight_decay=0.0,
                      initial_accumulator_value=0.0, eps=1e-10):
    s = np.full_like(p, initial_accumulator_value)
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        s = s + g**2
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s) + eps)
    return p


def test_sgd_first_steps_by_hand():
    # p = 1, g = 1 each step, lr 0.1, momentum 0.9: b1 = 1 (the gradient, not 0.1 * 1),
    # p1 = 0.9; b2 = 0.9 * 1 + 1 = 1.9, p2 = 0.9 - 0.19 = 0.71.
    out = run(optim.SGD, grads=[np.ones(1)] * 2, p0=np.ones(1), lr=0.1, momentum=0.9)
    np.testing.assert_allclose(out, [0.71], rtol=1e-12)


SGD_CASES = [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9},
    {"lr": 0.1, "momentum": 0.9, "dampening": 0.5},
    {"lr": 0.1, "momentum": 0.9, "nesterov": True},
    {"lr": 0.1, "weight_decay": 0.2},
    {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.3},
    {"lr": 0.05, "momentum": 0.5, "dampening": 0.1, "weight_decay": 0.3},
]


@pytest.mark.parametrize("kwargs", SGD_CASES)
def test_sgd_matches_formulas(kwargs):
    np.testing.assert_allclose(run(optim.SGD, **kwargs), sgd_reference(P0, GRADS, **kwargs),
                               rtol=1e-12)


RMSPROP_CASES = [
    {"lr": 0.01},
    {"lr": 0.01, "alpha": 0.9, "eps": 0.1},
    {"lr": 0.01, "centered": True},
    {"lr": 0.01, "momentum": 0.9},
    {"lr": 0.01, "weight_decay": 0.1},
    {"lr": 0.02, "alpha": 0.4, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
]


@pytest.mark.parametrize("kwargs", RMSPROP_CASES)
def test_rmsprop_matches_formulas(kwargs):
    np.testing.assert_allclose(run(optim.RMSprop, **kwargs),
                               rmsprop_reference(P0, GRADS, **kwargs), rtol=1e-12)


ADAM_CASES = [
    {"lr": 0.1},
    {"lr": 0.1, "eps": 0.5},  # a large eps shows where it is added
    {"lr": 0.1, "betas": (0.3, 0.6)},
    {"lr": 0.1, "amsgrad": True},
    {"lr": 0.1, "weight_decay": 0.2},
    {"lr": 0.1, "betas": (0.5, 0.9), "amsgrad": True, "weight_decay": 0.2},
]


@pytest.mark.parametrize("kwargs", ADAM_CASES)
def test_adam_matches_formulas(kwargs):
    np.testing.assert_allclose(run(optim.Adam, **kwargs), adam_reference(P0, GRADS, **kwargs),
                               rtol=1e-12)


@pytest.mark.parametrize("kwargs", [{"lr": 0.1}, {"lr": 0.1, "weight_decay": 0.3},
                                    {"lr": 0.1, "weight_decay": 0.3, "amsgrad": True}])
def test_adamw_matches_formulas(kwargs):
    expected = adam_reference(P0, GRADS, decoupled=True, **{"weight_decay": 0.01, **kwargs})
    np.testing.assert_allclose(run(optim.AdamW, **kwargs), expected, rtol=1e-12)


ADAGRAD_CASES = [
    {"lr": 0.1},
    {"lr": 0.1, "lr_decay": 0.5},
    {"lr": 0.1, "eps": 0.5},
    {"lr": 0.1, "initial_accumulator_value": 2.0},
    {"lr": 0.1, "weight_decay": 0.2},
    {"lr": 0.3, "lr_decay": 0.2, "weight_decay": 0.1, "initial_accumulator_value": 0.5,
     "eps": 1e-3},
]


@pytest.mark.parametrize("kwargs", ADAGRAD_CASES)
def test_adagrad_matches_formulas(kwargs):
    np.testing.assert_allclose(run(optim.Adagrad, **kwargs),
                               adagrad_reference(P0, GRADS, **kwargs), rtol=1e-12)


def test_adagrad_first_steps_by_hand():
    # p = 0, g = 3 then 4, lr 1: s1 = 9, p1 = -3/3 = -1; s2 = 25, p2 = -1 - 4/5 = -1.8.
    out = run(optim.Adagrad, grads=[np.array([3.0]), np.array([4.0])], p0=np.zeros(1),
              lr=1.0, eps=0.0)
    np.testing.assert_allclose(out, [-1.8], rtol=1e-12)


def test_adagrad_state_exists_before_the_first_step():
    a, b = cr.zeros(2, requires_grad=True), cr.zeros((2, 2), requires_grad=True)
    opt = optim.Adagrad([a], initial_accumulator_value=0.5)
    opt.add_param_group({"params": [b], "initial_accumulator_value": 2.0})
    saved = opt.state_dict()["state"]
    assert saved[0]["step"] == 0 and saved[1]["step"] == 0
    np.testing.assert_array_equal(saved[0]["sum"], [0.5, 0.5])
    np.testing.assert_array_equal(saved[1]["sum"], np.full((2, 2), 2.0))
    assert saved[1]["sum"].dtype == np.float32
    # a state dict without them (all state empty) starts them again on the first step
    opt.load_state_dict({**opt.state_dict(), "state": {}})
    a.grad, b.grad = np.ones(2, np.float32), None
    opt.step()
    np.testing.assert_allclose(opt.state[a]["sum"], [1.5, 1.5])


def test_amsgrad_uses_the_largest_second_moment():
    grads = [np.array([3.0]), np.array([0.1]), np.array([0.1])]
    plain = run(optim.Adam, grads=grads, p0=np.zeros(1), lr=0.1, betas=(0.5, 0.5))
    ams = run(optim.Adam, grads=grads, p0=np.zeros(1), lr=0.1, betas=(0.5, 0.5), amsgrad=True)
    # Once the gradient shrinks, AMSGrad divides by the larger past v: smaller steps.
    assert abs(ams[0]) < abs(plain[0])


def test_adam_and_adamw_differ_only_by_how_decay_is_applied():
    assert optim.AdamW([cr.zeros(1)]).param_groups[0]["weight_decay"] == 0.01
    coupled = run(optim.Adam, lr=0.1, weight_decay=0.3)
    decoupled = run(optim.AdamW, lr=0.1, weight_decay=0.3)
    assert not np.allclose(coupled, decoupled)


# ----- in place, dtypes, memory ----------------------------------------------------------
ALL_CONFIGS = (
    [(optim.SGD, k) for k in SGD_CASES] + [(optim.RMSprop, k) for k in RMSPROP_CASES]
    + [(optim.Adam, k) for k in ADAM_CASES] + [(optim.AdamW, {"lr": 0.1})]
    + [(optim.Adagrad, k) for k in ADAGRAD_CASES]
)
IDS = [f"{cls.__name__}-{k}" for cls, k in ALL_CONFIGS]


@pytest.mark.parametrize("cls, kwargs", ALL_CONFIGS, ids=IDS)
def test_updates_in_place_and_keep_float32(cls, kwargs):
    p = cr.tensor(P0, dtype=cr.float32, requires_grad=True)
    data = p.data
    opt = cls([p], **{**kwargs, "lr": np.float64(kwargs["lr"])})  # a strong float64 scalar
    buffers = {}
    for i, g in enumerate(GRADS):
        p.grad = g.astype(np.float32)
        opt.step()
        assert p.data is data and p.dtype == np.float32
        for name, value in opt.state[p].items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32
                assert i == 0 or buffers[name] is value  # state buffers are reused
                buffers[name] = value
    expected = run(cls, **kwargs)
    np.testing.assert_allclose(p.data, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, kwargs", ALL_CONFIGS, ids=IDS)
def test_a_step_allocates_no_parameter_sized_array(cls, kwargs):
    p = cr.tensor(np.linspace(-1, 1, 100_000), requires_grad=True)
    p.grad = np.full(p.shape, 0.5)
    opt = cls([p], **kwargs)
    opt.step()  # the first step allocates the state and the scratch buffer
    p.grad = np.full(p.shape, -0.25)
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < p.data.nbytes // 4


# ----- groups, gradients, closures -------------------------------------------------------
def test_param_groups_have_their_own_rates_and_defaults_filled():
    a = cr.tensor([1.0, 1.0], requires_grad=True)
    b = cr.tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.1]
    assert all(g["momentum"] == 0.9 and g["nesterov"] is False for g in opt.param_groups)
    a.grad, b.grad = np.ones(2, np.float32), np.ones(1, np.float32)
    opt.step()
    np.testing.assert_allclose(a.data, [0.5, 0.5])
    np.testing.assert_allclose(b.data, [0.9])


def test_add_param_group_and_its_errors():
    a, b = cr.zeros(2, requires_grad=True), cr.zeros(3, requires_grad=True)
    opt = optim.Adam([a], lr=0.01)
    opt.add_param_group({"params": b, "lr": 0.1, "betas": (0.5, 0.6)})
    assert opt.param_groups[1]["params"] == [b]
    assert opt.param_groups[1]["eps"] == 1e-8 and opt.param_groups[1]["betas"] == (0.5, 0.6)
    with pytest.raises(ChainruleError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [cr.zeros(1)], "lr": -1.0})


def test_step_skips_parameters_without_gradient():
    a, b = cr.tensor([1.0], requires_grad=True), cr.tensor([2.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(1, np.float32)
    opt.step()
    assert b.data[0] == 2.0
    assert list(opt.state_dict()["state"]) == [0]


def test_zero_grad_sets_none_or_zeroes_in_place():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad()
    assert w.grad is None
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and not grad.any()
    (w * 3.0).sum().backward()
    assert w.grad is grad  # the next backward adds into the zeroed array
    np.testing.assert_allclose(w.grad, [3.0, 3.0])


def test_step_with_closure_returns_its_loss():
    w = cr.tensor([3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        calls.append(loss.item())
        return loss

    with cr.no_grad():  # step() records the closure's graph all the same
        loss = opt.step(closure)
    assert calls == [9.0] and loss.item() == 9.0
    np.testing.assert_allclose(w.data, [1.5])  # 3 - 0.25 * 6


def test_a_real_backward_pass_drives_the_update():
    w = cr.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(w.data, [0.8, -1.6], rtol=1e-6)


# ----- validation ------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "learning rate"),
    (lambda p: optim.SGD(p, momentum=-0.5), "momentum"),
    (lambda p: optim.SGD(p, weight_decay=-1), "weight_decay"),
    (lambda p: optim.SGD(p, nesterov=True), "Nesterov"),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "alpha"),
    (lambda p: optim.RMSprop(p, eps=-1e-8), "eps"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "beta1"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "beta2"),
    (lambda p: optim.Adam(p, betas=(0.9,)), "pair"),
    (lambda p: optim.AdamW(p, lr="fast"), "not a number"),
    (lambda p: optim.Adagrad(p, lr_decay=-0.1), "lr_decay"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
    (lambda p: optim.Adagrad(p, eps=-1e-10), "eps"),
    (lambda p: optim.Adagrad(p, weight_decay=-0.1), "weight_decay"),
])
def test_invalid_hyperparameters_are_rejected(make, message):
    with pytest.raises(optim.OptimizerError, match=message) as info:
        make([cr.zeros(2, requires_grad=True)])
    assert isinstance(info.value, ChainruleError) and isinstance(info.value, ValueError)


def test_invalid_parameter_lists_are_rejected():
    w = cr.zeros(2, requires_grad=True)
    with pytest.raises(optim.OptimizerError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(optim.OptimizerError, match="single Tensor"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(optim.OptimizerError, match="leaf"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(optim.OptimizerError, match="floating-point"):
        optim.SGD([cr.tensor([1, 2])], lr=0.1)
    with pytest.raises(optim.OptimizerError, match="ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(optim.OptimizerError, match="more than once"):
        optim.SGD([w, w], lr=0.1)


def test_gradient_of_the_wrong_shape_is_reported():
    w = cr.zeros(2, requires_grad=True)
    w.grad = np.ones(3, np.float32)
    with pytest.raises(cr.ShapeError, match=r"\(2,\).*\(3,\)"):
        optim.SGD([w], lr=0.1).step()


# ----- state_dict -----------------------------------------------------------------------
PLAIN = (np.ndarray, int, float, bool, str)


def assert_plain(value):
    """Only arrays, numbers, bools, strings, lists, tuples and dicts (no pickle needed)."""
    if isinstance(value, dict):
        assert type(value) is dict
        for k, v in value.items():
            assert_plain(k)
            assert_plain(v)
    elif isinstance(value, list | tuple):
        assert type(value) in (list, tuple)
        for v in value:
            assert_plain(v)
    else:
        assert type(value) in PLAIN, f"{value!r} is a {type(value).__name__}"


def _params():
    return [cr.tensor(P0.copy(), requires_grad=True),
            cr.tensor(np.array([[0.3, -0.2], [0.1, 0.4]]), requires_grad=True)]


def _grad(i, p):
    return np.cos(np.arange(p.size).reshape(p.shape) + 1.7 * i) * (1 + 0.1 * i)


def _groups(params, kwargs):
    return [{"params": params[:1]}, {"params": params[1:], "lr": kwargs["lr"] / 2}]


def _steps(opt, params, start, count):
    for i in range(start, start + count):
        for p in params:
            p.grad = _grad(i, p)
        opt.step()


@pytest.mark.parametrize("cls, kwargs", ALL_CONFIGS, ids=IDS)
def test_state_dict_round_trip_continues_exactly(cls, kwargs):
    straight = _params()
    opt = cls(_groups(straight, kwargs), **kwargs)
    _steps(opt, straight, 0, 5)

    resumed = [cr.tensor(p.data.copy(), requires_grad=True) for p in straight]
    saved = opt.state_dict()
    assert_plain(saved)
    fresh = cls(_groups(resumed, kwargs), **kwargs)
    fresh.load_state_dict(saved)
    for value in saved["state"].values():  # the optimizer holds copies, not the saved arrays
        for v in value.values():
            if isinstance(v, np.ndarray):
                v += 100.0

    _steps(opt, straight, 5, 3)
    _steps(fresh, resumed, 5, 3)
    for p, q in zip(straight, resumed, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_layout_follows_pytorch():
    params = _params()
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], amsgrad=True)
    _steps(opt, params, 0, 2)
    saved = opt.state_dict()
    assert set(saved) == {"state", "param_groups"}
    assert [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    assert saved["param_groups"][1]["lr"] == 0.5
    assert saved["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(saved["state"]) == {0, 1}
    assert saved["state"][1]["step"] == 2
    assert set(saved["state"][1]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert saved["state"][1]["exp_avg"].shape == (2, 2)
    before = saved["state"][0]["exp_avg"].copy()
    _steps(opt, params, 2, 1)
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)  # a snapshot


def test_sgd_momentum_buffer_is_saved():
    w = cr.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = np.array([2.0], np.float32)
    opt.step()
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["momentum_buffer"], [2.0])


def test_load_state_dict_casts_to_the_parameter_dtype():
    source = [cr.tensor(P0, requires_grad=True)]
    opt = optim.RMSprop(source, lr=0.01)
    _steps(opt, source, 0, 1)
    target = cr.tensor(P0, dtype=cr.float32, requires_grad=True)
    other = optim.RMSprop([target], lr=0.01)
    other.load_state_dict(opt.state_dict())
    assert other.state[target]["square_avg"].dtype == np.float32


def test_load_state_dict_reports_what_differs():
    params = _params()
    opt = optim.Adam(params, lr=0.1)
    _steps(opt, params, 0, 1)
    saved = opt.state_dict()
    with pytest.raises(CheckpointError, match="2 parameters in the state dict and 1"):
        optim.Adam(params[:1]).load_state_dict(saved)
    with pytest.raises(CheckpointError, match="1 parameter groups.*2"):
        optim.Adam([{"params": params[:1]}, {"params": params[1:]}]).load_state_dict(saved)
    wrong_shape = [cr.zeros(3, requires_grad=True), cr.zeros(4, requires_grad=True)]
    with pytest.raises(CheckpointError, match=r"parameter 1 has shape \(2, 2\).*\(4,\)"):
        optim.Adam(wrong_shape).load_state_dict(saved)
    with pytest.raises(CheckpointError, match="not saved by a SGD"):
        optim.SGD(params).load_state_dict(saved)
    with pytest.raises(CheckpointError, match="keys"):
        optim.Adam(params).load_state_dict({"state": {}})


def test_load_state_dict_accepts_string_indices_from_text_formats():
    params = _params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    _steps(opt, params, 0, 1)
    saved = opt.state_dict()
    saved["state"] = {str(k): v for k, v in saved["state"].items()}
    fresh = optim.SGD(params, lr=0.1, momentum=0.9)
    fresh.load_state_dict(saved)
    np.testing.assert_array_equal(fresh.state[params[1]]["momentum_buffer"],
                                  opt.state[params[1]]["momentum_buffer"])
