"""The lecture's "two-layer network in about 20 lines", written twice: with gradients by
hand in NumPy (as on the slide) and with chainrule's backpropagation. From the same
weights, both must follow the same path step by step."""

import numpy as np
import pytest

import chainrule as cr

N, D_in, H, D_out = 64, 1000, 100, 10
STEPS, LEARNING_RATE = 50, 1e-4


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((N, D_in)), rng.standard_normal((N, D_out))
    w1, w2 = rng.standard_normal((D_in, H)), rng.standard_normal((H, D_out))
    return x, y, w1, w2


def train_by_hand(x, y, w1, w2):
    """The slide's code, with its analytical gradients."""
    w1, w2 = w1.copy(), w2.copy()
    losses = []
    for _ in range(STEPS):
        h = 1 / (1 + np.exp(-x.dot(w1)))
        y_pred = h.dot(w2)
        loss = np.square(y_pred - y).sum()
        losses.append(loss)

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_w1 = x.T.dot(grad_h * h * (1 - h))

        w1 -= LEARNING_RATE * grad_w1
        w2 -= LEARNING_RATE * grad_w2
    return np.array(losses), w1, w2


def train_with_chainrule(x, y, w1, w2, update_in_no_grad):
    """The same network; backpropagation finds the gradients."""
    x, y = cr.tensor(x), cr.tensor(y)
    w1 = cr.tensor(w1, requires_grad=True)
    w2 = cr.tensor(w2, requires_grad=True)
    losses = []
    for _ in range(STEPS):
        h = cr.sigmoid(x @ w1)
        y_pred = h @ w2
        loss = ((y_pred - y) ** 2).sum()
        losses.append(loss.item())

        loss.backward()
        if update_in_no_grad:
            with cr.no_grad():
                w1 -= LEARNING_RATE * w1.grad
                w2 -= LEARNING_RATE * w2.grad
        else:
            w1.data -= LEARNING_RATE * w1.grad
            w2.data -= LEARNING_RATE * w2.grad
        w1.grad = w2.grad = None
    return np.array(losses), w1, w2


@pytest.mark.parametrize("update_in_no_grad", [
    pytest.param(False, id="on .data"),
    pytest.param(True, id="-= under no_grad"),
])
def test_chainrule_follows_the_hand_written_network(problem, update_in_no_grad):
    expected_losses, expected_w1, expected_w2 = train_by_hand(*problem)
    losses, w1, w2 = train_with_chainrule(*problem, update_in_no_grad)
    assert w1.dtype == np.float64 and w2.dtype == np.float64
    assert expected_losses[-1] < expected_losses[0]  # the network does learn
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-9)
    np.testing.assert_allclose(w1.data, expected_w1, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(w2.data, expected_w2, rtol=1e-9, atol=1e-12)


def test_first_gradients_equal_the_hand_derived_ones(problem):
    x, y, w1_init, w2_init = problem
    w1 = cr.tensor(w1_init, requires_grad=True)
    w2 = cr.tensor(w2_init, requires_grad=True)
    ((cr.sigmoid(cr.tensor(x) @ w1) @ w2 - y) ** 2).sum().backward()

    h = 1 / (1 + np.exp(-x.dot(w1_init)))
    grad_y_pred = 2.0 * (h.dot(w2_init) - y)
    np.testing.assert_allclose(w2.grad, h.T.dot(grad_y_pred), rtol=1e-10)
    np.testing.assert_allclose(
        w1.grad, x.T.dot(grad_y_pred.dot(w2_init.T) * h * (1 - h)), rtol=1e-10, atol=1e-10)
