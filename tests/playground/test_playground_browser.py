"""The playground in headless Chromium: it trains, uploads, exports and keeps its state."""

from __future__ import annotations

import csv
import json
import re
import shlex
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from chainrule.cli import main

pytestmark = pytest.mark.slow


def _open(page, server, hash_=""):
    from playwright.sync_api import expect

    page.goto(server.url + hash_)
    expect(page.get_by_test_id("status")).to_have_text("paused", timeout=20000)


def _train_to_end(page, timeout=60000):
    from playwright.sync_api import expect

    page.get_by_test_id("speed").select_option("0")
    page.get_by_test_id("play").click()
    expect(page.get_by_test_id("status")).to_contain_text("finished", timeout=timeout)


def _value(page, testid) -> float:
    return float(page.get_by_test_id(testid).get_attribute("data-value"))


def test_circle_trains_to_high_test_accuracy(page, start_playground, screenshot):
    server = start_playground()
    _open(page, server, "#epochs=60")
    assert page.get_by_test_id("epoch").inner_text() == "000"
    _train_to_end(page)
    assert page.get_by_test_id("epoch").inner_text() == "060"
    assert _value(page, "test-accuracy") >= 0.97
    cells = [[int(page.get_by_test_id(f"confusion-{i}-{j}").inner_text()) for j in (0, 1)]
             for i in (0, 1)]
    assert sum(map(sum, cells)) == 300 and cells[0][0] + cells[1][1] >= 291
    page.get_by_test_id("show-test").check()
    screenshot(page, "playground-circle-trained")
    assert all(u.startswith(server.url) for u in page.requests)  # no other host, ever


def test_spiral_trains_live_and_shows_its_gradients(page, start_playground, screenshot):
    from playwright.sync_api import expect

    server = start_playground()
    _open(page, server, "#dataset=spiral&noise=0.2&classes=3&hidden=8,8"
                        "&activations=relu,relu&lr=0.01&epochs=300")
    page.get_by_test_id("play").click()  # at 20 epochs a second, the page follows along
    seen = set()
    deadline = time.monotonic() + 30
    while len(seen) < 10 or max(seen) < 40:
        assert time.monotonic() < deadline, f"frames seen: {sorted(seen)}"
        seen.add(int(page.get_by_test_id("epoch").inner_text()))
        page.wait_for_timeout(50)
    page.get_by_test_id("play").click()
    expect(page.get_by_test_id("status")).to_have_text("paused")
    epoch = int(page.get_by_test_id("epoch").inner_text())
    page.get_by_test_id("step").click()
    expect(page.get_by_test_id("epoch")).to_have_text(f"{epoch + 1:03d}")
    assert page.get_by_test_id("layer-0-size").inner_text() == "8 neurons"
    link = page.get_by_test_id("link-1-3-5")  # layer 2's weight from unit 6 to unit 4
    numbers = [float(v) for v in re.findall(r"-?[0-9.]+", link.get_attribute("d"))]
    net = page.get_by_test_id("network").bounding_box()
    start = (net["x"] + numbers[0], net["y"] + numbers[1])
    end = (net["x"] + numbers[-2], net["y"] + numbers[-1])
    source = page.get_by_test_id("neuron-0-5").bounding_box()
    target = page.get_by_test_id("neuron-1-3").bounding_box()
    assert start == pytest.approx((source["x"] + source["width"],  # it leaves unit 6...
                                   source["y"] + source["height"] / 2), abs=1)
    assert end == pytest.approx((target["x"], target["y"] + target["height"] / 2), abs=1)
    width_by_weight = float(link.get_attribute("stroke-width"))
    page.get_by_test_id("backprop-view").check()
    grads = np.array([float(page.get_by_test_id(f"link-1-3-{j}").get_attribute("data-grad"))
                      for j in range(8)])
    assert np.all(np.isfinite(grads)) and np.any(grads != 0)
    width_by_grad = float(page.get_by_test_id("link-1-3-5").get_attribute("stroke-width"))
    assert width_by_grad != width_by_weight
    assert _value(page, "test-accuracy") > 0.6
    screenshot(page, "playground-spiral-backprop-view")


