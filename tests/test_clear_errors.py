"""Inputs that once gave raw tracebacks or misleading messages: now one clear error each."""

import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import cli, nn
from chainrule._io import atomic_write_text
from chainrule.errors import ChainruleError, CheckpointError, DTypeError
from chainrule.viz import MAX_DRAWN_NODES, draw_graph
from chainrule.viz.graph import collect_graph
from chainrule.viz.svg import layered_layout


def test_saving_a_list_that_contains_itself(tmp_path):
    loop = [1, 2]
    loop.append(loop)
    with pytest.raises(CheckpointError, match=r"obj\['a'\]\[2\] contains itself"):
        cr.save({"a": loop}, tmp_path / "c.crk")
    mapping = {}
    mapping["self"] = mapping
    with pytest.raises(CheckpointError, match="contains itself"):
        cr.save(mapping, tmp_path / "c.crk")
    assert not (tmp_path / "c.crk").exists()


def test_saving_huge_integers_and_deep_nesting(tmp_path):
    with pytest.raises(CheckpointError, match="integer of 16610 bits"):
        cr.save({"n": 10**5000}, tmp_path / "c.crk")
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(CheckpointError, match="nested too deeply"):
        cr.save(deep, tmp_path / "c.crk")
    big = 2**4000  # large, but within what JSON and the checkpoint carry
    cr.save({"n": big}, tmp_path / "c.crk")
    assert cr.load(tmp_path / "c.crk") == {"n": big}


def test_load_state_dict_of_strings_is_refused():
    model = nn.MLP(2, [3], 2, seed=0)
    state = {k: np.full(v.shape, "1.0") for k, v in model.state_dict().items()}
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(DTypeError, match="parameters take numbers"):
        model.load_state_dict(state)
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, old)  # nothing half-loaded


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
def test_a_failed_write_names_the_users_file_not_a_temporary_one():
    target = "/proc/chainrule-summary.json"  # no file can be created in /proc
    with pytest.raises(OSError) as info:
        atomic_write_text(target, "{}")
    assert info.value.filename == target


def test_explain_of_a_formula_without_variables(capsys):
    assert cli.main(["explain", "2 * 3"]) == 2
    err = capsys.readouterr().err
    assert "no variable" in err and "requires_grad" not in err


def x_plus_x(n):
    x = cr.tensor(1.0, requires_grad=True, name="x")
    y = x
    for _ in range(n - 1):
        y = y + x
    return y


def test_layout_of_a_long_fan_in_stays_linear_in_size():
    for n in (50, 400):
        graph = collect_graph(x_plus_x(n))
        sizes = {node.id: (30.0, 30.0, 0.0) for node in graph.nodes}
        edges = [(e.src, e.dst) for e in graph.edges]
        boxes, *_ = layered_layout(sizes, edges, [(10.0, 10.0)] * len(edges))
        assert len(boxes) < 12 * n  # a point per column per edge would be ~n^2


def test_a_graph_too_large_to_draw_points_to_explain():
    with pytest.raises(ChainruleError, match="too many to draw.*explain"):
        draw_graph(x_plus_x(MAX_DRAWN_NODES + 1))
