"""``Module`` and ``Parameter``: registration, traversal, modes, gradients, state."""

from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import ChainruleError, ShapeError


class TwoLayer(nn.Module):
    """A network written by hand, as a user would."""

    def __init__(self, seed=0):
        super().__init__()
        self.hidden = nn.Linear(3, 4, generator=seed)
        self.act = nn.ReLU()
        self.out = nn.Linear(4, 2, generator=seed + 1)

    def forward(self, x):
        return self.out(self.act(self.hidden(x)))


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = TwoLayer()
        self.scale = nn.Parameter(np.ones(2, dtype=np.float32))

    def forward(self, x):
        return self.body(x) * self.scale


class WithBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(np.ones(3))
        self.register_buffer("running_mean", np.zeros(3))

    def forward(self, x):
        return (x - self.running_mean) * self.weight


# ----- registration -------------------------------------------------------------------------
def test_parameter_requires_grad_and_copies_data():
    data = np.arange(3.0)
    p = nn.Parameter(data)
    assert isinstance(p, cr.Tensor) and p.requires_grad
    data[0] = 10
    assert p.data[0] == 0
    assert not nn.Parameter(data, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:")


def test_assignment_registers_parameters_and_modules():
    m = TwoLayer()
    assert [name for name, _ in m.named_children()] == ["hidden", "act", "out"]
    assert list(m.children()) == [m.hidden, m.act, m.out]
    assert [name for name, _ in m.named_parameters()] == [
        "hidden.weight", "hidden.bias", "out.weight", "out.bias"]
    assert list(m.parameters()) == [m.hidden.weight, m.hidden.bias, m.out.weight, m.out.bias]
    assert [name for name, _ in m.named_parameters(recurse=False)] == []


def test_dotted_names_through_nesting():
    m = Nested()
    names = [name for name, _ in m.named_parameters()]
    assert names == ["scale", "body.hidden.weight", "body.hidden.bias", "body.out.weight",
                     "body.out.bias"]
    assert [name for name, _ in m.named_modules()] == [
        "", "body", "body.hidden", "body.act", "body.out"]
    assert list(m.modules())[0] is m and len(list(m.modules())) == 5


def test_reassignment_replaces_parameter_and_module():
    m = TwoLayer()
    old = m.out.weight
    new = nn.Parameter(np.zeros((2, 4), dtype=np.float32))
    m.out.weight = new
    assert m.out.weight is new
    assert all(p is not old for p in m.parameters())
    assert sum(p is new for p in m.parameters()) == 1
    replacement = nn.Linear(4, 2)
    m.out = replacement
    assert m.out is replacement and list(m.children())[2] is replacement


@pytest.mark.parametrize("value", [None, np.zeros((2, 4)), cr.zeros(2, 4), "text"])
def test_assigning_non_parameter_removes_it_from_registry(value):
    m = TwoLayer()
    m.out.weight = value
    assert "out.weight" not in dict(m.named_parameters())
    assert "out.weight" not in m.state_dict()
    assert m.out.weight is value
    m.act = value  # a sub-module replaced by a plain value is no longer a child
    assert "act" not in dict(m.named_children())


def test_delete_and_missing_attributes():
    m = TwoLayer()
    del m.out
    assert not hasattr(m, "out")
    assert [name for name, _ in m.named_children()] == ["hidden", "act"]
    with pytest.raises(AttributeError, match="nowhere"):
        m.nowhere  # noqa: B018


def test_register_parameter_none_for_an_absent_bias():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    layer.register_parameter("bias", np.zeros(2, dtype=np.float32))
    assert isinstance(layer.bias, nn.Parameter)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_shared_parameter_listed_once():
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(net.parameters())) == 2
    other = nn.Linear(2, 2)
    other.weight = shared.weight  # one Parameter in two layers
    pair = nn.Sequential(shared, other)
    params = list(pair.parameters())
    assert len(params) == 3 and sum(p is shared.weight for p in params) == 1


