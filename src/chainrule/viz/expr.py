"""Small formulas such as ``(x + y) * z`` turned into chainrule graphs, safely.

The text is parsed with ``ast.parse`` and never evaluated by Python: only numbers,
variables with given values, ``+ - * / **``, unary minus and plus, parentheses and calls
of a few elementwise functions are accepted; anything else (attribute access, indexing,
strings, lambdas, comprehensions, keyword arguments, other names or functions) is
refused with a ``ChainruleError`` before anything is computed.
"""

from __future__ import annotations

import ast
import re

import numpy as np

from .. import ops
from ..errors import ChainruleError
from ..tensor import Tensor

MAX_LENGTH = 2000
FUNCTIONS = {  # name -> (function, number of arguments)
    "exp": (ops.exp, 1), "log": (ops.log, 1), "sqrt": (ops.sqrt, 1), "abs": (ops.abs, 1),
    "tanh": (ops.tanh, 1), "sigmoid": (ops.sigmoid, 1), "relu": (ops.relu, 1),
    "maximum": (ops.maximum, 2), "minimum": (ops.minimum, 2),
    "max": (ops.maximum, 2), "min": (ops.minimum, 2),
}
BINARY = {ast.Add: ops.add, ast.Sub: ops.subtract, ast.Mult: ops.multiply,
          ast.Div: ops.divide, ast.Pow: ops.power}
ALLOWED = ("allowed: numbers, variables given a value, + - * / ** (unary - and +), "
           "parentheses and the functions " + ", ".join(FUNCTIONS))
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_expression(text: str, values: dict) -> tuple[Tensor, dict[str, Tensor]]:
    """Build the graph of the formula ``text`` with the variables set to ``values``.

    Each variable becomes a named float64 leaf Tensor with ``requires_grad=True`` (one
    leaf per name, however often it is used); values may be numbers or arrays.

    Returns ``(output, leaves)``: the output Tensor and a dict name -> leaf, in order of
    first use. Raises ``ChainruleError`` for anything that is not allowed, naming it.
    """
    if not isinstance(text, str):
        raise ChainruleError(f"expression: expected a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ChainruleError(f"expression: longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        detail = getattr(e, "msg", None) or type(e).__name__
        raise ChainruleError(f"expression: cannot parse {text!r}: {detail}") from None
    leaves: dict[str, Tensor] = {}
    try:
        output = _build(tree.body, values, leaves)
    except RecursionError:
        raise ChainruleError("expression: nested too deeply") from None
    if not isinstance(output, Tensor):
        output = Tensor(np.asarray(output, dtype=np.float64))
    return output, leaves


def _refuse(what: str):
    raise ChainruleError(f"expression: {what} is not allowed; {ALLOWED}")


def _build(node, values, leaves):
    if isinstance(node, ast.BinOp):
        op = BINARY.get(type(node.op))
        if op is None:
            _refuse(f"the operator {type(node.op).__name__}")
        return op(_build(node.left, values, leaves), _build(node.right, values, leaves))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return ops.negative(_build(node.operand, values, leaves))
        if isinstance(node.op, ast.UAdd):
            return _build(node.operand, values, leaves)
        _refuse(f"the operator {type(node.op).__name__}")
    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.Name):
        return _variable(node.id, values, leaves)
    if isinstance(node, ast.Call):
        return _call(node, values, leaves)
    _refuse(_describe(node))


def _number(value) -> np.ndarray:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _refuse(f"the constant {value!r}")
    try:
        # float64 arrays, not Python numbers: Python would compute 9 ** 9 ** 9 exactly
        # (forever) and raise on 1 / 0, where NumPy gives inf
        return np.asarray(float(value), dtype=np.float64)
    except OverflowError:
        raise ChainruleError(f"expression: the number {value} is too large") from None


def _variable(name, values, leaves):
    if name in leaves:
        return leaves[name]
    if name not in values:
        hint = " (it is a function: call it)" if name in FUNCTIONS else ""
        raise ChainruleError(f"expression: the variable {name!r} has no value{hint}; give it "
                             f"one, e.g. {name}=1.5")
    try:
        data = np.asarray(values[name], dtype=np.float64)
    except (TypeError, ValueError):
        raise ChainruleError(f"expression: the value of {name!r} is not a number: "
                             f"{values[name]!r}") from None
    leaves[name] = Tensor(data, requires_grad=True, name=name)
    return leaves[name]


def _call(node, values, leaves):
    if not isinstance(node.func, ast.Name):
        _refuse(f"calling {_describe(node.func)}")
    name = node.func.id
    if name not in FUNCTIONS:
        _refuse(f"the function {name!r}")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        _refuse(f"keyword or starred arguments in {name}()")
    fn, arity = FUNCTIONS[name]
    if len(node.args) != arity:
        raise ChainruleError(f"expression: {name}() takes {arity} argument"
                             f"{'s' if arity > 1 else ''}, got {len(node.args)}")
    return fn(*(_build(a, values, leaves) for a in node.args))


def _describe(node) -> str:
    kinds = {ast.Attribute: "attribute access", ast.Subscript: "indexing",
             ast.Lambda: "a lambda", ast.Compare: "a comparison", ast.BoolOp: "and/or",
             ast.IfExp: "if/else", ast.JoinedStr: "an f-string", ast.NamedExpr: ":=",
             ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension",
             ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
             ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
             ast.Call: "a call", ast.Await: "await", ast.Yield: "yield"}
    return kinds.get(type(node), type(node).__name__)


def parse_values(text: str) -> dict[str, float]:
    """``"x=-2, y=5, z=-4"`` as ``{"x": -2.0, "y": 5.0, "z": -4.0}``.

    An empty string gives an empty dict; anything else that is not comma-separated
    ``name=number`` pairs with distinct names raises ``ChainruleError``.
    """
    if not isinstance(text, str):
        raise ChainruleError(f"values: expected a string, got {type(text).__name__}")
    result: dict[str, float] = {}
    if not text.strip():
        return result
    for item in text.split(","):
        name, sep, number = (part.strip() for part in item.partition("="))
        if not sep or not _NAME.match(name) or "=" in number:
            raise ChainruleError(f"values: {item.strip()!r} is not of the form name=number "
                                 "(e.g. x=-2,y=5,z=-4)")
        if name in result:
            raise ChainruleError(f"values: {name!r} is given twice")
        try:
            result[name] = float(number)
        except ValueError:
            raise ChainruleError(f"values: {number!r} (for {name}) is not a number") from None
    return result
