"""explain(): the backward pass node by node, in the lecture's words."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd.functional import jacobian
from chainrule.viz import Explanation, explain


def lecture_graph():
    x = cr.tensor(-2.0, requires_grad=True, name="x")
    y = cr.tensor(5.0, requires_grad=True, name="y")
    z = cr.tensor(-4.0, requires_grad=True, name="z")
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"
    return f, (x, y, z)


def test_lecture_example_rows():
    f, _ = lecture_graph()
    ex = explain(f)
    assert isinstance(ex, Explanation)
    row_f, row_q = ex["f"], ex["q"]
    assert row_f["node"] == "f = q * z" and row_f["op"] == "multiply"
    assert row_f["value"] == -12 and row_f["upstream"] == 1
    assert row_f["local_grad"] == [-4, 3]  # df/dq = z, df/dz = q: the swapper
    assert row_f["downstream"] == [-4, 3]
    assert row_f["pattern"] == "swapper"
    assert row_q["node"] == "q = x + y" and row_q["value"] == 3
    assert row_q["upstream"] == -4 and row_q["local_grad"] == [1, 1]
    assert row_q["downstream"] == [-4, -4] and row_q["pattern"] == "distributor"
    assert [ex[n]["upstream"] for n in "xyz"] == [-4, -4, 3]
    assert ex["x"]["op"] == "leaf" and ex["x"]["downstream"] == []


def test_rows_come_in_backward_order():
    f, _ = lecture_graph()
    names = [row["name"] for row in explain(f)]
    assert names[0] == "f"
    assert names.index("q") < names.index("x") and names.index("q") < names.index("y")
    assert sorted(names) == ["f", "q", "x", "y", "z"]


def test_explain_touches_no_grad_and_keeps_the_graph():
    f, (x, y, z) = lecture_graph()
    explain(f)
    explain(f)
    assert x.grad is None and z.grad is None
    f.backward()
    assert (float(x.grad), float(y.grad), float(z.grad)) == (-4.0, -4.0, 3.0)


def test_sigmoid_neuron_from_the_notes():
    w = [cr.tensor(v, dtype=cr.float64, requires_grad=True, name=f"w{i}")
         for i, v in enumerate([2.0, -3.0, -3.0])]
    x = [cr.tensor(v, dtype=cr.float64, requires_grad=True, name=f"x{i}")
         for i, v in enumerate([-1.0, -2.0])]
    dot = w[0] * x[0] + w[1] * x[1] + w[2]
    f = 1 / (1 + cr.exp(-dot))
    ex = explain(f)
    s = 1 / (1 + math.exp(-(2 * -1 + -3 * -2 - 3)))
    local = s * (1 - s)  # the sigmoid's local gradient, as in the notes
    assert ex.rows[0]["value"] == pytest.approx(s)
    expected = {"w0": local * -1, "w1": local * -2, "w2": local, "x0": local * 2,
                "x1": local * -3}
    for name, value in expected.items():
        assert ex[name]["upstream"] == pytest.approx(value)
    gates = [row for row in ex if row["op"] == "multiply"]
    assert all(row["pattern"] == "swapper" for row in gates)
    # as one sigmoid gate: its local gradient is s(1 - s)
    row = explain(cr.sigmoid(dot)).rows[0]
    assert row["local_grad"] == [pytest.approx(local)] and row["node"].startswith("out = σ(")


def test_router_and_copy_patterns():
    x = cr.tensor(-2.0, requires_grad=True, name="x")
    y = cr.tensor(5.0, requires_grad=True, name="y")
    m = cr.maximum(x, y)
    m.name = "m"
    out = m * x + x * 4
    ex = explain(out)
    assert ex["m"]["pattern"] == "router"
    assert ex["m"]["local_grad"] == [0, 1] and ex["m"]["downstream"] == [0, x.item()]
    assert "copy: gradients add" in ex["x"]["pattern"]
    sent_to_x = [d for row in ex for name, d in zip(row["inputs"], row["downstream"])
                 if name == "x"]
    assert len(sent_to_x) == 3
    assert ex["x"]["upstream"] == pytest.approx(sum(sent_to_x))


def test_elementwise_tensor_local_gradient_is_the_elementwise_derivative():
    data = np.array([[-1.0, 2.0], [3.0, -4.0]])
    x = cr.tensor(data, requires_grad=True, name="x")
    ex = explain(cr.relu(x).sum())
    row = next(r for r in ex if r["op"] == "relu")
    assert row["local_grad_kind"] == "elementwise"
    np.testing.assert_array_equal(row["local_grad"][0], (data > 0).astype(float))


def test_small_local_jacobians_are_formed_and_large_ones_are_not():
    rng = np.random.default_rng(0)
    a = cr.tensor(rng.standard_normal((2, 3)), name="a")
    W = cr.tensor(rng.standard_normal((3, 2)), requires_grad=True, name="W")
    row = next(r for r in explain((a @ W).sum()) if r["op"] == "matmul")
    assert row["local_grad_kind"] == "jacobian" and row["local_grad"][0] is None
    expected = jacobian(lambda w: a @ w, W).data.reshape(4, 6)
    np.testing.assert_allclose(row["local_grad"][1], expected)
    big = cr.tensor(rng.standard_normal((30, 40)), requires_grad=True, name="B")
    row = next(r for r in explain((big @ big.T).sum()) if r["op"] == "matmul")
    assert row["local_grad"] == ["Jacobian (900 x 1200), not formed"] * 2


def test_table_text_markdown_and_html():
    f, _ = lecture_graph()
    ex = explain(f)
    text = str(ex)
    lines = text.splitlines()
    assert lines[0].split() == ["node", "op", "value", "local", "grad", "upstream",
                                "downstream", "pattern"]
    assert set(lines[1]) == {"-", " "}
    assert lines[0].index("upstream") == lines[2].index("1  ")  # columns are aligned
    assert "q: -4, z: 3" in text and "distributor" in text
    md = ex.to_markdown().strip().splitlines()
    assert len(md) == 2 + len(ex) and all(line.count("|") == 8 for line in md)
    root = ET.fromstring(f"<div>{ex._repr_html_()}</div>")
    assert len(root.findall(".//tr")) == 1 + len(ex)


def test_numbers_are_short():
    x = cr.tensor(1.0, dtype=cr.float64, requires_grad=True, name="x")
    text = str(explain(cr.sigmoid(x)))
    assert "0.731" in text and "0.7310585" not in text


def test_non_scalar_output_is_seeded_with_ones_and_noted():
    x = cr.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, name="x")
    ex = explain(x * 2)
    np.testing.assert_array_equal(ex["x"]["upstream"], [2.0, 2.0, 2.0])
    assert ex.notes and "output.sum()" in str(ex)
    ex = explain(x * 2, gradient=np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(ex["x"]["upstream"], [2.0, 0.0, -2.0])


def test_small_graph_can_be_explained_after_backward():
    f, _ = lecture_graph()
    f.backward()
    assert explain(f)["q"]["downstream"] == [-4.0, -4.0]
    with pytest.raises(cr.GraphError, match="retain_graph"):
        f.backward()  # the graph was still used up


def test_errors():
    x = cr.tensor(np.ones((10, 10)), requires_grad=True)
    big = (x * 2).sum()
    big.backward()
    with pytest.raises(cr.GraphError, match="released"):
        explain(big)
    with pytest.raises(cr.GraphError, match="does not require grad"):
        explain(cr.tensor(1.0) * 2)
    with pytest.raises(cr.ChainruleError, match="Tensor"):
        explain(1.0)