def test_a_neuron_opens_in_the_player_with_live_numbers(page, start_playground, screenshot):
    server = start_playground()
    _open(page, server)
    page.get_by_test_id("backprop-view").check()  # small network: the gradients as numbers
    grad = float(page.get_by_test_id("link-1-0-3").get_attribute("data-grad"))
    assert float(page.get_by_test_id("link-grad-1-0-3").text_content()) == pytest.approx(
        grad, rel=0.05)
    with page.expect_popup() as popup_info:
        page.get_by_test_id("neuron-0-2").click()
    player = popup_info.value
    player.wait_for_selector("[data-testid=player-graph] g")
    assert player.get_by_test_id("player-title").inner_text().startswith(
        "layer 1, neuron 3: Tanh of w.x + b")
    player.get_by_test_id("player-end").click()
    weight = float(page.get_by_test_id("link-0-2-0").get_attribute("data-weight"))
    rows = {r.locator("td").first.inner_text(): r.locator("td").nth(2).inner_text()
            for r in player.locator("[data-testid^=player-row-]").all()}
    assert float(rows["w1"]) == pytest.approx(weight, rel=1e-2)
    screenshot(player, "playground-neuron-player")


def test_an_uploaded_csv_trains_and_a_bad_one_is_named(page, start_playground, tmp_path,
                                                       screenshot, capsys):
    from playwright.sync_api import expect

    server = start_playground()
    _open(page, server)
    bad = tmp_path / "bad.csv"
    bad.write_text("x1,x2,label\n0.5,0.5,0\n0.1,oops,1\n")
    page.get_by_test_id("upload-input").set_input_files(str(bad))
    expect(page.get_by_test_id("error")).to_have_text(
        "line 3: '0.1' or 'oops' is not a number")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int) + (np.hypot(X[:, 0], X[:, 1]) > 1.6)
    good = tmp_path / "good.csv"
    good.write_text("x1,x2,label\n" + "".join(f"{a:.4f},{b:.4f},{c}\n"
                                              for (a, b), c in zip(X, y)))
    page.get_by_test_id("upload-input").set_input_files(str(good))
    expect(page.get_by_test_id("upload-status")).to_have_text("uploaded 240 rows, 3 classes")
    expect(page.get_by_test_id("dataset-upload")).to_have_class("on")
    expect(page.get_by_test_id("confusion-2-2")).to_be_visible()
    page.get_by_test_id("epochs").fill("40")
    page.get_by_test_id("epochs").dispatch_event("change")
    _train_to_end(page)
    majority = np.bincount(y).max() / len(y)  # what always guessing one class gets
    assert _value(page, "train-accuracy") > majority + 0.2
    screenshot(page, "playground-upload")
    _reproduce(page, server, tmp_path / "from-upload", capsys, regression=False)  # its CSV


def _download(server, page, testid, path):
    with urllib.request.urlopen(server.url.rstrip("/") + page.get_by_test_id(testid)
                                .get_attribute("href")) as r:
        path.write_bytes(r.read())