def test_parameters_follow_every_change_of_the_structure():
    # parameters() keeps its list between calls: each change must show in the next call
    def ids(params):
        return [id(p) for p in params]

    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    first = ids(net.parameters())
    assert first == ids([net[0].weight, net[0].bias]) and ids(net.parameters()) == first
    net.extra = nn.Linear(3, 1)  # a new submodule
    assert ids(net.parameters())[2:] == ids([net.extra.weight, net.extra.bias])
    old = net[0].weight
    net[0].weight = nn.Parameter(np.zeros((3, 2), dtype=np.float32))  # a replaced one
    params = ids(net.parameters())
    assert id(net[0].weight) in params and id(old) not in params
    assert params == ids(p for _, p in net.named_parameters())
    net[0].register_parameter("bias", None)  # a removed one
    assert net[0].bias is None and len(ids(net.parameters())) == 3
    del net.extra
    assert ids(net.parameters()) == ids([net[0].weight])
    assert ids(net[0].parameters(recurse=False)) == ids([net[0].weight])


def test_attribute_before_super_init_is_a_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)
            super().__init__()

    with pytest.raises(ChainruleError, match=r"Forgetful.*super\(\).__init__\(\)"):
        Forgetful()


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="Empty"):
        type("Empty", (nn.Module,), {})()(1)


# ----- gradients and modes ---------------------------------------------------------------------
def test_zero_grad():
    m = TwoLayer()
    x = np.ones((5, 3), dtype=np.float32)
    m(x).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in m.parameters())
    m(x).sum().backward()
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_gradients_accumulate_until_zero_grad():
    m = TwoLayer()
    x = np.ones((5, 3), dtype=np.float32)
    m(x).sum().backward()
    once = m.hidden.weight.grad.copy()
    m(x).sum().backward()
    np.testing.assert_allclose(m.hidden.weight.grad, 2 * once, rtol=1e-6)


def test_train_and_eval_reach_every_module_and_switch_dropout():
    net = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Dropout(0.5, seed=0), nn.ReLU()))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = np.ones((50, 4), dtype=np.float32)
    dropout = net[1][0]
    np.testing.assert_array_equal(np.asarray(dropout(x)), x)
    net.train()
    assert all(m.training for m in net.modules())
    out = np.asarray(dropout(x))
    assert (out == 0).any() and (out == 2).any()
    net.train(False)
    assert not dropout.training


# ----- state ------------------------------------------------------------------------------
def test_state_dict_has_dotted_keys_and_copies():
    m = Nested()
    state = m.state_dict()
    assert isinstance(state, OrderedDict)
    assert list(state) == [name for name, _ in m.named_parameters()]
    for name, p in m.named_parameters():
        assert isinstance(state[name], np.ndarray)
        np.testing.assert_array_equal(state[name], p.data)
    before = m.body.hidden.weight.data.copy()
    state["body.hidden.weight"][...] = 123
    np.testing.assert_array_equal(m.body.hidden.weight.data, before)


def test_load_state_dict_round_trip():
    source, target = TwoLayer(seed=0), TwoLayer(seed=5)
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    assert not np.allclose(source(x).data, target(x).data)
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(source(x).data, target(x).data)
    # the model's own arrays were written into, so an optimizer holding them sees the change
    source.hidden.weight.data[...] = 0
    assert target.hidden.weight.data.any()


def test_load_state_dict_names_missing_keys():
    m = TwoLayer()
    state = m.state_dict()
    del state["out.bias"], state["hidden.weight"]
    with pytest.raises(ShapeError, match="missing keys") as info:
        m.load_state_dict(state)
    assert "out.bias" in str(info.value) and "hidden.weight" in str(info.value)


def test_load_state_dict_names_unexpected_keys():
    m = TwoLayer()
    state = m.state_dict()
    state["extra.weight"] = np.zeros(3)
    with pytest.raises(ShapeError, match="unexpected keys: extra.weight"):
        m.load_state_dict(state)


def test_load_state_dict_names_shape_mismatch_and_changes_nothing():
    m = TwoLayer()
    before = m.state_dict()
    state = TwoLayer(seed=3).state_dict()
    state["out.weight"] = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ShapeError) as info:
        m.load_state_dict(state)
    message = str(info.value)
    assert "out.weight" in message and "(3, 4)" in message and "(2, 4)" in message
    for name, value in m.state_dict().items():  # nothing half-loaded
        np.testing.assert_array_equal(value, before[name])
    with pytest.raises(ShapeError, match="out.weight"):
        m.load_state_dict(state, strict=False)


