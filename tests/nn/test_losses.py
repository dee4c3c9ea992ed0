"""Losses and penalties: cross-entropy, the multiclass hinge (SVM) loss, squared error,
binary cross-entropy on logits, and the lecture's lambda R(W) regularization terms."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule import nn
from chainrule.errors import ChainruleError, DTypeError, ShapeError
from chainrule.gradcheck import gradcheck
from chainrule.nn import functional as F
from chainrule.nn import init

EXAMPLES = settings(max_examples=20, deadline=None)
REDUCTIONS = ["mean", "sum", "none"]


def reduce(losses, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](losses)


def random_problem(seed, n=5, c=4, scale=2.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c)) * scale, rng.integers(0, c, n)


# ----- cross-entropy ------------------------------------------------------------------------
def cross_entropy_reference(logits, target):
    """-log softmax(s)_y, by the definition, one example at a time."""
    losses = []
    for row, label in zip(logits, target):
        shift = row.max()
        log_norm = shift + math.log(sum(math.exp(v - shift) for v in row))
        losses.append(log_norm - row[label])
    return np.array(losses)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@EXAMPLES
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), c=st.integers(2, 6))
def test_cross_entropy_value_and_gradcheck(reduction, seed, n, c):
    logits, target = random_problem(seed, n, c)
    expected = reduce(cross_entropy_reference(logits, target), reduction)
    x = cr.tensor(logits, requires_grad=True)
    out = F.cross_entropy(x, target, reduction=reduction)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(nn.CrossEntropyLoss(reduction=reduction)(x, target).data,
                               expected, rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), [x])


@pytest.mark.parametrize("classes", [1, 2, 3, 4, 5, 9])
def test_row_max_is_numpys_maximum_bit_for_bit(classes):
    from chainrule.ops.loss import row_max

    scores = np.random.default_rng(classes).standard_normal((7, classes)).astype(np.float32)
    scores[2, 0], scores[4, -1], scores[5, :] = np.nan, -0.0, -np.inf
    expected = np.maximum.reduce(scores, axis=1, keepdims=True)
    np.testing.assert_array_equal(row_max(scores), expected)  # NaN where NumPy has NaN
    assert row_max(scores).shape == (7, 1)


def test_cross_entropy_gradient_is_probabilities_minus_onehot():
    logits, target = random_problem(3, n=4, c=5)
    x = cr.tensor(logits, requires_grad=True)
    F.cross_entropy(x, target, reduction="sum").backward()
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[np.arange(4), target] -= 1
    np.testing.assert_allclose(x.grad, probs, rtol=1e-12, atol=1e-15)


def test_cross_entropy_second_order():
    logits, target = random_problem(4, n=3, c=4)
    x = cr.tensor(logits, requires_grad=True)
    assert gradcheck(
        lambda x: cr.autograd.grad(F.cross_entropy(x, target), x, create_graph=True)[0], [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    x = cr.tensor(logits, requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        losses = F.cross_entropy(x, np.array([0, 1, 2]), reduction="none")
        losses.sum().backward()
    assert losses.dtype == dtype
    np.testing.assert_allclose(losses.data, [0.0, 1e4, math.log(3)], rtol=1e-6, atol=1e-6)
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(x.grad, [[0, 0, 0], [1, -1, 0], [1 / 3, 1 / 3, -2 / 3]],
                               atol=1e-6)


@pytest.mark.parametrize("make_target", [
    lambda t: t, lambda t: t.astype(np.int32), lambda t: t.astype(np.uint8),
    lambda t: cr.tensor(t), lambda t: list(t),
], ids=["int64 array", "int32 array", "uint8 array", "Tensor", "list"])
def test_cross_entropy_accepts_integer_targets(make_target):
    logits, target = random_problem(5)
    expected = F.cross_entropy(cr.tensor(logits), target).item()
    assert F.cross_entropy(cr.tensor(logits), make_target(target)).item() == expected


@pytest.mark.parametrize("loss", [F.cross_entropy, F.hinge_loss])
def test_class_loss_target_shape_error_names_both_shapes(loss):
    logits, target = random_problem(0, n=4, c=3)
    with pytest.raises(ShapeError) as info:
        loss(cr.tensor(logits), target.reshape(4, 1))
    assert "(4, 3)" in str(info.value) and "(4, 1)" in str(info.value)
    with pytest.raises(ShapeError, match=r"\(5,\)"):
        loss(cr.tensor(logits), np.zeros(5, dtype=np.int64))
    with pytest.raises(ShapeError, match=r"\(N, C\).*\(3,\)"):
        loss(cr.tensor(logits[0]), target)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.hinge_loss])
@pytest.mark.parametrize("bad", [3, -1, 100])
def test_class_loss_label_out_of_range(loss, bad):
    logits, _ = random_problem(0, n=4, c=3)
    target = np.array([0, 1, bad, 2])
    with pytest.raises(ChainruleError, match=str(bad)) as info:
        loss(cr.tensor(logits), target)
    assert "[0, 3)" in str(info.value)


@pytest.mark.parametrize("loss", [F.cross_entropy, F.hinge_loss])
def test_class_loss_rejects_float_targets(loss):
    logits, target = random_problem(0, n=4, c=3)
    with pytest.raises(DTypeError, match="integer"):
        loss(cr.tensor(logits), target.astype(np.float64))
    with pytest.raises(DTypeError):
        loss(cr.tensor(logits), cr.tensor(target.astype(np.float32)))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.hinge_loss, F.mse_loss,
                                  F.binary_cross_entropy_with_logits])
def test_unknown_reduction(loss):
    logits, target = random_problem(0, n=2, c=2)
    if loss in (F.mse_loss, F.binary_cross_entropy_with_logits):
        target = np.zeros_like(logits)
    with pytest.raises(ValueError, match="reduction"):
        loss(cr.tensor(logits), target, reduction="avg")


# ----- the multiclass hinge loss -------------------------------------------------------------
def hinge_by_hand(scores, target, margin=1.0):
    """The lecture's L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin) and its
    subgradient, with plain loops."""
    n, c = scores.shape
    losses, grad = np.zeros(n), np.zeros((n, c))
    for i in range(n):
        for j in range(c):
            if j == target[i]:
                continue
            m = scores[i, j] - scores[i, target[i]] + margin
            if m > 0:
                losses[i] += m
                grad[i, j] += 1
                grad[i, target[i]] -= 1
    return losses, grad


def test_hinge_loss_on_the_lectures_example():
    # Three images (cat, car, frog) scored for the classes cat, car, frog.
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    target = np.array([0, 1, 2])
    losses, grad = hinge_by_hand(scores, target)
    np.testing.assert_allclose(losses, [2.9, 0.0, 12.9], rtol=1e-12)  # as on the slide
    x = cr.tensor(scores, requires_grad=True)
    out = F.hinge_loss(x, target)
    out.backward()
    np.testing.assert_allclose(out.item(), losses.mean(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, grad / 3, rtol=1e-12)
    np.testing.assert_allclose(nn.HingeLoss()(cr.tensor(scores), target).item(), losses.mean())


def scores_away_from_kinks(seed, n, c, margin):
    """Random scores with every margin s_j - s_y + margin at least 0.05 away from 0."""
    rng = np.random.default_rng(seed)
    while True:
        scores, target = rng.standard_normal((n, c)) * 2, rng.integers(0, c, n)
        m = scores - scores[np.arange(n), target][:, None] + margin
        m[np.arange(n), target] = 1.0
        if np.abs(m).min() > 0.05:
            return scores, target


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.0])
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), c=st.integers(2, 5))
def test_hinge_loss_matches_loops_and_gradchecks(reduction, margin, seed, n, c):
    scores, target = scores_away_from_kinks(seed, n, c, margin)
    losses, grad = hinge_by_hand(scores, target, margin)
    x = cr.tensor(scores, requires_grad=True)
    out = F.hinge_loss(x, target, margin=margin, reduction=reduction)
    np.testing.assert_allclose(out.data, reduce(losses, reduction), rtol=1e-12, atol=1e-15)
    upstream = np.ones(n) if reduction == "none" else None
    out.backward(upstream)
    scale = 1 / n if reduction == "mean" else 1
    np.testing.assert_allclose(x.grad, grad * scale, rtol=1e-12)
    assert gradcheck(lambda x: F.hinge_loss(x, target, margin, reduction), [x])


def test_hinge_loss_is_zero_when_every_margin_is_met():
    scores = np.array([[5.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    x = cr.tensor(scores, requires_grad=True)
    out = F.hinge_loss(x, np.array([0, 2]))
    out.backward()
    assert out.item() == 0 and np.all(x.grad == 0)


# ----- squared error and binary cross-entropy ------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x = cr.tensor(a, requires_grad=True)
    out = F.mse_loss(x, b, reduction=reduction)
    np.testing.assert_allclose(out.data, reduce((a - b) ** 2, reduction), rtol=1e-12)
    np.testing.assert_allclose(nn.MSELoss(reduction)(x, b).data, out.data)
    assert gradcheck(lambda x: F.mse_loss(x, b, reduction=reduction), [x])
    t = cr.tensor(b, requires_grad=True)  # the target may be differentiated too
    assert gradcheck(lambda x, t: F.mse_loss(x, t, reduction=reduction), [x, t])
    if reduction == "mean":
        F.mse_loss(x, b).backward()
        np.testing.assert_allclose(x.grad, 2 * (a - b) / a.size, rtol=1e-12)


def test_mse_loss_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError) as info:
        F.mse_loss(cr.tensor(np.zeros((4, 1))), np.zeros(4))
    assert "(4, 1)" in str(info.value) and "(4,)" in str(info.value)


def bce_reference(x, t):
    s = 1 / (1 + np.exp(-x))
    return -(t * np.log(s) + (1 - t) * np.log(1 - s))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    rng = np.random.default_rng(2)
    logits, target = rng.standard_normal((5, 2)) * 3, rng.uniform(0, 1, (5, 2))
    x = cr.tensor(logits, requires_grad=True)
    out = F.binary_cross_entropy_with_logits(x, target, reduction=reduction)
    np.testing.assert_allclose(out.data, reduce(bce_reference(logits, target), reduction),
                               rtol=1e-10)
    np.testing.assert_allclose(nn.BCEWithLogitsLoss(reduction)(x, target).data, out.data)
    t = cr.tensor(target, requires_grad=True)
    assert gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction), [x, t])


def test_binary_cross_entropy_gradient_at_zero_logits():
    target = np.array([0.0, 1.0, 0.25, 0.5])
    x = cr.tensor(np.zeros(4), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, target, reduction="sum")
    loss.backward()
    np.testing.assert_allclose(loss.item(), 4 * math.log(2), rtol=1e-12)
    np.testing.assert_array_equal(x.grad, 0.5 - target)  # sigmoid(0) - t, exactly


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_stable_for_huge_logits(dtype):
    logits = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    target = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    x = cr.tensor(logits, requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        losses = F.binary_cross_entropy_with_logits(x, target, reduction="none")
        losses.sum().backward()
    assert losses.dtype == dtype
    np.testing.assert_allclose(losses.data, [1e4, 1e4, 0, 0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad, [1, -1, 0, 0], atol=1e-6)


def test_binary_cross_entropy_shape_mismatch():
    with pytest.raises(ShapeError) as info:
        F.binary_cross_entropy_with_logits(cr.tensor(np.zeros((3, 1))), np.zeros(3))
    assert "(3, 1)" in str(info.value) and "(3,)" in str(info.value)


# ----- sanity checks of the lecture: the loss at initialisation ------------------------------
def small_network(seed):
    model = nn.MLP(50, [100], 10, seed=seed, dtype=np.float64)
    for name, p in model.named_parameters():
        init.normal_(p, std=1e-3, generator=seed) if "weight" in name else init.zeros_(p)
    return model


def test_initial_softmax_loss_is_log_of_number_of_classes():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 50)), rng.integers(0, 10, 200)
    loss = F.cross_entropy(small_network(0)(x), y).item()
    assert abs(loss - math.log(10)) < 0.01 * math.log(10)


def test_initial_hinge_loss_is_number_of_classes_minus_one():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((200, 50)), rng.integers(0, 10, 200)
    loss = F.hinge_loss(small_network(1)(x), y).item()
    assert abs(loss - 9) < 0.01 * 9


# ----- regularization ---------------------------------------------------------------------------
def test_l2_penalty_value_and_gradient():
    model = nn.MLP(3, [4], 2, seed=0, dtype=np.float64)
    lam = 0.3
    weights = [m.weight.data for m in model.linear_layers()]
    biases = [m.bias.data for m in model.linear_layers()]
    penalty = F.l2_penalty(model, lam)
    np.testing.assert_allclose(penalty.item(), lam * sum((w**2).sum() for w in weights),
                               rtol=1e-12)
    penalty.backward()
    for layer in model.linear_layers():
        np.testing.assert_allclose(layer.weight.grad, 2 * lam * layer.weight.data, rtol=1e-12)
        assert layer.bias.grad is None  # biases are not regularized
    with_bias = F.l2_penalty(model, lam, include_bias=True).item()
    np.testing.assert_allclose(
        with_bias, lam * sum((a**2).sum() for a in weights + biases), rtol=1e-12)


def test_l1_penalty_value_and_gradient():
    model = nn.MLP(3, [4], 2, seed=0, dtype=np.float64)
    lam = 0.1
    layers = model.linear_layers()
    penalty = F.l1_penalty(model, lam)
    np.testing.assert_allclose(
        penalty.item(), lam * sum(np.abs(m.weight.data).sum() for m in layers), rtol=1e-12)
    penalty.backward()
    for layer in layers:
        np.testing.assert_allclose(layer.weight.grad, lam * np.sign(layer.weight.data))
        assert layer.bias.grad is None
    np.testing.assert_allclose(
        F.l1_penalty(model, lam, include_bias=True).item(),
        lam * sum(np.abs(m.weight.data).sum() + np.abs(m.bias.data).sum() for m in layers),
        rtol=1e-12)


def test_penalty_adds_to_data_loss():
    # L = data loss + lambda R(W): the gradients of the two terms add.
    model = nn.Linear(3, 2, dtype=np.float64, generator=0)
    x, y = np.random.default_rng(0).standard_normal((4, 3)), np.array([0, 1, 1, 0])
    F.cross_entropy(model(x), y).backward()
    data_grad = model.weight.grad.copy()
    model.zero_grad()
    (F.cross_entropy(model(x), y) + F.l2_penalty(model, 0.5)).backward()
    np.testing.assert_allclose(model.weight.grad, data_grad + model.weight.data, rtol=1e-12)


def test_penalty_of_module_without_weights():
    with pytest.raises(ChainruleError, match="no weights"):
        F.l2_penalty(nn.ReLU(), 0.1)