def _reproduce(page, server, folder, capsys, regression):
    """Run the page's exported command (with its data file, when it shows one) in
    ``folder`` and evaluate the exported checkpoint there: both give the page's numbers."""
    import os

    folder.mkdir()
    assert "reproduces" in page.get_by_test_id("command-note").inner_text()
    command = shlex.split(page.get_by_test_id("command").inner_text())
    if page.get_by_test_id("export-data").is_visible():
        assert command[command.index("--data") + 1] == "playground-data.csv"
        _download(server, page, "export-data", folder / "playground-data.csv")
    _download(server, page, "export-checkpoint", folder / "playground.crk")
    here = os.getcwd()
    os.chdir(folder)
    try:
        assert main(command[1:]) == 0
        with open(Path(command[command.index("--out") + 1]) / "history.csv") as f:
            last = list(csv.DictReader(f))[-1]
        assert int(last["epoch"]) == int(page.get_by_test_id("epoch").inner_text())
        assert float(last["val_loss"]) == _value(page, "test-loss")
        assert float(last["train_loss"]) == _value(page, "train-loss")
        if not regression:
            assert float(last["val_accuracy"]) == _value(page, "test-accuracy")
        capsys.readouterr()
        assert main(["evaluate", "--checkpoint", "playground.crk"]) == 0
        evaluated = json.loads(capsys.readouterr().out)["val"]  # the page's test points
        assert evaluated["loss"] == pytest.approx(_value(page, "test-loss"), rel=1e-6)
        if not regression:
            assert evaluated["accuracy"] == _value(page, "test-accuracy")
    finally:
        os.chdir(here)


def test_the_exported_command_and_checkpoint_reproduce_every_setting(page, start_playground,
                                                                     tmp_path, capsys,
                                                                     screenshot):
    server = start_playground()
    runs = {  # data sets chainrule train has by name, and ones it reads from the CSV
        "xor-rmsprop-l2": "#dataset=xor&noise=0.1&hidden=6&activations=relu"
                          "&optimizer=rmsprop&lr=0.01&regularization=L2&reg_rate=0.001"
                          "&epochs=15&batch_size=16",
        "gaussians-features-l1-layers-dropout": (
            "#dataset=gaussians&classes=3&noise=0.2&train_ratio=60"
            "&features=x1,x2,x1%5E2,x1*x2,sin(x2)&hidden=5,4&activations=leaky_relu,silu"
            "&regularization=L1&reg_rate=0.003&dropout=0.1&optimizer=momentum&lr=0.03"
            "&lr_schedule=cosine&epochs=12&batch_size=5"),
        "regression-multi-gaussian": "#problem=regression&dataset=multi-gaussian"  # mse
                                     "&noise=0.05&hidden=8,6&activations=tanh,tanh"
                                     "&features=x1,x2,sin(x1),sin(x2)&lr=0.01&epochs=25",
    }
    for name, hash_ in runs.items():
        page.goto("about:blank")  # a new hash alone would not reload the page
        _open(page, server, hash_)
        _train_to_end(page)
        if name.startswith("regression"):
            assert _value(page, "test-loss") < 0.1  # squared error of targets in [-1, 1]
            page.get_by_test_id("show-test").check()
            screenshot(page, "playground-regression")
        _reproduce(page, server, tmp_path / name, capsys, regression=name.startswith("regression"))
    href = page.get_by_test_id("export-config").get_attribute("href")
    with urllib.request.urlopen(server.url.rstrip("/") + href) as r:
        exported = json.load(r)
    assert exported["run_config"]["loss"] == "mse" and exported["reproduces"]
    assert exported["run_config"]["data"] == "playground-data.csv"