def test_load_state_dict_not_strict_returns_key_lists():
    m = TwoLayer()
    donor = TwoLayer(seed=9)
    state = donor.state_dict()
    del state["out.bias"]
    state["head.weight"] = np.zeros(2)
    result = m.load_state_dict(state, strict=False)
    assert result.missing_keys == ["out.bias"]
    assert result.unexpected_keys == ["head.weight"]
    np.testing.assert_array_equal(m.out.weight.data, donor.out.weight.data)


def test_load_state_dict_accepts_tensors_and_casts_dtype():
    m = TwoLayer()
    state = {k: cr.tensor(v.astype(np.float64)) for k, v in TwoLayer(seed=4).state_dict().items()}
    m.load_state_dict(state)
    assert m.hidden.weight.dtype == np.float32
    np.testing.assert_allclose(m.hidden.weight.data, state["hidden.weight"].data, rtol=1e-6)


def test_buffers_are_saved_and_loaded_but_not_parameters():
    m = WithBuffer()
    assert [name for name, _ in m.named_parameters()] == ["weight"]
    assert [name for name, _ in m.named_buffers()] == ["running_mean"]
    assert list(m.state_dict()) == ["weight", "running_mean"]
    np.testing.assert_array_equal(m.running_mean, np.zeros(3))
    donor = WithBuffer()
    donor.register_buffer("running_mean", np.arange(3.0))
    m.load_state_dict(donor.state_dict())
    np.testing.assert_array_equal(m.running_mean, np.arange(3.0))
    state = m.state_dict()
    state["running_mean"][...] = -1  # a copy
    np.testing.assert_array_equal(m.running_mean, np.arange(3.0))
    del state["running_mean"]
    with pytest.raises(ShapeError, match="missing keys: running_mean"):
        m.load_state_dict(state)


def test_nested_buffers_have_dotted_names():
    net = nn.Sequential(nn.Linear(3, 3), WithBuffer())
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.running_mean"]


def test_assigning_to_a_buffer_updates_it():
    m = WithBuffer()
    m.running_mean = m.running_mean * 0.9 + 1  # how a running statistic is updated
    assert "running_mean" in m.state_dict()
    np.testing.assert_array_equal(m.state_dict()["running_mean"], np.ones(3))


def test_load_state_dict_checks_buffer_shapes():
    m = WithBuffer()
    with pytest.raises(ShapeError, match="running_mean"):
        m.load_state_dict({"weight": np.ones(3), "running_mean": np.zeros(5)})


# ----- display and dtype ------------------------------------------------------------------------
def test_repr_shows_structure():
    text = repr(nn.MLP(2, [100], 3))
    assert text.startswith("MLP(")
    assert "(0): Linear(in_features=2, out_features=100, bias=True)" in text
    assert "(1): ReLU()" in text
    assert "(2): Linear(in_features=100, out_features=3, bias=True)" in text
    nested = repr(Nested())
    assert "(body): TwoLayer(\n    (hidden): Linear(in_features=3" in nested


def test_double_and_float_cast_parameters_and_buffers():
    m = nn.Sequential(nn.Linear(3, 3), WithBuffer().float())
    assert m[1].running_mean.dtype == np.float32
    assert m.double() is m
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m[1].running_mean.dtype == np.float64
    x = np.ones((2, 3))
    assert m(x).dtype == np.float64
    m(x).sum().backward()
    assert m[0].weight.grad.dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())
    assert all(p.grad is None for p in m.parameters())


def test_apply_visits_every_module():
    visited = []
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
    assert net.apply(visited.append) is net
    assert len(visited) == 4 and visited[-1] is net


def test_labels_are_remembered_once_and_follow_a_replaced_parameter():
    from chainrule.nn.module import label_of

    model = nn.MLP(2, [3], 2, seed=0)
    X = np.ones((1, 2), dtype=np.float32)
    model(X)
    assert label_of(model[0].weight) == "0.weight" and label_of(X) == "X"
    replaced = nn.Parameter(np.zeros((3, 2), dtype=np.float32))
    model[0].weight = replaced
    model(X)
    assert label_of(replaced) == "0.weight"
