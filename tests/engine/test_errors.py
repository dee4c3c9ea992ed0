"""Errors a user causes: one line naming the operation and the shapes, no NumPy traceback."""

import re
import traceback

import numpy as np
import pytest

import chainrule as cr


def t(*shape):
    return cr.tensor(np.ones(shape), requires_grad=True)


def raised(call):
    with pytest.raises(cr.ChainruleError) as info:
        call()
    return info.value


def assert_no_numpy_traceback(error):
    """The error stands alone: no chained NumPy exception, no frame inside NumPy."""
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    text = "".join(traceback.format_exception(error))
    assert "During handling of the above exception" not in text
    assert "direct cause" not in text
    frames = traceback.extract_tb(error.__traceback__)
    assert not [f for f in frames if "/numpy/" in f.filename.replace("\\", "/")]


def test_matmul_names_both_shapes_and_the_inner_dimensions():
    error = raised(lambda: t(64, 100) @ t(10, 3))
    assert isinstance(error, cr.ShapeError)
    assert str(error) == "matmul: (64, 100) @ (10, 3): inner dimensions 100 and 10 differ"
    assert_no_numpy_traceback(error)


@pytest.mark.parametrize("a, b", [((3,), (4,)), ((2, 3), (4,)), ((4,), (2, 3, 5))])
def test_matmul_inner_dimension_errors_for_every_rank(a, b):
    error = raised(lambda: cr.matmul(t(*a), t(*b)))
    assert str(error).startswith(f"matmul: {a} @ {b}: inner dimensions")
    assert_no_numpy_traceback(error)


def test_matmul_batch_and_scalar_errors():
    error = raised(lambda: t(2, 3, 4) @ t(3, 4, 2))
    assert "matmul" in str(error) and "(2, 3, 4)" in str(error) and "(3, 4, 2)" in str(error)
    assert_no_numpy_traceback(error)
    error = raised(lambda: cr.tensor(2.0) @ t(3))
    assert "matmul" in str(error) and "()" in str(error) and "(3,)" in str(error)


BROADCASTING = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
    "power": lambda a, b: a**b,
    "maximum": cr.maximum,
    "minimum": cr.minimum,
}


@pytest.mark.parametrize("name", BROADCASTING)
@pytest.mark.parametrize("right_is_array", [False, True])
def test_broadcasting_failures_name_the_operation_and_both_shapes(name, right_is_array):
    right = np.ones((10, 3)) if right_is_array else t(10, 3)
    error = raised(lambda: BROADCASTING[name](t(64, 100), right))
    assert isinstance(error, cr.ShapeError) and isinstance(error, ValueError)
    assert str(error).startswith(f"{name}:")
    assert "(64, 100)" in str(error) and "(10, 3)" in str(error)
    assert_no_numpy_traceback(error)


CASES = {
    "reshape": (lambda: t(2, 3).reshape(4, 2), ["reshape", "(2, 3)", "(4, 2)"]),
    "concatenate": (lambda: cr.concatenate([t(2, 3), t(2, 4)]),
                    ["concatenate", "(2, 3)", "(2, 4)"]),
    "concatenate axis": (lambda: cr.concatenate([t(2, 3), t(2, 3)], axis=2),
                         ["concatenate", "axis 2"]),
    "stack": (lambda: cr.stack([t(2, 3), t(3, 2)]), ["stack", "(2, 3)", "(3, 2)"]),
    "broadcast_to": (lambda: t(2, 3).broadcast_to((4, 3)), ["broadcast", "(2, 3)", "(4, 3)"]),
    "expand": (lambda: t(2, 3).expand(2, 4), ["(2, 3)", "(2, 4)"]),
    "index out of range": (lambda: t(2, 3)[5], ["5", "(2, 3)"]),
    "index out of range on axis 1": (lambda: t(2, 3)[:, 7], ["7", "(2, 3)"]),
    "integer array index out of range": (lambda: t(2, 3)[[0, 3]], ["3", "(2, 3)"]),
    "boolean mask of the wrong length": (lambda: t(2, 3)[np.ones(4, bool)], ["(2, 3)"]),
    "too many indices": (lambda: t(2, 3)[0, 0, 0], ["(2, 3)"]),
    "sum axis": (lambda: t(2, 3).sum(axis=2), ["sum", "axis 2"]),
    "mean negative axis": (lambda: cr.mean(t(2, 3), axis=-3), ["mean", "axis -3"]),
    "max axis in a tuple": (lambda: t(2, 3).max(axis=(0, 5)), ["max", "axis 5"]),
    "var axis": (lambda: t(2, 3).var(axis=3), ["var", "axis 3"]),
    "logsumexp axis": (lambda: t(2, 3).logsumexp(axis=3), ["logsumexp", "axis 3"]),
    "repeated axis": (lambda: t(2, 3).sum(axis=(0, -2)), ["sum", "repeated"]),
    "transpose axes": (lambda: t(2, 3).transpose((0, 0)), ["transpose", "(0, 0)", "(2, 3)"]),
    "max of nothing": (lambda: cr.max(t(0, 3)), ["max", "empty", "(0, 3)"]),
    "clip bounds": (lambda: cr.clip(t(2, 3), np.zeros(4), 1.0), ["clip", "(2, 3)"]),
    "gradient of the wrong shape": (lambda: (t(2, 3) * 2.0).backward(np.ones((3, 2))),
                                    ["backward", "(3, 2)", "(2, 3)"]),
}


@pytest.mark.parametrize("name", CASES)
def test_shape_errors_say_what_went_wrong(name):
    call, fragments = CASES[name]
    error = raised(call)
    assert isinstance(error, cr.ShapeError)
    for fragment in fragments:
        assert fragment in str(error)
    assert "\n" not in str(error)
    assert_no_numpy_traceback(error)


def test_where_names_the_shape_of_the_condition():
    error = raised(lambda: cr.where(np.ones(5, bool), t(2, 3), 0.0))
    assert "(5,)" in str(error) and "(2, 3)" in str(error)


@pytest.mark.parametrize("op", [cr.softmax, cr.log_softmax])
def test_softmax_axis_out_of_range(op):
    error = raised(lambda: op(t(2, 3), axis=3))
    assert re.search(r"axis 3", str(error)), str(error)
    assert "broadcast" not in str(error)


def test_swapaxes_axis_out_of_range():
    error = raised(lambda: t(2, 3).swapaxes(0, 4))
    assert "swapaxes" in str(error) and "4" in str(error)


def test_item_of_many_elements():
    error = raised(lambda: t(2, 3).item())
    assert "item()" in str(error) and "(2, 3)" in str(error) and "6" in str(error)
    assert_no_numpy_traceback(error)


def test_every_error_class_derives_from_chainrule_error():
    for cls in (cr.ShapeError, cr.GraphError, cr.DTypeError, cr.DataError,
                cr.DatasetNotFoundError, cr.CheckpointError, cr.GradcheckError):
        assert issubclass(cls, cr.ChainruleError)
    assert issubclass(cr.ShapeError, ValueError) and issubclass(cr.DTypeError, TypeError)
    assert issubclass(cr.GraphError, RuntimeError)
