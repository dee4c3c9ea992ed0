"""What training must reach with the default options, and the sanity checks of the lecture.

The targets are the documented ones: the CS231n spiral (3 classes x 100 points) is learnt
by a 2-layer net with 100 hidden units (>= 98% training accuracy) but not by a linear
classifier (<= 60%); scikit-learn's digits reach >= 97% test accuracy with a 2-layer net.
Sanity checks: an untrained net with small weights starts at loss ln(C), and a tiny subset
is overfitted to 100% training accuracy.
"""

import json
import math

import numpy as np
import pytest

from chainrule import cli, optim
from chainrule.data import Dataset, load_dataset
from chainrule.experiment import RunConfig, prepare_data
from chainrule.nn import MLP
from chainrule.train import Trainer


def train_with_defaults(tmp_path, *options):
    """``chainrule train --quiet --out D OPTIONS``: every other option at its default."""
    out = tmp_path / "run"
    assert cli.main(["train", *options, "--out", str(out), "--quiet"]) == 0
    return json.loads((out / "summary.json").read_text())


def test_spiral_with_100_hidden_units_reaches_98_percent(tmp_path):
    summary = train_with_defaults(tmp_path, "--dataset", "spiral", "--hidden", "100")
    assert "train=300" in summary["dataset"] and "classes=3" in summary["dataset"]
    assert summary["train_accuracy"] >= 0.98, summary


def test_a_linear_classifier_cannot_learn_the_spiral(tmp_path):
    summary = train_with_defaults(tmp_path, "--dataset", "spiral", "--hidden", "none")
    assert summary["config"]["hidden"] == []
    assert summary["train_accuracy"] <= 0.60, summary


def test_digits_with_a_two_layer_net_reaches_97_percent_test_accuracy(tmp_path):
    pytest.importorskip("sklearn")
    summary = train_with_defaults(tmp_path, "--dataset", "digits")
    assert len(summary["config"]["hidden"]) == 1  # the default net has one hidden layer
    assert summary["test_accuracy"] >= 0.97, summary


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    data, _ = prepare_data(RunConfig(dataset="digits"))
    return data


def test_initial_loss_with_small_weights_is_ln_c(digits):
    model = MLP(digits.num_features, [100], 10, seed=0)
    for layer in model.linear_layers():
        layer.weight.data *= 1e-3  # small weights: every class equally likely
        layer.bias.data[...] = 0
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False)
    loss, _ = trainer.evaluate(digits.X_train, digits.y_train)
    assert loss == pytest.approx(math.log(10), abs=1e-3)


def test_initial_loss_with_the_default_initialisation_is_near_ln_c(digits):
    model = MLP(digits.num_features, [100], 10, seed=0)
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), progress=False)
    loss, _ = trainer.evaluate(digits.X_train, digits.y_train)
    assert abs(loss - math.log(10)) < 0.5


def test_initial_svm_loss_with_small_weights_is_c_minus_1(digits):
    model = MLP(digits.num_features, [100], 10, seed=0)
    for layer in model.linear_layers():
        layer.weight.data *= 1e-4
        layer.bias.data[...] = 0
    trainer = Trainer(model, optim.SGD(model.parameters(), lr=0.1), loss="svm", progress=False)
    loss, _ = trainer.evaluate(digits.X_train, digits.y_train)
    assert loss == pytest.approx(9.0, abs=1e-2)


def test_fifty_examples_are_overfitted_to_100_percent(digits):
    X, y = digits.X_train[:50], digits.y_train[:50]
    small = Dataset("digits-50", X, y, digits.X_val, digits.y_val, None, None, 10)
    model = MLP(small.num_features, [100], 10, seed=0)
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-3), epochs=200,
                      batch_size=10, progress=False)
    summary = trainer.fit(small)
    assert summary["train_accuracy"] == 1.0
    assert summary["final_loss"] < 0.05
    # Memorised, not learnt: validation accuracy is far below the training accuracy.
    assert summary["val_accuracy"] < 0.95


def test_the_spiral_is_not_learnt_by_a_net_without_a_nonlinearity():
    """Stacked Linear layers collapse to one matrix: no better than the linear classifier."""
    data = load_dataset("spiral")
    model = MLP(2, [100], 3, activation=None, seed=0)
    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-2), epochs=100,
                      progress=False)
    summary = trainer.fit(data)
    assert summary["train_accuracy"] <= 0.60
    first, second = (layer for layer in model.linear_layers())
    W = second.weight.data.astype(np.float64) @ first.weight.data  # one 3 x 2 matrix
    b = second.weight.data.astype(np.float64) @ first.bias.data + second.bias.data
    model.eval()
    scores = model(data.X_val).data
    np.testing.assert_allclose(scores, data.X_val @ W.T + b, rtol=1e-4, atol=1e-4)
