"""Edge cases of nn and optim that once went wrong."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim


def test_sequential_refuses_things_that_are_not_modules():
    with pytest.raises(cr.ChainruleError, match="item 1 is a function"):
        nn.Sequential(nn.Linear(2, 2), lambda t: t * 100)


def test_sequential_slice_keeps_layer_names():
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert list(seq[1:].state_dict()) == ["2.weight", "2.bias"]


def test_shared_layer_is_saved_under_each_name_and_loads_back():
    layer = nn.Linear(2, 2, generator=0)
    seq = nn.Sequential(layer, layer)
    state = seq.state_dict()
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)).load_state_dict(state)
    assert len(list(seq.parameters())) == 2  # the optimizer still sees it once


def test_none_buffer_round_trips():
    class WithNone(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("running", None)

    m = WithNone()
    m.load_state_dict(m.state_dict())


def test_parameter_from_a_list_is_float32():
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32


def test_linear_on_integer_input_computes_in_float32():
    out = nn.Linear(4, 2, generator=0)(cr.tensor([[1, 2, 3, 4]]))
    assert out.dtype == np.float32


def test_optimizer_given_a_module_says_to_pass_parameters():
    with pytest.raises(cr.ChainruleError, match=r"model.parameters\(\)"):
        optim.SGD(nn.Linear(2, 2), lr=0.1)


def test_mlp_hidden_sizes_must_be_a_list():
    with pytest.raises(cr.ChainruleError, match=r"\[100\]"):
        nn.MLP(4, 100, 3)


def test_unknown_reduction_is_a_chainrule_error():
    with pytest.raises(cr.ArgumentError, match="reduction"):
        nn.functional.cross_entropy(cr.zeros(2, 3), np.array([0, 1]), reduction="avg")


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(cr.ChainruleError, match="mapping"):
        nn.Linear(2, 2).load_state_dict([1, 2])


def test_manual_seed_fixes_default_weights_dropout_and_data_order():
    from chainrule.data import DataLoader

    def run():
        cr.manual_seed(7)
        model = nn.MLP(3, [5], 2, dropout=0.5)
        order = [b for b in DataLoader(np.arange(10), batch_size=10)][0]
        return model[0].weight.data.copy(), model[2].generator.random(), order

    (w1, d1, o1), (w2, d2, o2) = run(), run()
    np.testing.assert_array_equal(w1, w2)
    assert d1 == d2
    np.testing.assert_array_equal(o1, o2)
    assert model_dropout_is_not_the_default_generator()


def model_dropout_is_not_the_default_generator():
    model = nn.MLP(3, [5], 2, dropout=0.5)
    return model[2].generator is not cr.as_generator(None)


def test_forward_hook_sees_every_call_can_replace_the_output_and_be_removed():
    layer = nn.Linear(2, 2, generator=0)
    seen = []

    def double(module, inputs, output):
        seen.append(module)
        return output * 2

    handle = layer.register_forward_hook(double)
    x = cr.ones(1, 2)
    plain = layer.weight.data.sum(axis=1) + layer.bias.data
    np.testing.assert_allclose(layer(x).data[0], 2 * plain, rtol=1e-6)
    handle.remove()
    np.testing.assert_allclose(layer(x).data[0], plain, rtol=1e-6)
    assert seen == [layer]
