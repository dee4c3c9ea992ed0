"""Search spaces: parsing, drawing trials, grid points, border warnings, bad spaces."""

import math

import pytest

from chainrule import cli
from chainrule.sweep import Choice, Range, SearchSpace, SpaceError, parse_space, plan_trials


def test_parse_ranges_lists_and_values():
    assert parse_space("lr", "1e-4:1e-1:log") == Range(1e-4, 1e-1, log=True, integer=False)
    assert parse_space("dropout", "0:0.5") == Range(0.0, 0.5, log=False, integer=False)
    assert parse_space("batch_size", "16:256:log").integer
    assert parse_space("activation", "relu,tanh") == Choice(("relu", "tanh"))
    assert parse_space("hidden", "50,100x50,none") == Choice(((50,), (100, 50), ()))
    assert parse_space("hidden", "100x50") == [100, 50]
    assert parse_space("lr", "0.01") == 0.01
    assert parse_space("epochs", "20") == 20


@pytest.mark.parametrize("option, text, says", [
    ("lr", "1e-1:1e-4:log", "reversed"),
    ("lr", "0:1:log", "positive ends"),
    ("lr", "", "empty"),
    ("activation", "relu,,tanh", "empty entry"),
    ("lr", "fast", "not a number"),
    ("epochs", "2.5", "not an integer"),
    ("activation", "a:b", "not a range"),
    ("lr", "1:2:3", "not a range"),
    ("hidden", "100xbig", "layer sizes"),
    ("colour", "red", "unknown option"),
])
def test_bad_spaces_say_what_is_wrong(option, text, says):
    with pytest.raises(SpaceError, match=says):
        parse_space(option, text)


def test_random_trials_depend_on_the_seed_alone_and_stay_in_range():
    space = SearchSpace.from_options({"lr": "1e-4:1e-1:log", "reg": "1e-6:1e-2:log",
                                      "hidden": "50,100,200", "epochs": 5})
    first = space.random(30, seed=3)
    assert first == space.random(30, seed=3)
    assert first[:10] == space.random(10, seed=3)  # more trials extend, never reshuffle
    assert first != space.random(30, seed=4)
    assert all(1e-4 <= t["lr"] <= 1e-1 and 1e-6 <= t["reg"] <= 1e-2 for t in first)
    assert {t["hidden"] for t in first} == {(50,), (100,), (200,)}
    # log-uniform: about as many draws in each decade
    decades = [math.floor(math.log10(t["lr"])) for t in space.random(600, seed=0)]
    counts = [decades.count(d) for d in (-4, -3, -2)]
    assert min(counts) > 150, counts
    assert space.config(first[0]).epochs == 5 and space.config(first[0]).hidden in (
        [50], [100], [200])


def test_grid_walks_every_combination():
    space = SearchSpace.from_options({"lr": "1e-3:1e-1:log", "activation": "relu,tanh"})
    grid = space.grid(points=3)
    assert len(grid) == 6
    assert sorted({round(t["lr"], 12) for t in grid}) == [1e-3, 1e-2, 1e-1]
    assert len(plan_trials(space, 4, "grid", 0, 3)) == 4


def test_border_warning_names_the_option_and_side():
    space = SearchSpace.from_options({"lr": "1e-4:1e-1:log", "reg": "1e-6:1e-2:log"})
    warnings = space.border_warnings({"lr": 0.09, "reg": 1e-4})
    assert len(warnings) == 1 and "--lr" in warnings[0] and "upper" in warnings[0]
    assert space.border_warnings({"lr": 1e-2, "reg": 1e-4}) == []


def test_invalid_trial_values_are_refused_before_anything_runs():
    space = SearchSpace.from_options({"dropout": "0:1.5"})
    with pytest.raises(Exception, match="dropout"):
        plan_trials(space, 5, "random", 0, 3)


@pytest.mark.parametrize("argv, says", [
    (["--lr", "1e-1:1e-4:log"], "reversed"),
    (["--reg", "0:1:log"], "positive ends"),
    (["--activation", ""], "empty"),
    (["--hidden", "50,,100"], "empty entry"),
    (["--colour", "red"], "unrecognized"),
    (["--trials", "0"], "positive"),
    (["--dataset", "spiral", "--hidden", "50,100", "20"], "one list"),
    (["--checkpoint-every", "-1"], "seconds >= 0"),
    (["--checkpoint-every", "often"], "seconds >= 0"),
])
def test_cli_bad_spaces_are_one_line_and_exit_2(capsys, tmp_path, argv, says):
    code = cli.main(["sweep", "--out", str(tmp_path / "s"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s" / "trials").exists()
