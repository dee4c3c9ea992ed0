"""Differential testing: random expression graphs through chainrule and PyTorch (or centered
differences where torch is not installed); values, gradients and second derivatives.

The programs come from tests/differential/, one per seed. By default the test checks
seeds 0, 1, 2, ... for about a minute (20000 cases or 60 seconds); for a longer run set

    CHAINRULE_DIFFERENTIAL_SECONDS=3600 CHAINRULE_DIFFERENTIAL_SEED=100000 \\
    .venv/bin/python -m pytest tests/engine/test_differential.py -s -k agree

A failure names its seed, the shrunk program as a script, and the command that checks
that one seed again. ``CHAINRULE_TESTS_WITHOUT_TORCH=1`` checks against centered
differences even where torch is installed.
"""

import os
import re
import time
import warnings

import differential
import numpy as np
import pytest
from differential import CALLS, COVERS, MAKERS, Leaf, Program, Step, check, generate, shrink

import chainrule as cr
from chainrule.engine import OPERATIONS
from chainrule.ops.elementwise import Sigmoid, Tanh
from chainrule.ops.reduction import LogSumExp

SECONDS = float(os.environ.get("CHAINRULE_DIFFERENTIAL_SECONDS", "60"))
# with only a time budget given, the time decides
CASES = int(os.environ.get("CHAINRULE_DIFFERENTIAL_CASES",
                           10**9 if "CHAINRULE_DIFFERENTIAL_SECONDS" in os.environ else 20000))
FIRST_SEED = int(os.environ.get("CHAINRULE_DIFFERENTIAL_SEED", "0"))
AT_LEAST = 300  # cases run whatever the clock says: enough to draw every operation


def run_cases(first_seed, cases, seconds, use_torch=None):
    """Check seeds first_seed, first_seed + 1, ... until ``cases`` or ``seconds`` run out;
    returns (cases run, the operations drawn); fails on the first disagreement."""
    drawn, start, run = set(), time.monotonic(), 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN of empty means, as intended
        for seed in range(first_seed, first_seed + cases):
            if run >= AT_LEAST and time.monotonic() - start > seconds:
                break
            program = generate(seed)
            drawn.update(n.op for n in program.nodes if isinstance(n, Step))
            found = checked(program, use_torch)
            run += 1
            if found:
                pytest.fail(failure_report(seed, program, found, use_torch), pytrace=False)
    return run, drawn


def checked(program, use_torch=None):
    """``check``, with a crash of the check itself as its message (so it keeps its seed)."""
    try:
        return check(program, use_torch)
    except Exception as e:  # noqa: BLE001
        return f"the check raised {type(e).__name__}: {e}"


def failure_report(seed, program, found, use_torch=None):
    small = shrink(program, lambda p: checked(p, use_torch))
    env = "" if use_torch is not False else "CHAINRULE_TESTS_WITHOUT_TORCH=1 "
    return (f"seed {seed}: {found}\n\nshrunk to {len(small.nodes)} nodes: "
            f"{checked(small, use_torch)}"
            f"\n\n{differential.reproducer(small)}\n\ncheck this seed again with:\n  {env}"
            f"CHAINRULE_DIFFERENTIAL_SEED={seed} CHAINRULE_DIFFERENTIAL_CASES=1 "
            ".venv/bin/python -m pytest tests/engine/test_differential.py -k agree")


# the library's own operations (tests may define and register more)
LIBRARY_OPERATIONS = {name for name, fn in OPERATIONS.items()
                      if fn.__module__.startswith("chainrule.")}


def covered(ops):
    return set(ops).union(*(COVERS.get(op, set()) for op in ops))


def test_every_operation_is_drawn():
    missing = LIBRARY_OPERATIONS - covered(MAKERS)
    assert not missing, (f"no maker in tests/differential/draw.py draws {sorted(missing)}; add "
                         "one to MAKERS and its two calls to calls.CALLS")
    assert set(MAKERS) <= set(CALLS)


