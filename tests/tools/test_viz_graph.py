"""draw_graph: SVG and DOT drawings of computational graphs with values and gradients."""

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest

import chainrule as cr
from chainrule.viz import GraphDrawing, draw_graph
from chainrule.viz.svg import CHAR_W, GRAD_COLOR, VALUE_COLOR

SVG = "{http://www.w3.org/2000/svg}"
LAYOUTS = ["python", pytest.param("graphviz", marks=pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed"))]


def lecture_graph():
    x = cr.tensor(-2.0, requires_grad=True, name="x")
    y = cr.tensor(5.0, requires_grad=True, name="y")
    z = cr.tensor(-4.0, requires_grad=True, name="z")
    q = x + y
    f = q * z
    return f, (x, y, z)


def texts(svg: str, fill=None) -> list[str]:
    root = ET.fromstring(svg)
    found = []
    for el in root.iter(f"{SVG}text"):
        if fill is None or el.get("fill") == fill:
            found.append("".join(el.itertext()).strip())
    return found


def mlp_loss(batch=16, dims=(10, 32, 32, 3)):
    rng = np.random.default_rng(0)
    h = cr.tensor(rng.standard_normal((batch, dims[0])).astype(np.float32), name="X")
    for i in range(3):
        W = cr.randn(dims[i], dims[i + 1], seed=i, requires_grad=True, name=f"W{i + 1}")
        b = cr.zeros(dims[i + 1], requires_grad=True, name=f"b{i + 1}")
        h = h @ W + b
        if i < 2:
            h = cr.relu(h)
    labels = rng.integers(0, dims[-1], batch)
    return -cr.log_softmax(h, axis=1)[np.arange(batch), labels].mean()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_svg_is_well_formed_and_names_every_node(layout):
    f, _ = lecture_graph()
    svg = draw_graph(f, layout=layout)
    words = texts(svg)
    for name in ["x", "y", "z", "+", "*"]:
        assert name in words
    for number in ["-2", "5", "-4", "3", "-12", "1"]:
        assert number in words


def test_each_edge_shows_its_value_above_and_its_gradient_below():
    f, _ = lecture_graph()
    svg = draw_graph(f, layout="python")
    # edges x, y -> +; (+), z -> *; * -> output
    assert sorted(texts(svg, VALUE_COLOR)) == sorted(["-2", "5", "3", "-4", "-12"])
    assert sorted(texts(svg, GRAD_COLOR)) == sorted(["-4", "-4", "-4", "3", "1"])


def test_drawing_touches_no_grad_and_keeps_the_graph_usable():
    f, (x, y, z) = lecture_graph()
    draw_graph(f, layout="python")
    assert x.grad is None and y.grad is None and z.grad is None
    f.backward()
    assert (float(x.grad), float(y.grad), float(z.grad)) == (-4.0, -4.0, 3.0)


def test_options_hide_gradients_or_values():
    f, _ = lecture_graph()
    assert texts(draw_graph(f, show_grad=False, layout="python"), GRAD_COLOR) == []
    assert texts(draw_graph(f, show_values=False, layout="python"), VALUE_COLOR) == []


def test_unnamed_leaves_and_constants_get_labels():
    a = cr.tensor(3.0, requires_grad=True)
    b = cr.tensor(2.0, requires_grad=True)
    out = (a * b + 1.5) / 2
    words = texts(draw_graph(out, layout="python"))
    assert {"x0", "x1", "const", "1.5", "6", "7.5", "3.75"} <= set(words)


def test_tensor_values_are_summarised_with_shape_mean_and_std():
    x = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="A")
    out = (x * 2).sum()
    words = texts(draw_graph(out, layout="python"))
    mean, std = np.arange(6.0).mean(), np.arange(6.0).std()
    assert f"(2, 3) μ={mean:.2g} σ={std:.2g}" in words


def test_small_graph_is_drawn_in_full_after_backward():
    f, _ = lecture_graph()
    f.backward()
    words = texts(draw_graph(f, layout="python"))
    assert "-12" in words and "3" in words and "-4" in words
    assert not any("released" in t for t in words)


def test_released_graph_shows_leaf_gradients_and_says_so():
    x = cr.tensor(np.ones((10, 10)), requires_grad=True, name="big")
    out = (x * 2).sum()
    out.backward()  # 100 elements: too big to keep after backward()
    svg = draw_graph(out, layout="python")
    ET.fromstring(svg)
    assert any("released" in t for t in texts(svg))


def test_non_scalar_output_uses_ones_and_says_so():
    x = cr.tensor(np.array([1.0, -2.0]), requires_grad=True, name="v")
    svg = draw_graph(x * 3, layout="python")
    assert any("output.sum()" in t for t in texts(svg))


def test_dot_text_has_every_node_and_edge():
    f, _ = lecture_graph()
    drawing = draw_graph(f, format="dot")
    assert drawing.format == "dot"
    nodes = dict(re.findall(r'^\s*(n\d+) \[label="([^"]*)"', drawing, re.M))
    edges = re.findall(r"^\s*(n\d+) -> (n\d+)", drawing, re.M)
    assert sorted(nodes.values()) == sorted(["x", "y", "z", "+", "*", "output"])
    by_label = {v: k for k, v in nodes.items()}
    expected = [("x", "+"), ("y", "+"), ("+", "*"), ("z", "*"), ("*", "output")]
    assert sorted(edges) == sorted((by_label[a], by_label[b]) for a, b in expected)
    assert ">-12<" in drawing and ">3<" in drawing


def test_mlp_on_a_batch_renders_without_overlapping_boxes():
    loss = mlp_loss()
    svg = draw_graph(loss, layout="python")
    root = ET.fromstring(svg)
    words = texts(svg)
    for name in ["X", "W1", "b1", "W2", "b2", "W3", "b3", "@", "relu", "log_softmax"]:
        assert name in words
    boxes = []
    for el in root.iter():
        if el.tag == f"{SVG}rect" and el.get("width") != "100%":
            x, y = float(el.get("x")), float(el.get("y"))
            boxes.append((x, y, x + float(el.get("width")), y + float(el.get("height"))))
        elif el.tag == f"{SVG}circle":
            cx, cy, r = (float(el.get(k)) for k in ("cx", "cy", "r"))
            boxes.append((cx - r, cy - r, cx + r, cy + r))
    for anchor in root.iter(f"{SVG}text"):  # edge labels are centred texts
        if anchor.get("fill") in (VALUE_COLOR, GRAD_COLOR):
            w = len(anchor.text) * CHAR_W
            x, y = float(anchor.get("x")), float(anchor.get("y"))
            boxes.append((x - w / 2, y - 9, x + w / 2, y + 2))
    assert len(boxes) > 30
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            overlap = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
            assert not (overlap[0] > 0.5 and overlap[1] > 0.5), (a, b)


def test_drawing_is_a_string_that_jupyter_shows_and_can_be_saved(tmp_path):
    f, _ = lecture_graph()
    drawing = draw_graph(f, layout="python")
    assert isinstance(drawing, GraphDrawing) and isinstance(drawing, str)
    assert drawing._repr_svg_() == str(drawing) == drawing.svg
    assert "\n" not in repr(drawing) and "nodes" in repr(drawing)
    target = tmp_path / "graph.svg"
    assert drawing.save(target) == str(target)
    assert target.read_text(encoding="utf-8") == drawing


def test_path_is_written_atomically(tmp_path):
    f, _ = lecture_graph()
    target = tmp_path / "g.svg"
    target.write_text("old")
    drawing = draw_graph(f, path=target, layout="python")
    assert target.read_text(encoding="utf-8") == drawing
    assert os.listdir(tmp_path) == ["g.svg"]
    dot_target = tmp_path / "g.dot"
    dot_text = draw_graph(f, path=dot_target, format="dot")
    assert dot_target.read_text(encoding="utf-8") == dot_text
    assert dot_text.startswith("digraph")


def test_bad_arguments_raise_chainrule_errors():
    f, _ = lecture_graph()
    with pytest.raises(cr.ChainruleError, match="format"):
        draw_graph(f, format="png")
    with pytest.raises(cr.ChainruleError, match="layout"):
        draw_graph(f, layout="circo")
    with pytest.raises(cr.ChainruleError, match="Tensor"):
        draw_graph(3.0)


def test_a_leaf_alone_and_a_constant_output_draw():
    leaf = cr.tensor(2.0, name="w")
    assert "w" in texts(draw_graph(leaf, layout="python"))
    no_grad_result = cr.tensor(2.0) * 3
    ET.fromstring(draw_graph(no_grad_result, layout="python"))


def _png_has_content(path) -> bool:
    """True when the PNG's pixel data is more than one flat colour (a rough check)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat))) > 8  # filter bytes and white alone give few


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_svg_renders_in_headless_chromium(tmp_path):
    svg_path = tmp_path / "graph.svg"
    draw_graph(mlp_loss(batch=4), path=svg_path, layout="python")
    png = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
         "--window-size=800,600", svg_path.as_uri()],
        capture_output=True, timeout=120, check=False)
    assert png.exists() and png.stat().st_size > 1000
    assert _png_has_content(png)
