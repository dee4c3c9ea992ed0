"""Populations: K trials of one architecture trained as one batched network give each
member the numbers it gets when trained alone (same data order), within float32 rounding."""

import csv
import dataclasses
import json

import numpy as np
import pytest

from chainrule.experiment import RunConfig
from chainrule.experiment import evaluate as evaluate_run
from chainrule.sweep import PopulationTrainer, population_key, run_population
from chainrule.sweep.trial import train_in_folder
from chainrule.train import TrainingDiverged


def history(folder):
    with open(folder / "history.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def members(base, rows):
    return [dataclasses.replace(base, **row) for row in rows]


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "rmsprop", "adamw"])
def test_each_member_matches_its_run_alone(tmp_path, optimizer):
    base = RunConfig(dataset="spiral", hidden=[32], epochs=12, batch_size=64,
                     optimizer=optimizer, lr_schedule="cosine", warmup=2)
    configs = members(base, [
        {"lr": 1e-2, "reg": 1e-3, "seed": 0},
        {"lr": 3e-3, "weight_decay": 1e-2, "seed": 1},
        {"lr": 2e-2, "reg": 1e-4, "weight_decay": 1e-3, "seed": 2, "patience": 2},
    ])
    trials = [{"index": i, "config": c.to_dict(), "dir": str(tmp_path / f"pop{i}")}
              for i, c in enumerate(configs)]
    outcomes = run_population(trials)
    assert [o["status"] for o in outcomes] == ["ok"] * 3
    for config, trial, outcome in zip(configs, trials, outcomes):
        alone = train_in_folder(config, tmp_path / f"alone{trial['index']}")
        together = json.loads((tmp_path / f"pop{trial['index']}" / "summary.json").read_text())
        assert together["epochs"] == alone["epochs"]  # early stopping at the same epoch
        assert together["best_epoch"] == alone["best_epoch"]
        rows_p = history(tmp_path / f"pop{trial['index']}")
        rows_a = history(tmp_path / f"alone{trial['index']}")
        for key in ("train_loss", "val_loss", "lr"):
            np.testing.assert_allclose([r[key] for r in rows_p], [r[key] for r in rows_a],
                                       rtol=2e-4, atol=1e-5, err_msg=key)
        for key in ("train_accuracy", "val_accuracy"):  # a point may flip on a tie
            np.testing.assert_allclose([r[key] for r in rows_p], [r[key] for r in rows_a],
                                       atol=2 / 300, err_msg=key)
        assert abs(outcome["val_accuracy"] - alone["val_accuracy"]) <= 2 / 300
        # the member's folder is an ordinary run: `chainrule evaluate` reads it
        again = evaluate_run(tmp_path / f"pop{trial['index']}")
        assert again["val"]["accuracy"] == pytest.approx(outcome["val_accuracy"])


def test_a_diverging_member_is_recorded_and_the_others_are_untouched(tmp_path):
    base = RunConfig(dataset="spiral", hidden=[16], epochs=5, optimizer="sgd")
    configs = members(base, [{"lr": 1e-1, "seed": 0}, {"lr": 1e6, "seed": 1}])
    results = PopulationTrainer(configs).fit()
    assert results[1]["status"] == "diverged" and "epoch 1" in results[1]["error"]
    with pytest.raises(TrainingDiverged):
        train_in_folder(configs[1], tmp_path / "alone1")
    alone = train_in_folder(configs[0], tmp_path / "alone0")
    assert results[0]["status"] == "ok"
    assert results[0]["summary"]["final_loss"] == pytest.approx(alone["final_loss"], rel=1e-4)


def test_what_can_share_a_population():
    base = RunConfig(dataset="spiral")
    key = population_key(base)
    for member_option in ({"lr": 0.5}, {"reg": 1.0}, {"seed": 3}, {"weight_decay": 0.1},
                          {"patience": 4}):
        assert population_key(dataclasses.replace(base, **member_option)) == key
    assert population_key(dataclasses.replace(base, hidden=[50])) != key
    assert population_key(dataclasses.replace(base, dropout=0.2)) is None
    assert population_key(dataclasses.replace(base, lr_schedule="plateau")) is None


@pytest.mark.parametrize("options", [
    {"activation": "relu", "loss": "svm", "hidden": [16, 8]},
    {"activation": "tanh", "optimizer": "momentum"},
    {"activation": "sigmoid", "optimizer": "rmsprop", "lr_schedule": "cosine"},
    {"activation": "leaky_relu", "optimizer": "adamw"},
    {"activation": None, "hidden": [12]},
])
def test_the_fused_step_gives_the_engines_numbers(options):
    base = dataclasses.replace(RunConfig(dataset="spiral", hidden=[16], epochs=6,
                                         batch_size=50), **options)
    configs = members(base, [{"lr": 2e-2, "reg": 1e-3, "seed": 0},
                             {"lr": 5e-3, "weight_decay": 1e-2, "seed": 1, "patience": 2},
                             {"lr": 1e-2, "seed": 2}])
    fused = PopulationTrainer(configs)
    assert fused.fused is not None
    engine = PopulationTrainer(configs, fused=False)
    for a, b in zip(fused.fit(), engine.fit()):
        assert a["status"] == b["status"] == "ok"
        assert [r["epoch"] for r in a["history"]] == [r["epoch"] for r in b["history"]]
        for key in ("train_loss", "val_loss", "lr"):
            np.testing.assert_allclose([r[key] for r in a["history"]],
                                       [r[key] for r in b["history"]], rtol=1e-4, atol=1e-6,
                                       err_msg=key)
        for key in ("train_accuracy", "val_accuracy"):
            np.testing.assert_allclose([r[key] for r in a["history"]],
                                       [r[key] for r in b["history"]], atol=2 / 300)
    np.testing.assert_allclose(fused.model.flat, engine.model.flat, rtol=1e-3, atol=1e-5)


def test_activations_without_a_fused_step_run_through_the_engine():
    configs = members(RunConfig(dataset="spiral", hidden=[8], epochs=2, activation="gelu"),
                      [{"lr": 1e-2, "seed": 0}, {"lr": 1e-3, "seed": 1}])
    trainer = PopulationTrainer(configs)
    assert trainer.fused is None
    assert [r["status"] for r in trainer.fit()] == ["ok", "ok"]


def test_members_draw_their_data_order_as_the_trainers_data_loader_does():
    from chainrule.data import DataLoader
    from chainrule.sweep.population import member_orders

    orders = member_orders([0, 7], 50)
    loaders = [DataLoader(np.arange(50), batch_size=50, seed=s) for s in (0, 7)]
    for _ in range(3):  # epoch after epoch
        expected = np.stack([next(iter(loader)) for loader in loaders])
        assert np.array_equal(next(orders), expected)