def test_the_url_holds_the_state_and_weights_can_be_edited(page, start_playground,
                                                           screenshot):
    from playwright.sync_api import expect

    server = start_playground()
    _open(page, server, "#dataset=gaussians&classes=4&hidden=3&activations=elu&seed=7")
    expect(page.get_by_test_id("dataset-gaussians")).to_have_class("on")
    assert page.get_by_test_id("classes").input_value() == "4"
    assert page.get_by_test_id("layer-0-activation").input_value() == "elu"
    page.get_by_test_id("add-layer").click()
    expect(page.get_by_test_id("layer-count")).to_have_text("2 hidden layers")
    assert "hidden=3%2C4" in page.url and "seed=7" in page.url
    page.get_by_test_id("layer-1-activation").select_option("gelu")
    expect(page.get_by_test_id("status")).to_have_text("paused")
    assert "activations=elu%2Cgelu" in page.url
    page.get_by_test_id("link-0-1-0").click(force=True)
    page.get_by_test_id("weight-value").fill("2.5")
    page.get_by_test_id("weight-apply").click()
    expect(page.get_by_test_id("link-0-1-0")).to_have_attribute("data-weight", "2.5")
    expect(page.get_by_test_id("command-note")).to_contain_text("weights edited by hand")
    page.get_by_test_id("show-test").check()
    page.get_by_test_id("backprop-view").check()
    screenshot(page, "playground-gaussians-edited")
    reloaded = page.context.new_page()
    reloaded.goto(page.url)  # the same state from the link alone, and the same view
    expect(reloaded.get_by_test_id("layer-count")).to_have_text("2 hidden layers")
    assert reloaded.get_by_test_id("layer-1-activation").input_value() == "gelu"
    expect(reloaded.get_by_test_id("show-test")).to_be_checked()
    expect(reloaded.get_by_test_id("backprop-view")).to_be_checked()
    expect(reloaded.get_by_test_id("discretize")).not_to_be_checked()


def test_every_control_has_a_test_id(page, start_playground):
    server = start_playground()
    _open(page, server)
    controls = page.locator("button, input, select, a, canvas").all()
    assert len(controls) > 40
    missing = [c.evaluate("e => e.outerHTML.slice(0, 80)") for c in controls
               if not c.get_attribute("data-testid")]
    assert missing == []


def test_settings_change_while_it_trains_and_the_architecture_resets(page, start_playground,
                                                                     screenshot):
    from playwright.sync_api import expect

    server = start_playground()
    _open(page, server, "#epochs=3000")
    page.get_by_test_id("play").click()

    def epoch():
        return int(page.get_by_test_id("epoch").inner_text())

    expect(page.get_by_test_id("epoch")).not_to_have_text("000")
    deadline = time.monotonic() + 20
    while epoch() < 5:
        assert time.monotonic() < deadline, "no training seen"
        page.wait_for_timeout(50)
    live = page.get_by_test_id("live-settings")
    expect(live).to_have_text("learning rate 0.03 (Adam), batch size 10, no regularization")
    before = epoch()
    page.get_by_test_id("lr").select_option("0.3")
    expect(live).to_contain_text("learning rate 0.3 (Adam)")
    page.get_by_test_id("regularization").select_option("L2")
    page.get_by_test_id("reg-rate").select_option("0.01")
    page.get_by_test_id("batch-size").select_option("32")
    page.get_by_test_id("optimizer").select_option("sgd")
    expect(live).to_have_text("learning rate 0.3 (SGD), batch size 32, L2 0.01")
    page.get_by_test_id("lr-schedule").select_option("exponential")
    expect(live).to_contain_text("(SGD, ExponentialLR)")
    assert epoch() > before  # the same run went on: no restart
    expect(page.get_by_test_id("command-note")).to_contain_text("learning rate 0.3")
    assert "lr=0.3" in page.url and "batch_size=32" in page.url
    screenshot(page, "playground-changed-live")
    page.get_by_test_id("play").click()  # pause; a new layer size is a new network
    expect(page.get_by_test_id("status")).to_have_text("paused")
    page.get_by_test_id("layer-0-add").click()
    expect(page.get_by_test_id("layer-0-size")).to_have_text("5 neurons")
    expect(page.get_by_test_id("epoch")).to_have_text("000")
    expect(live).to_contain_text("batch size 32, L2 0.01")  # kept, and now from the start
    expect(page.get_by_test_id("command-note")).to_contain_text("reproduces")
    page.get_by_test_id("step").click()
    expect(page.get_by_test_id("epoch")).to_have_text("001")
    page.get_by_test_id("noise").fill("0.2")  # new data: a new run too
    page.get_by_test_id("noise").dispatch_event("change")
    expect(page.get_by_test_id("epoch")).to_have_text("000")
