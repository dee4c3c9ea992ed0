"""Layers and networks: Linear, MLP, Sequential, Dropout, Flatten, Identity."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import ChainruleError, ShapeError
from chainrule.gradcheck import gradcheck
from chainrule.nn import functional as F


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ----- Linear -------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [(5,), (2, 3), (2, 1, 4), ()])
def test_linear_shapes(batch):
    layer = nn.Linear(3, 7)
    assert layer.weight.shape == (7, 3) and layer.bias.shape == (7,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    out = layer(cr.tensor(randn(*batch, 3).astype(np.float32)))
    assert out.shape == (*batch, 7) and out.dtype == np.float32


@pytest.mark.parametrize("batch", [(2, 4), (), (5,)])
def test_linear_batched_input_gradients(batch):
    layer = nn.Linear(3, 2, dtype=np.float64, generator=0)
    x = cr.tensor(randn(*batch, 3), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), [x, layer.weight, layer.bias])
    assert gradcheck(lambda x, w: F.linear(x, w), [x, layer.weight])


def test_linear_default_init_is_pytorchs():
    layer = nn.Linear(64, 10000, generator=0)
    bound = 1 / math.sqrt(64)
    for values in (layer.weight.data, layer.bias.data):
        assert np.abs(values).max() <= bound
        # uniform on [-bound, bound]: the extremes come close to the bounds, and the
        # standard deviation is bound / sqrt(3)
        assert values.max() > 0.99 * bound and values.min() < -0.99 * bound
        assert abs(values.std() - bound / math.sqrt(3)) < 0.03 * bound
        assert abs(values.mean()) < 0.03 * bound
    quarter = np.mean(np.abs(layer.weight.data) < bound / 4)
    assert abs(quarter - 0.25) < 0.01


def test_linear_seed_reproducibility():
    a, b, c = nn.Linear(5, 4, generator=1), nn.Linear(5, 4, generator=1), nn.Linear(5, 4,
                                                                                  generator=2)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(a.weight.data, c.weight.data)
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(nn.Linear(5, 4, generator=g1).weight.data,
                                  nn.Linear(5, 4, generator=g2).weight.data)


def test_manual_seed_makes_default_init_reproducible():
    cr.manual_seed(123)
    first = nn.MLP(4, [8], 2).state_dict()
    cr.manual_seed(123)
    second = nn.MLP(4, [8], 2).state_dict()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    third = nn.MLP(4, [8], 2).state_dict()  # the generator moved on
    assert not np.array_equal(first["0.weight"], third["0.weight"])


def test_linear_feature_mismatch_error():
    layer = nn.Linear(3, 2)
    with pytest.raises(ShapeError) as info:
        layer(cr.tensor(np.zeros((4, 5), dtype=np.float32)))
    message = str(info.value)
    assert "linear" in message and "(4, 5)" in message and "3" in message


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3"])
def test_linear_rejects_bad_sizes(bad):
    with pytest.raises(ChainruleError, match="positive integer"):
        nn.Linear(bad, 2)
    with pytest.raises(ChainruleError, match="positive integer"):
        nn.Linear(2, bad)


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False, dtype=np.float64, generator=0)
    x = randn(4, 3)
    np.testing.assert_allclose(layer(x).data, x @ layer.weight.data.T, rtol=1e-12)
    assert repr(layer) == "Linear(in_features=3, out_features=2, bias=False)"


@pytest.mark.parametrize("order", ["C", "F"])  # F: the layout nn.Linear keeps its weight in
@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_linear_equals_composite(with_bias, order):
    x = cr.tensor(randn(6, 4, seed=1), requires_grad=True)
    w = cr.tensor(np.asarray(randn(3, 4, seed=2), order=order), requires_grad=True)
    b = cr.tensor(randn(3, seed=3), requires_grad=True) if with_bias else None
    upstream = randn(6, 3, seed=4)

    def grads(f):
        for t in (x, w, b):
            if t is not None:
                t.grad = None
        out = f()
        out.backward(upstream)
        return out.data, [t.grad for t in (x, w, b) if t is not None]

    fused_out, fused_grads = grads(lambda: F.linear(x, w, b))
    composite_out, composite_grads = grads(lambda: x @ w.T + b if with_bias else x @ w.T)
    np.testing.assert_allclose(fused_out, composite_out, rtol=1e-13)
    for g_fused, g_composite in zip(fused_grads, composite_grads):
        np.testing.assert_allclose(g_fused, g_composite, rtol=1e-13)
    inputs = [x, w] + ([b] if with_bias else [])
    assert gradcheck(lambda *t: F.linear(*t), inputs)


def test_linear_weight_is_out_by_in_over_row_major_in_by_out_memory():
    """The weight is PyTorch's (out, in) in shape, values and state_dict, but its memory is
    a row-major (in, out) array; its gradient, the optimizer's state and scratch follow
    that layout, and nothing along the way replaces the arrays by copies."""
    layer = nn.Linear(5, 3, generator=0)
    w = layer.weight.data
    assert w.shape == (3, 5) and w.T.flags.c_contiguous
    x = randn(4, 5).astype(np.float32)
    (layer(x) ** 2).sum().backward()
    upstream = 2 * layer(x).data
    np.testing.assert_allclose(layer.weight.grad, upstream.T @ x, rtol=1e-5)
    assert layer.weight.grad.T.flags.c_contiguous
    opt = cr.optim.Adam(layer.parameters(), lr=0.1)
    opt.step()
    assert layer.weight.data is w  # updated in place
    state = opt.state[layer.weight]
    assert all(state[k].T.flags.c_contiguous for k in ("exp_avg", "exp_avg_sq"))
    assert opt._work(layer.weight)["work"].T.flags.c_contiguous

    saved, opt_saved = layer.state_dict(), opt.state_dict()
    assert saved["weight"].flags.c_contiguous and np.array_equal(saved["weight"], w)
    other = nn.Linear(5, 3, generator=1)
    kept = other.weight.data
    other.load_state_dict(saved)
    assert other.weight.data is kept and np.array_equal(kept, w)
    other_opt = cr.optim.Adam(other.parameters(), lr=0.1)
    other_opt.load_state_dict(opt_saved)
    assert other_opt.state[other.weight]["exp_avg"].T.flags.c_contiguous
    assert np.array_equal(other_opt.state[other.weight]["exp_avg"], state["exp_avg"])
    assert layer.to(np.float64).weight.data.T.flags.c_contiguous


def test_linear_second_order():
    w = cr.tensor(randn(3, 4, seed=2), requires_grad=True)
    x = cr.tensor(randn(5, 4, seed=1), requires_grad=True)

    def input_gradient(w):
        return cr.autograd.grad((cr.tanh(F.linear(x, w)) ** 2).sum(), x, create_graph=True)[0]

    assert gradcheck(input_gradient, [w])


# ----- MLP ----------------------------------------------------------------------------------
def layer_types(model):
    return [type(m) for m in model]


def test_mlp_two_layer_structure():
    model = nn.MLP(2, [100], 3)
    assert layer_types(model) == [nn.Linear, nn.ReLU, nn.Linear]
    assert (model[0].in_features, model[0].out_features) == (2, 100)
    assert (model[2].in_features, model[2].out_features) == (100, 3)
    assert model(cr.tensor(np.zeros((7, 2), dtype=np.float32))).shape == (7, 3)
    assert len(list(model.parameters())) == 4


def test_mlp_three_layer_structure():
    model = nn.MLP(5, [8, 6], 4, activation="tanh", seed=0)
    assert layer_types(model) == [nn.Linear, nn.Tanh, nn.Linear, nn.Tanh, nn.Linear]
    assert [m.weight.shape for m in model.linear_layers()] == [(8, 5), (6, 8), (4, 6)]
    assert model(randn(3, 5).astype(np.float32)).shape == (3, 4)


def test_mlp_forward_is_the_lectures_formula():
    # f = W2 max(0, W1 x + b1) + b2, row by row
    model = nn.MLP(4, [6], 3, seed=0, dtype=np.float64)
    w1, b1 = model[0].weight.data, model[0].bias.data
    w2, b2 = model[2].weight.data, model[2].bias.data
    x = randn(5, 4)
    expected = np.stack([w2 @ np.maximum(0, w1 @ row + b1) + b2 for row in x])
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-12)


def test_mlp_without_activation_collapses_to_one_matrix():
    model = nn.MLP(4, [6, 5], 3, activation=None, seed=0, dtype=np.float64)
    assert layer_types(model) == [nn.Linear, nn.Linear, nn.Linear]
    (w1, b1), (w2, b2), (w3, b3) = [(m.weight.data, m.bias.data) for m in model]
    w = w3 @ w2 @ w1  # W = W3 W2 W1
    b = w3 @ (w2 @ b1 + b2) + b3
    x = randn(10, 4)
    np.testing.assert_allclose(model(x).data, x @ w.T + b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(nn.ACTIVATIONS))
def test_mlp_accepts_every_activation_name(name):
    model = nn.MLP(3, [4, 4], 2, activation=name, seed=0)
    assert layer_types(model)[1] is nn.ACTIVATIONS[name]
    assert layer_types(model)[3] is nn.ACTIVATIONS[name]
    out = model(randn(2, 3).astype(np.float32))
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mlp_accepts_activation_class_and_rejects_unknown_name():
    assert layer_types(nn.MLP(3, [4], 2, activation=nn.SiLU))[1] is nn.SiLU
    with pytest.raises(ChainruleError, match="swish") as info:
        nn.MLP(3, [4], 2, activation="swish")
    assert "relu" in str(info.value)  # lists the choices


def test_mlp_without_hidden_layers_is_a_linear_classifier():
    model = nn.MLP(3, [], 2)
    assert layer_types(model) == [nn.Linear]


def test_mlp_dropout_layers():
    model = nn.MLP(3, [4, 5], 2, dropout=0.25, seed=0)
    assert layer_types(model) == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU,
                                  nn.Dropout, nn.Linear]
    assert all(m.p == 0.25 for m in model if isinstance(m, nn.Dropout))
    x = np.random.default_rng(0).standard_normal((20, 3)).astype(np.float32)
    assert not np.array_equal(model(x).data, model(x).data)  # a fresh mask each call
    model.eval()
    np.testing.assert_array_equal(model(x).data, model(x).data)


def test_mlp_seed_and_dtype():
    a, b = nn.MLP(3, [4], 2, seed=5), nn.MLP(3, [4], 2, seed=5)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert all(p.dtype == np.float64 for p in nn.MLP(3, [4], 2, dtype=np.float64).parameters())


# ----- Dropout ------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_in_training(p):
    layer = nn.Dropout(p, seed=0)
    x = cr.tensor(np.full((400, 500), 3.0), requires_grad=True)
    out = layer(x)
    dropped = out.data == 0
    assert abs(dropped.mean() - p) < 0.01
    np.testing.assert_allclose(out.data[~dropped], 3.0 / (1 - p), rtol=1e-12)
    assert abs(out.data.mean() - 3.0) < 0.05 * 3.0  # the expected value is kept
    out.backward(np.ones(out.shape))
    np.testing.assert_allclose(x.grad, np.where(dropped, 0.0, 1 / (1 - p)), rtol=1e-12)


def test_dropout_in_evaluation_is_identity():
    layer = nn.Dropout(0.5, seed=0).eval()
    x = cr.tensor(randn(10, 10))
    assert layer(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_same_seed_same_mask():
    x = np.ones((20, 30))
    a, b = nn.Dropout(0.5, seed=3), nn.Dropout(0.5, seed=3)
    first = np.asarray(a(x))
    np.testing.assert_array_equal(first, np.asarray(b(x)))
    assert not np.array_equal(first, np.asarray(a(x)))  # a fresh mask every call
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.5, generator=1)),
                                  np.asarray(F.dropout(x, 0.5, generator=1)))


def test_dropout_extra_state_resumes_the_masks():
    layer = nn.Dropout(0.3, seed=0)
    x = np.ones((5, 5))
    state = layer.get_extra_state()
    first = np.asarray(layer(x))
    layer.set_extra_state(state)
    np.testing.assert_array_equal(np.asarray(layer(x)), first)


def test_extra_states_of_a_model_round_trip_and_stay_out_of_the_state_dict():
    model = nn.MLP(4, [8, 8], 3, dropout=0.5, seed=0)
    states = model.extra_states()
    assert sorted(states) == ["2", "5"]  # the two Dropout layers, by their names
    assert all(not isinstance(v, dict) for v in model.state_dict().values())
    x = np.ones((6, 4), dtype=np.float32)
    first = np.asarray(model(x))
    model.load_extra_states(states)
    np.testing.assert_array_equal(np.asarray(model(x)), first)
    with pytest.raises(cr.ShapeError, match="expected extra state for"):
        model.load_extra_states({"2": states["2"]})


def test_dropout_with_p_one_drops_everything():
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    out = nn.Dropout(1.0, seed=0)(x)
    np.testing.assert_array_equal(out.data, 0.0)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_rejects_bad_probability(p):
    with pytest.raises(ChainruleError, match="p must be"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match="p must be"):
        F.dropout(cr.tensor([1.0]), p)


def test_dropout_keeps_float32():
    out = nn.Dropout(0.5, seed=0)(cr.tensor(np.ones(10, dtype=np.float32)))
    assert out.dtype == np.float32


# ----- Flatten, Identity, Sequential ---------------------------------------------------------
def test_flatten():
    x = cr.tensor(randn(2, 3, 4, 5), requires_grad=True)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    out = nn.Flatten()(x)
    out.backward(np.arange(120.0).reshape(2, 60))
    np.testing.assert_array_equal(x.grad, np.arange(120.0).reshape(2, 3, 4, 5))


def test_identity():
    x = cr.tensor(randn(3))
    assert nn.Identity()(x) is x
    assert list(nn.Identity().parameters()) == []


def test_sequential_indexing_len_iter_and_order():
    first, act, last = nn.Linear(3, 4, generator=0), nn.Tanh(), nn.Linear(4, 2, generator=1)
    seq = nn.Sequential(first, act, last)
    assert len(seq) == 3
    assert seq[0] is first and seq[1] is act and seq[-1] is last
    assert list(seq) == [first, act, last]
    assert [name for name, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                            "2.bias"]
    x = randn(5, 3).astype(np.float32)
    np.testing.assert_array_equal(seq(x).data, last(act(first(x))).data)
    assert len(nn.Sequential()) == 0
    with pytest.raises(IndexError):
        seq[3]


def test_sequential_slice_is_a_sequential():
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    head = seq[:2]
    assert isinstance(head, nn.Sequential)
    assert head(np.ones((1, 3), dtype=np.float32)).shape == (1, 4)
