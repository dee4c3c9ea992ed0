"""In-place changes to values a graph saved are caught at backward() (PyTorch's version
counter): a silently wrong gradient becomes an error naming the tensor."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.errors import GraphError


def forward(model):
    x = cr.tensor(np.ones((4, 3), np.float32))
    return model(x).sum()


def test_load_state_dict_between_forward_and_backward_is_refused():
    model = nn.MLP(3, [5], 2, seed=0)
    saved = nn.MLP(3, [5], 2, seed=1).state_dict()
    loss = forward(model)
    model.load_state_dict(saved)
    with pytest.raises(GraphError, match=r"'2\.weight' .*changed in place by load_state_dict"):
        loss.backward()


def test_forward_after_load_state_dict_gives_the_new_weights_gradient():
    model, other = nn.MLP(3, [5], 2, seed=0), nn.MLP(3, [5], 2, seed=1)
    model.load_state_dict(other.state_dict())
    forward(model).backward()
    forward(other).backward()
    for a, b in zip(model.parameters(), other.parameters()):
        np.testing.assert_array_equal(a.grad, b.grad)


def test_optimizer_step_before_a_second_backward_is_refused():
    model = nn.MLP(3, [5], 2, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = forward(model)
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(GraphError, match=r"changed in place by SGD\.step\(\)"):
        loss.backward()


def test_versions_count_changes_and_name_the_tensor():
    w = cr.tensor([1.0, 2.0], requires_grad=True, name="w")
    assert w.version == 0
    y = (w * w).sum()
    with cr.no_grad():
        w.data *= 3  # written into the very array the graph saved
    w.mark_changed("my update")
    assert w.version == 1
    with pytest.raises(GraphError, match="'w' .*changed in place by my update"):
        y.backward()


def test_replacing_data_is_not_an_in_place_change():
    # ``w -= ...`` under no_grad gives w a new array; the graph keeps the old one intact.
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with cr.no_grad():
        w -= 1.0
    y.backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_an_unnamed_tensor_changed_in_place_is_described_plainly():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (w * 3.0).sum()
    w.mark_changed()
    with pytest.raises(GraphError) as error:
        y.backward()
    assert "the tensor of shape (2,) (input 1 of 'multiply') was changed in place" in str(
        error.value)
