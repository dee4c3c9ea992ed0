"""parse_expression / parse_values: formulas become graphs, and nothing else runs."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.viz import explain, parse_expression, parse_values


def test_lecture_expression_builds_a_graph_of_named_float64_leaves():
    out, leaves = parse_expression("(x + y) * z", {"x": -2, "y": 5, "z": -4})
    assert out.item() == -12
    assert list(leaves) == ["x", "y", "z"]
    for name, leaf in leaves.items():
        assert leaf.name == name and leaf.requires_grad and leaf.dtype == np.float64
    out.backward()
    assert [float(leaves[n].grad) for n in "xyz"] == [-4.0, -4.0, 3.0]


def test_a_variable_used_twice_is_one_leaf():
    out, leaves = parse_expression("x * x + x", {"x": 3.0, "unused": 1.0})
    assert list(leaves) == ["x"]
    out.backward()
    assert float(leaves["x"].grad) == 2 * 3.0 + 1


@pytest.mark.parametrize("text, expected", [
    ("2 ** 3 ** 2", 2.0 ** 3 ** 2),
    ("-a ** 2", -(1.5 ** 2)),
    ("+a - -b / 4", 1.5 - (2.0 / 4)),
    ("exp(a) + log(a) + sqrt(a)", math.exp(1.5) + math.log(1.5) + math.sqrt(1.5)),
    ("abs(b) * tanh(a)", 2.0 * math.tanh(1.5)),
    ("sigmoid(b) + relu(b) + relu(a)", 1 / (1 + math.exp(2.0)) + 0 + 1.5),
    ("max(a, b) + min(a, b) + maximum(a, 0) + minimum(b, 0)", 1.5 - 2.0 + 1.5 - 2.0),
])
def test_allowed_syntax_computes_like_python(text, expected):
    out, _ = parse_expression(text, {"a": 1.5, "b": -2.0})
    assert out.item() == pytest.approx(expected)


def test_array_values_and_the_sigmoid_neuron():
    values = parse_values("w0=2,x0=-1,w1=-3,x1=-2,w2=-3")
    out, leaves = parse_expression("1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))", values)
    s = 1 / (1 + math.exp(-1.0))
    assert out.item() == pytest.approx(s)
    assert explain(out)["x0"]["upstream"] == pytest.approx(s * (1 - s) * 2)
    out, leaves = parse_expression("relu(v) * 2", {"v": [1.0, -1.0]})
    np.testing.assert_array_equal(out.data, [2.0, 0.0])


def test_constant_only_expressions_give_numpy_results_without_hanging():
    with np.errstate(all="ignore"):
        out, leaves = parse_expression("9 ** 9 ** 9", {})
        assert leaves == {} and math.isinf(out.item())
        assert math.isinf(parse_expression("1 / 0", {})[0].item())
        assert math.isinf(parse_expression("10.0 ** 400", {})[0].item())
        assert math.isinf(parse_expression("x / 0", {"x": 1.0})[0].item())
    with pytest.raises(cr.ChainruleError, match="too large"):
        parse_expression("1" + "0" * 400 + " * x", {"x": 1.0})


HOSTILE = [
    "__import__('os').system('touch {p}')",
    "open('{p}', 'w')",
    "exec(\"open('{p}', 'w')\")",
    "eval(\"open('{p}', 'w')\")",
    "(lambda: open('{p}', 'w'))()",
    "[open('{p}', 'w') for _ in 'a']",
    "x.__class__.__bases__[0].__subclasses__()",
    "exp.__globals__",
    "x[0]",
    "'{p}'",
    "exp(x, out=x)",
    "exp(*[x])",
    "x if x else open('{p}', 'w')",
    "x < 2",
    "x and open('{p}', 'w')",
    "(y := open('{p}', 'w'))",
    "f'{{x}}'",
    "x @ x",
    "x // 2",
    "x % 2",
    "~x",
    "not x",
    "True + x",
    "1j * x",
    "b'x'",
    "...",
    "{{1: x}}",
    "x; open('{p}', 'w')",
    "import os",
    "w + x",
    "exp(x, x)",
    "max(x)",
    "",
    "1 +",
    "x\0",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_or_unsupported_input_is_refused_and_nothing_runs(template, tmp_path):
    marker = tmp_path / "pwned"
    text = template.format(p=marker)
    with pytest.raises(cr.ChainruleError) as info:
        parse_expression(text, {"x": 1.0})
    message = str(info.value)
    assert "\n" not in message and message.startswith("expression:")
    assert not marker.exists()


def test_refusals_say_what_is_not_allowed_and_what_is():
    with pytest.raises(cr.ChainruleError, match=r"attribute access is not allowed; allowed:"):
        parse_expression("x.real", {"x": 1.0})
    with pytest.raises(cr.ChainruleError, match=r"the function 'open' is not allowed"):
        parse_expression("open('f')", {})
    with pytest.raises(cr.ChainruleError, match=r"'w' has no value; give it one, e.g. w=1.5"):
        parse_expression("w * 2", {})
    with pytest.raises(cr.ChainruleError, match=r"not a number"):
        parse_expression("w * 2", {"w": "abc"})


def test_very_deep_nesting_is_an_error_or_a_result_never_a_crash():
    for text in ["-" * 5000 + "x", "(" * 300 + "x" + ")" * 300, "x" + " + x" * 3000]:
        try:
            out, _ = parse_expression(text, {"x": 1.0})
        except cr.ChainruleError:
            continue
        assert isinstance(out, cr.Tensor)
    with pytest.raises(cr.ChainruleError, match="longer than"):
        parse_expression("x+" * 2000 + "x", {"x": 1.0})


def test_parse_values():
    assert parse_values("x=-2,y=5,z=-4") == {"x": -2.0, "y": 5.0, "z": -4.0}
    assert parse_values(" a = 1.5e-3 , _b2=+7 ") == {"a": 1.5e-3, "_b2": 7.0}
    assert parse_values("") == {}


@pytest.mark.parametrize("bad", ["x", "x=", "=3", "x=1=2", "x=abc", "1x=2", "x=1,x=2",
                                 "x=1,,y=2", "x=1,", "x y=1", "x=1;y=2"])
def test_parse_values_rejects_malformed_input(bad):
    with pytest.raises(cr.ChainruleError, match="^values:"):
        parse_values(bad)
