"""The training monitor: dead ReLUs, saturated units, gradient norms, update ratios."""

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.cli import main
from chainrule.data import load_dataset
from chainrule.diagnostics import DiagnosticsMonitor
from chainrule.train import Trainer


def fit(model, lr=1e-3, epochs=2, out_dir=None, optimizer=optim.Adam):
    data = load_dataset("spiral", seed=0)
    monitor = DiagnosticsMonitor(out_dir)
    trainer = Trainer(model, optimizer(model.parameters(), lr=lr), epochs=epochs,
                      progress=False, callbacks=[monitor])
    trainer.fit(data)
    return monitor


def layer(record, suffix):
    return next(v for k, v in record["layers"].items() if k.endswith(suffix))


def test_a_layer_of_dead_relus_is_measured_and_named():
    model = nn.MLP(2, [50], 3, seed=0)
    with cr.no_grad():
        model[0].bias.data[:] = -100.0  # every pre-activation negative: no unit ever fires
    monitor = fit(model)
    assert layer(monitor.records[-1], "(relu)")["dead_fraction"] == 1.0
    assert any("never fired" in text and "dead" in text for _, text in monitor.warnings)


def test_healthy_relus_are_not_dead():
    monitor = fit(nn.MLP(2, [50], 3, seed=0))
    assert layer(monitor.records[-1], "(relu)")["dead_fraction"] < 0.5
    assert not any("never fired" in text for _, text in monitor.warnings)


def test_saturated_sigmoid_units_are_found():
    model = nn.MLP(2, [20], 3, activation="sigmoid", seed=0)
    with cr.no_grad():
        model[0].weight.data *= 1000.0  # huge pre-activations pin sigmoids at 0 or 1
    monitor = fit(model, lr=1e-6)
    assert layer(monitor.records[-1], "(sigmoid)")["saturated_fraction"] > 0.9
    assert any("saturated" in text for _, text in monitor.warnings)


def test_update_ratio_follows_the_learning_rate():
    small = fit(nn.MLP(2, [20], 3, seed=0), lr=1e-3, optimizer=optim.SGD)
    large = fit(nn.MLP(2, [20], 3, seed=0), lr=1.0, optimizer=optim.SGD)
    ratio = lambda m: layer(m.records[-1], "0 (linear)")["update_ratio"]  # noqa: E731
    assert ratio(large) == pytest.approx(1000 * ratio(small), rel=0.5)
    assert layer(large.records[-1], "0 (linear)")["grad_norm"] > 0


def test_a_learning_rate_far_too_large_or_small_is_called_so():
    large = fit(nn.MLP(2, [100], 3, seed=0), lr=5.0, epochs=30, optimizer=optim.SGD)
    assert any("too large" in text for _, text in large.warnings)
    small = fit(nn.MLP(2, [100], 3, seed=0), lr=1e-6, epochs=30)
    assert any("too small" in text for _, text in small.warnings)


def test_the_fast_first_steps_away_from_the_initial_weights_are_no_alarm():
    # Adam at 1e-2 on the spiral (the default) moves the weights by ~1e-1 of their size in
    # the first epochs, then settles in the healthy band.
    monitor = fit(nn.MLP(2, [100], 3, seed=0), lr=1e-2, epochs=40)
    assert max(layer(monitor.records[0], "2 (linear)")["update_ratio"], 0) > 1e-2
    assert monitor.warnings == []


def test_each_warning_is_given_once(tmp_path):
    monitor = fit(nn.MLP(2, [20], 3, seed=0), lr=3.0, epochs=4, optimizer=optim.SGD)
    texts = [text.split(":")[0] + text.split("the learning rate")[-1]
             for _, text in monitor.warnings]
    assert len(texts) == len(set(texts))


def test_files_are_written(tmp_path):
    monitor = fit(nn.MLP(2, [20], 3, seed=0), out_dir=tmp_path)
    saved = json.loads((tmp_path / "diagnostics.json").read_text())
    assert len(saved["records"]) == len(monitor.records) == 2
    assert (tmp_path / "diagnostics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_hooks_are_removed_after_training():
    model = nn.MLP(2, [20], 3, seed=0)
    fit(model)
    assert all(not m._forward_hooks for m in model.modules())


def test_cli_diagnose_prints_warnings_and_draws(tmp_path, capsys):
    code = main(["train", "--dataset", "spiral", "--optimizer", "sgd", "--lr", "5",
                 "--epochs", "3", "--diagnose", "--quiet", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "warning (epoch" in out and "learning rate" in out
    assert (tmp_path / "diagnostics.png").exists()
    assert np.isfinite(json.loads((tmp_path / "summary.json").read_text())["train_accuracy"])