def test_random_graphs_agree():
    run, drawn = run_cases(FIRST_SEED, CASES, SECONDS)
    assert run > 0, "no case was checked"
    if run >= AT_LEAST:
        assert not LIBRARY_OPERATIONS - covered(drawn), "some operations were never drawn"
    source = "PyTorch" if differential.torch is not None else "centered differences"
    print(f"\n{run} random graphs agree with {source} (seeds {FIRST_SEED}..{FIRST_SEED + run - 1})")


def test_random_graphs_agree_with_centered_differences():
    """Also where torch is installed: centered differences check the second derivatives
    without any oracle."""
    cases = min(CASES, AT_LEAST)
    run, _ = run_cases(FIRST_SEED, cases, 0, use_torch=False)
    assert run == cases > 0


@pytest.mark.parametrize("use_torch", [
    pytest.param(True, marks=pytest.mark.skipif(differential.torch is None,
                                                reason="needs torch")),
    False])
def test_a_wrong_gradient_is_found_and_shrunk(monkeypatch, use_torch):
    monkeypatch.setattr(Tanh, "backward", staticmethod(lambda ctx, g: g * (1 - ctx.out)))
    report = first_failure(use_torch)
    assert "gradient" in report and "shrunk to 2 nodes" in report
    assert re.search(r"\nx1 = .*tanh", report), report  # a leaf, and tanh of it


@pytest.mark.parametrize("use_torch", [
    pytest.param(True, marks=pytest.mark.skipif(differential.torch is None,
                                                reason="needs torch")),
    False])
def test_a_backward_that_records_a_constant_is_found(monkeypatch, use_torch):
    """Right first derivatives, wrong second ones: the rule reads sigmoid's output as a
    plain array, so the gradient does not depend on the input when differentiated again."""
    def backward(ctx, upstream):
        out = np.asarray(cr.tensor(ctx.out).data) if ctx.xp.records else ctx.out
        return upstream * out * (1 - out)
    monkeypatch.setattr(Sigmoid, "backward", staticmethod(backward))
    report = first_failure(use_torch)
    assert "second derivative" in report
    assert "sigmoid" in report or "silu" in report  # silu is x * sigmoid(x)


@pytest.mark.parametrize("use_torch", [
    pytest.param(True, marks=pytest.mark.skipif(differential.torch is None,
                                                reason="needs torch")),
    False])
def test_a_refusal_of_valid_input_is_found(monkeypatch, use_torch):
    """logsumexp over a zero-length axis once raised; PyTorch gives -inf."""
    forward = LogSumExp.forward.__func__

    def refusing(cls, ctx, a, axis=None, keepdims=False):
        if 0 in np.shape(a):
            raise cr.ShapeError("logsumexp: cannot reduce an empty axis")
        return forward(cls, ctx, a, axis, keepdims)
    monkeypatch.setattr(LogSumExp, "forward", classmethod(refusing))
    report = first_failure(use_torch)
    assert "chainrule raises ShapeError: logsumexp" in report
    assert "shrunk to 2 nodes" in report and "cr.logsumexp(x0" in report


def first_failure(use_torch):
    for seed in range(2000):
        program = generate(seed)
        found = checked(program, use_torch)
        if found:
            return failure_report(seed, program, found, use_torch)
    raise AssertionError("the wrong rule went unnoticed")


def test_same_seed_same_program():
    assert differential.reproducer(generate(7)) == differential.reproducer(generate(7))
    assert differential.reproducer(generate(7)) != differential.reproducer(generate(8))


def test_the_reproducer_runs_as_printed():
    for seed in range(200):
        namespace = {}
        exec(differential.reproducer(generate(seed)).replace("print(", "(lambda *a: a)("),
             namespace)
        assert isinstance(namespace["out"], cr.Tensor)


def test_the_generator_reaches_the_edge_shapes():
    shapes = [v.shape for s in range(300) for v in _leaf_values(generate(s))]
    assert () in shapes and any(0 in s for s in shapes) and any(1 in s for s in shapes)
    layouts = {n.layout for s in range(300) for n in generate(s).nodes if isinstance(n, Leaf)}
    assert {"T", "step", "neg"} <= layouts


