"""Softplus and BatchNorm1d: against closed forms, centered differences and PyTorch."""

import numpy as np
import pytest
from torch_reference import Cases, assert_matches, torch

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.gradcheck import gradcheck

CASES = Cases("softplus_batchnorm")


def test_softplus_matches_its_closed_form_and_stays_finite():
    x = np.array([-800.0, -3.0, 0.0, 0.5, 30.0, 800.0])
    out = F.softplus(cr.tensor(x)).data
    with np.errstate(over="ignore"):
        expected = np.where(x > 30, x, np.log1p(np.exp(np.minimum(x, 30))))
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-300)
    t = cr.tensor(x.astype(np.float32), requires_grad=True)
    F.softplus(t, beta=0.5).sum().backward()
    assert np.all(np.isfinite(t.grad)) and t.grad.dtype == np.float32
    np.testing.assert_allclose(t.grad, 1 / (1 + np.exp(-0.5 * x.clip(-60, 60))), rtol=1e-6,
                               atol=1e-7)


def test_softplus_gradient_and_module():
    x = cr.tensor(np.random.default_rng(1).standard_normal((4, 3)), requires_grad=True)
    assert gradcheck(lambda x: nn.Softplus(beta=3.0)(x), [x])
    assert repr(nn.Softplus(2.0)) == "Softplus(beta=2.0)"


def test_batchnorm_training_and_eval_against_the_formula():
    rng = np.random.default_rng(2)
    layer = nn.BatchNorm1d(4).double()
    batches = [rng.standard_normal((6, 4)) * 3 + 1 for _ in range(3)]
    mean, var = np.zeros(4), np.ones(4)
    for b in batches:
        out = layer(b).data
        np.testing.assert_allclose(out, (b - b.mean(0)) / np.sqrt(b.var(0) + 1e-5), atol=1e-12)
        mean = 0.9 * mean + 0.1 * b.mean(0)
        var = 0.9 * var + 0.1 * b.var(0, ddof=1)
    np.testing.assert_allclose(layer.running_mean, mean)
    np.testing.assert_allclose(layer.running_var, var)
    assert int(layer.num_batches_tracked) == 3
    layer.eval()
    x = rng.standard_normal((2, 4))
    np.testing.assert_allclose(layer(x).data, (x - mean) / np.sqrt(var + 1e-5), atol=1e-12)


def test_batchnorm_refuses_what_it_cannot_normalize():
    layer = nn.BatchNorm1d(3)
    with pytest.raises(cr.ShapeError, match=r"expected input \(N, 3\)"):
        layer(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(cr.ShapeError, match="more than one example"):
        layer(np.ones((1, 3), dtype=np.float32))
    layer.eval()
    assert layer(np.ones((1, 3), dtype=np.float32)).shape == (1, 3)


def test_batchnorm_in_a_network_trains_and_round_trips(tmp_path):
    model = nn.Sequential(nn.Linear(2, 8, generator=0), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.Linear(8, 2, generator=1))
    X = np.random.default_rng(3).standard_normal((32, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    opt = cr.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6
    cr.save(model.state_dict(), tmp_path / "m.crk")
    copy = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    copy.load_state_dict(cr.load(tmp_path / "m.crk"))
    model.eval()
    copy.eval()
    np.testing.assert_array_equal(model(X).data, copy(X).data)


def _inputs():
    rng = np.random.default_rng(4)
    return rng.standard_normal((5, 3)) * 4, rng.standard_normal((5, 3))


def _softplus_and_batchnorm(lib):
    """softplus's gradient for an upstream g, and BatchNorm1d's gradients and state."""
    x, g = _inputs()
    if lib is cr:
        ours, layer = cr.tensor(x, requires_grad=True), nn.BatchNorm1d(3).double()
        F.softplus(ours, beta=1.5).backward(g)
        out = {"softplus_grad": ours.grad}
        x2 = cr.tensor(x, requires_grad=True)
    else:
        theirs, layer = lib.tensor(x, requires_grad=True), lib.nn.BatchNorm1d(3).double()
        lib.nn.functional.softplus(theirs, beta=1.5).backward(lib.tensor(g))
        out = {"softplus_grad": theirs.grad}
        x2 = lib.tensor(x, requires_grad=True)
    (layer(x2) ** 2).sum().backward()
    out.update(bn_input_grad=x2.grad, bn_weight_grad=layer.weight.grad)
    for name, value in layer.state_dict().items():
        out[f"bn_{name}"] = value
    return {k: np.array(v.detach().numpy() if hasattr(v, "detach") else v, dtype=np.float64)
            for k, v in out.items()}


@CASES.case()
def softplus_and_batchnorm():
    return _softplus_and_batchnorm(torch)


def test_softplus_and_batchnorm_match_pytorch():
    assert_matches(CASES.expected(softplus_and_batchnorm), _softplus_and_batchnorm(cr),
                   rtol=1e-12, atol=1e-12)
