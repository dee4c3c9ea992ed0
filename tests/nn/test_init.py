"""Weight initialisation: the documented scales (PyTorch's formulas), fans and seeds."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.errors import ChainruleError
from chainrule.nn import init

FAN_OUT, FAN_IN = 1000, 400  # a weight of shape (out_features, in_features)


def weight(shape=(FAN_OUT, FAN_IN), dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def assert_normal(values, std, mean=0.0):
    assert abs(values.mean() - mean) < 0.01 * std + 1e-12
    assert abs(values.std() - std) < 0.01 * std
    # about 68% within one standard deviation of the mean
    assert abs(np.mean(np.abs(values - mean) < std) - 0.6827) < 0.01


def assert_uniform(values, bound):
    assert np.abs(values).max() <= bound
    assert values.max() > 0.999 * bound and values.min() < -0.999 * bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert abs(np.mean(np.abs(values) < bound / 2) - 0.5) < 0.01


def test_fan_in_and_fan_out():
    assert init.fan_in_and_fan_out(weight()) == (FAN_IN, FAN_OUT)
    assert init.fan_in_and_fan_out(weight((8, 3, 5, 5))) == (3 * 25, 8 * 25)
    with pytest.raises(ChainruleError, match="at least 2 dimensions"):
        init.fan_in_and_fan_out(nn.Parameter(np.zeros(5)))


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ChainruleError, match="gelu"):
        init.calculate_gain("gelu")


@pytest.mark.parametrize("mode, fan", [("fan_in", FAN_IN), ("fan_out", FAN_OUT)])
def test_kaiming_normal(mode, fan):
    w = init.kaiming_normal_(weight(), mode=mode, nonlinearity="relu", generator=0)
    assert_normal(w.data, math.sqrt(2 / fan))
    # the default (a=0, leaky_relu) is He's relu initialisation, as in PyTorch
    assert_normal(init.kaiming_normal_(weight(), mode=mode, generator=1).data,
                  math.sqrt(2 / fan))


@pytest.mark.parametrize("mode, fan", [("fan_in", FAN_IN), ("fan_out", FAN_OUT)])
def test_kaiming_uniform(mode, fan):
    w = init.kaiming_uniform_(weight(), mode=mode, nonlinearity="relu", generator=0)
    assert_uniform(w.data, math.sqrt(6 / fan))
    w = init.kaiming_uniform_(weight(), a=math.sqrt(5), mode=mode, generator=0)
    assert_uniform(w.data, 1 / math.sqrt(fan))  # what Linear uses


def test_kaiming_gain_of_tanh():
    w = init.kaiming_normal_(weight(), nonlinearity="tanh", generator=0)
    assert_normal(w.data, 5 / 3 / math.sqrt(FAN_IN))


def test_kaiming_rejects_unknown_mode():
    with pytest.raises(ChainruleError, match="fan_avg"):
        init.kaiming_normal_(weight(), mode="fan_avg")


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_xavier(gain):
    w = init.xavier_normal_(weight(), gain=gain, generator=0)
    assert_normal(w.data, gain * math.sqrt(2 / (FAN_IN + FAN_OUT)))
    w = init.xavier_uniform_(weight(), gain=gain, generator=0)
    assert_uniform(w.data, gain * math.sqrt(6 / (FAN_IN + FAN_OUT)))


def test_normal_uniform_and_constants():
    assert_normal(init.normal_(weight(), mean=2.0, std=0.5, generator=0).data, 0.5, mean=2.0)
    w = init.uniform_(weight(), -3.0, 3.0, generator=0)
    assert_uniform(w.data, 3.0)
    w = init.uniform_(weight(), generator=0)
    assert w.data.min() >= 0 and w.data.max() < 1
    assert not init.zeros_(init.normal_(weight(), generator=0)).data.any()
    assert np.all(init.ones_(weight()).data == 1)
    assert np.all(init.constant_(weight(), 0.25).data == 0.25)


@pytest.mark.parametrize("fill", [
    lambda w, g: init.kaiming_normal_(w, generator=g),
    lambda w, g: init.kaiming_uniform_(w, generator=g),
    lambda w, g: init.xavier_normal_(w, generator=g),
    lambda w, g: init.xavier_uniform_(w, generator=g),
    lambda w, g: init.normal_(w, generator=g),
    lambda w, g: init.uniform_(w, generator=g),
], ids=["kaiming_normal_", "kaiming_uniform_", "xavier_normal_", "xavier_uniform_",
        "normal_", "uniform_"])
def test_fills_in_place_reproducibly(fill):
    w = weight((30, 20))
    array = w.data
    assert fill(w, 0) is w
    assert w.data is array and w.dtype == np.float32  # in place: optimizers keep the array
    np.testing.assert_array_equal(w.data, fill(weight((30, 20)), 0).data)
    np.testing.assert_array_equal(
        fill(weight((30, 20)), np.random.default_rng(5)).data,
        fill(weight((30, 20)), np.random.default_rng(5)).data)
    assert not np.array_equal(w.data, fill(weight((30, 20)), 1).data)
    cr.manual_seed(11)
    first = fill(weight((30, 20)), None).data.copy()
    cr.manual_seed(11)
    np.testing.assert_array_equal(first, fill(weight((30, 20)), None).data)


def test_float64_weights_stay_float64():
    w = init.xavier_normal_(weight(dtype=np.float64), generator=0)
    assert w.dtype == np.float64