def _leaf_values(program: Program):
    return [n.view() for n in program.nodes if isinstance(n, Leaf)]


# ----- what the differential test found -------------------------------------------------------
@pytest.mark.parametrize("axis", [0, -1])
def test_softmax_of_a_single_value_along_its_axis(axis):
    """PyTorch treats a 0-d tensor as having one axis of length 1: softmax gives 1,
    log_softmax 0, reductions the value itself; NumPy's refusal was an IndexError."""
    x = cr.tensor(0.7, dtype=cr.float64, requires_grad=True)
    assert cr.softmax(x, axis=axis).item() == 1.0
    assert cr.log_softmax(x, axis=axis).item() == 0.0
    assert cr.sum(x, axis=axis).item() == 0.7
    assert cr.max(x * 2, axis=axis, keepdims=True).shape == ()
    assert cr.gradcheck.gradgradcheck(lambda t: cr.softmax(t, axis=axis) * t, [x])
    with pytest.raises(cr.ShapeError, match="axis 1 is out of range"):
        cr.sum(x, axis=1)


def test_linear_backward_with_no_features():
    x = cr.tensor(np.zeros((2, 3, 0)), requires_grad=True)
    w = cr.tensor(np.zeros((4, 0)), requires_grad=True)
    b = cr.tensor(np.ones(4), requires_grad=True)
    out = cr.nn.functional.linear(x, w, b)
    out.backward(np.ones((2, 3, 4)))
    assert x.grad.shape == (2, 3, 0) and w.grad.shape == (4, 0)
    np.testing.assert_array_equal(b.grad, np.full(4, 6.0))


def test_mean_over_an_empty_axis_backpropagates_without_a_warning():
    x = cr.tensor(np.zeros((0, 2)), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cr.mean(x, axis=0).backward(np.ones(2))
    assert x.grad.shape == (0, 2)


def test_a_difference_is_reported_with_a_small_program():
    """The shrinker cuts an ancestor graph down to the one step that differs."""
    x = Leaf(np.array([0.5, -1.0]))
    nodes = [x, Step("exp", (0,)), Step("tanh", (1,)), Step("sum", (2,),
                                                           dict(axis=None, keepdims=False))]
    program = Program(nodes, 3)

    def fails(p):  # pretend tanh is wrong
        return "tanh differs" if any(isinstance(n, Step) and n.op == "tanh"
                                     for n in p.nodes) else None
    small = shrink(program, fails)
    assert [n.op for n in small.nodes if isinstance(n, Step)] == ["tanh"]


@pytest.mark.parametrize("loss", ["cross_entropy", "bce"])
def test_the_mean_loss_of_an_empty_batch_is_nan_without_a_warning(loss):
    x = cr.tensor(np.zeros((0, 3)), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if loss == "cross_entropy":
            out = cr.nn.functional.cross_entropy(x, np.zeros(0, dtype=np.int64))
        else:
            out = cr.nn.functional.binary_cross_entropy_with_logits(x, np.zeros((0, 3)))
        out.backward()
    assert np.isnan(out.item()) and x.grad.shape == (0, 3)


def test_a_clip_whose_bounds_do_not_broadcast_names_their_shapes():
    with pytest.raises(cr.ShapeError, match=r"input of shape \(2,\) and bounds min \(3,\), "
                                            r"max None do not broadcast"):
        cr.clip(cr.ones(2), np.zeros(3), None)


def test_the_shrinker_keeps_the_kind_of_failure():
    """A smaller program that fails for another reason is not a reproducer of this one."""
    x = Leaf(np.array([0.5, -1.0]))
    program = Program([x, Step("exp", (0,)), Step("tanh", (1,))], 2)

    def fails(p):  # the full program has a wrong gradient; any smaller one "raises"
        return ("gradient of leaf x0: differs" if len(p.nodes) == 3
                else "chainrule raises ShapeError: other")
    small = shrink(program, fails)
    assert [n.op for n in small.nodes if isinstance(n, Step)] == ["exp", "tanh"]
