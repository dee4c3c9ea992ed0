"""The backprop player in headless Chromium: stepping, numbers, checks, offline."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import engine, nn
from chainrule.viz.graph import format_value
from chainrule.viz.player import write_expression_player

pytestmark = pytest.mark.slow


def _open(page, path):
    page.goto(path.as_uri())
    page.wait_for_selector("[data-testid=player-graph] g")


def _arithmetic(row):
    """The lines the player must show for an explain row."""
    up = format_value(row["upstream"])
    return [f"d/d{name}: upstream {up} \u00d7 local {format_value(local)} = downstream "
            f"{format_value(down)}"
            for name, local, down in zip(row["inputs"], row["local_grad"], row["downstream"])
            if local is not None and down is not None]


def test_lecture_example_steps_to_the_end_with_explains_numbers(page, tmp_path, screenshot):
    path = tmp_path / "gates.html"
    write_expression_player("(x + y) * z", {"x": -2, "y": 5, "z": -4}, path)
    _open(page, path)
    x, y, z = (cr.tensor(np.float64(v), requires_grad=True, name=n)
               for n, v in (("x", -2), ("y", 5), ("z", -4)))
    table = cr.explain((x + y) * z)
    steps = 5 + len(table.rows)  # five forward steps (x, y, x + y, z, out), then backward
    assert page.get_by_test_id("player-step").inner_text() == f"step 0 of {steps}"

    page.get_by_test_id("player-next").click()
    page.get_by_test_id("player-next").click()
    page.get_by_test_id("player-next").click()
    assert page.get_by_test_id("player-phase").inner_text() == "forward"
    assert page.get_by_test_id("player-forward-line").inner_text() == "forward: t1 = x + y = 3"
    screenshot(page, "player-forward")

    page.get_by_test_id("player-next").click()
    page.get_by_test_id("player-next").click()
    for row in table.rows:  # backward, node by node, as explain lists them
        page.keyboard.press("ArrowRight")
        current = page.get_by_test_id("player-current")
        assert row["node"] in current.inner_text()
        for i, line in enumerate(_arithmetic(row)):
            assert page.get_by_test_id(f"player-arithmetic-{i}").inner_text() == line
        if row["pattern"]:
            assert page.get_by_test_id("player-pattern").inner_text() == (
                f"gate pattern: {row['pattern']}")
        if row["name"] == "t1":
            screenshot(page, "player-backward-add")
    assert page.get_by_test_id("player-phase").inner_text() == "backward (done)"
    shown = [[td.inner_text() for td in page.get_by_test_id(f"player-row-{i}")
              .locator("td").all()] for i in range(len(table.rows))]
    assert shown == table.table()[1:]
    assert "swapper" in shown[0] and "distributor" in shown[1]
    screenshot(page, "player-end")

    page.keyboard.press("ArrowLeft")
    assert page.get_by_test_id("player-step").inner_text() == f"step {steps - 1} of {steps}"
    page.get_by_test_id("player-start").click()
    assert page.get_by_test_id("player-step").inner_text() == f"step 0 of {steps}"
    page.get_by_test_id("player-end").click()
    assert page.get_by_test_id("player-step").inner_text() == f"step {steps} of {steps}"
    assert page.requests == [path.as_uri()]  # nothing but the file itself
    assert page.errors == []


def test_play_runs_to_the_end_and_pauses(page, tmp_path):
    path = tmp_path / "p.html"
    write_expression_player("x * y", {"x": 3, "y": 2}, path)
    _open(page, path)
    page.get_by_test_id("player-play").click()
    from playwright.sync_api import expect

    expect(page.get_by_test_id("player-phase")).to_contain_text("done", timeout=15000)
    assert page.get_by_test_id("player-play").inner_text().endswith("play")


def test_zero_gradients_are_explained_and_the_check_colours_nodes(page, tmp_path, screenshot):
    path = tmp_path / "zero.html"
    write_expression_player("max(x, y) * sigmoid(w) + relu(x * z)",
                            {"x": -2, "y": 5, "z": 3, "w": 0.5}, path)
    _open(page, path)
    page.get_by_test_id("player-end").click()
    page.get_by_test_id("node-z").click()
    why = page.get_by_test_id("player-why-zero").inner_text()
    assert "the ReLU t5 was off" in why and "t4 = -6" in why
    page.get_by_test_id("node-x").click()
    assert "maximum t1 routed the gradient to its other input" in (
        page.get_by_test_id("player-why-zero").inner_text())
    page.get_by_test_id("player-check-toggle").check()
    assert page.get_by_test_id("player-check-legend").is_visible()
    classes = [page.get_by_test_id(f"node-{n}").get_attribute("class")
               for n in ("x", "y", "z", "w", "t1", "t2", "out")]
    assert all("check-agree" in c for c in classes), classes
    assert "agree" in page.get_by_test_id("player-node-check").inner_text()
    screenshot(page, "player-why-zero-and-check")


class WrongSquareRule(engine.Function):
    """x * x with a backward that forgets the 2: the check must catch it."""

    name = "wrong_square_in_player"
    symbol = "sq"

    @staticmethod
    def forward(ctx, x):
        return x * x

    @staticmethod
    def backward(ctx, upstream):
        return upstream * ctx.inputs[0]


def test_the_check_finds_a_wrong_backward_rule(page, tmp_path, screenshot):
    x = cr.tensor(np.array([1.5, -0.5]), requires_grad=True, name="x")

    def build():
        return (WrongSquareRule.apply(x) * 3.0).sum()

    cr.viz.player(build(), tmp_path / "wrong.html", recompute=build)
    _open(page, tmp_path / "wrong.html")
    page.get_by_test_id("player-check-toggle").check()
    assert "check-wrong" in page.get_by_test_id("node-x").get_attribute("class")
    assert "check-agree" in page.get_by_test_id("node-t2").get_attribute("class")
    screenshot(page, "player-check-wrong")


def test_a_models_loss_with_linear_layers_collapsed(page, tmp_path, screenshot):
    X, y = cr.data.toys.spiral(4, 3, seed=0)
    model = nn.MLP(2, [8], 3, seed=0)
    Xt = cr.tensor(X, name="X")

    def loss_fn():
        return F.cross_entropy(model(Xt), y)

    cr.viz.player(loss_fn(), tmp_path / "mlp.html", recompute=loss_fn, model=model)
    _open(page, tmp_path / "mlp.html")
    assert page.get_by_test_id("player-collapse-toggle").is_checked()
    weight = page.get_by_test_id("node-0.weight")
    assert not weight.is_visible()
    assert page.get_by_test_id("node-t1").locator("text.label").text_content() == "Linear 2\u21928"
    page.get_by_test_id("node-t1").click()  # expand this layer
    assert weight.is_visible()
    assert "0.weight (8, 2)" in page.get_by_test_id("player-node-info").inner_text()
    page.get_by_test_id("player-end").click()
    page.get_by_test_id("player-check-toggle").check()
    for name in ("0.weight", "0.bias", "2.weight", "t2"):
        cls = page.get_by_test_id(f"node-{name}").get_attribute("class")
        assert "check-agree" in cls or "check-kinks" in cls, (name, cls)
    screenshot(page, "player-mlp")
    assert page.errors == []


def test_recorded_training_steps_scrub_with_a_slider(page, tmp_path, screenshot):
    from chainrule.cli import main

    out = tmp_path / "run"
    assert main(["train", "--dataset", "spiral", "--hidden", "8", "--epochs", "3",
                 "--record", "12", "--out", str(out), "--quiet"]) == 0
    _open(page, out / "player.html")
    slider = page.get_by_test_id("record-slider")
    assert slider.get_attribute("max") == "11"
    assert page.get_by_test_id("record-step").inner_text() == "step 1 (epoch 1)"
    first = page.get_by_test_id("record-loss").inner_text()
    slider.fill("11")
    assert page.get_by_test_id("record-step").inner_text() == "step 12 (epoch 3)"
    assert page.get_by_test_id("record-loss").inner_text() != first
    assert page.get_by_test_id("record-regions").is_visible()
    assert page.get_by_test_id("record-W-1").is_visible()
    assert page.get_by_test_id("record-gW-0").is_visible()
    screenshot(page, "player-recorded-steps")
    assert page.errors == []
