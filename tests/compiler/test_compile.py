"""cr.compile: 100 compiled steps give the numbers of 100 eager steps, bit for bit, for
every model the library builds; and what a recording cannot see is detected, not wrong.

Every test trains two copies of one model from one seed, one eagerly and one through
``cr.compile``, on the same batches, and compares the losses after every step and the
parameters, gradients and optimizer state at the end.
"""

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.compiler import CompileCheckError, layout
from chainrule.nn import MLP
from chainrule.nn import functional as F
from chainrule.optim import lr_scheduler

D, C = 4, 3
LOSSES = {
    "cross_entropy": lambda s, y: F.cross_entropy(s, y),
    "cross_entropy_sum": lambda s, y: F.cross_entropy(s, y, reduction="sum"),
    "hinge": lambda s, y: F.hinge_loss(s, y),
    "mse": lambda s, y: F.mse_loss(s, y),  # these two take one-hot float targets
    "bce": lambda s, y: F.binary_cross_entropy_with_logits(s, y),
}
ONE_HOT = {"mse", "bce"}
OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.05),
    "sgd_momentum_wd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adam_wd_amsgrad": lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-2, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=1e-3),
    "rmsprop_centered_momentum_wd": lambda ps: optim.RMSprop(
        ps, lr=1e-3, centered=True, momentum=0.5, weight_decay=1e-3),
}


def batches(n_steps, batch=16, dtype=np.float32, seed=1, sizes=None, one_hot=False):
    rng = np.random.default_rng(seed)
    for i in range(n_steps):
        n = batch if sizes is None else sizes[i % len(sizes)]
        X, y = rng.standard_normal((n, D)).astype(dtype), rng.integers(0, C, n)
        yield X, (np.eye(C, dtype=dtype)[y] if one_hot else y)


class Twin:
    """One model, optimizer and scheduler built from a seed, and its training step."""

    def __init__(self, activation="relu", dropout=0.0, loss="cross_entropy", optimizer="adam",
                 dtype=np.float32, scheduler=None, hidden=(8, 8)):
        self.model = MLP(D, list(hidden), C, activation=activation, dropout=dropout, seed=0,
                         dtype=dtype)
        self.opt = OPTIMIZERS[optimizer](self.model.parameters())
        self.scheduler = scheduler(self.opt) if scheduler else None
        self.loss_fn = LOSSES[loss]

    def step(self, X, y):
        scores = self.model(X)
        loss = self.loss_fn(scores, y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss, scores


def train_both(steps=100, check=False, schedule_every=10, data=None, between=None, **build):
    eager, compiled = Twin(**build), Twin(**build)
    step = cr.compile(compiled.step, check=check)
    if data is None:
        data = batches(steps, dtype=build.get("dtype", np.float32),
                       one_hot=build.get("loss") in ONE_HOT)
    for i, (X, y) in enumerate(data):
        if between is not None:
            between(i, eager)
            between(i, compiled)
        want_loss, want_scores = eager.step(X, y)
        got_loss, got_scores = step(X, y)
        assert np.array_equal(want_loss.data, got_loss.data), f"loss of step {i}"
        assert np.array_equal(want_scores.data, got_scores.data), f"scores of step {i}"
        if eager.scheduler is not None and (i + 1) % schedule_every == 0:
            eager.scheduler.step()
            compiled.scheduler.step()
    assert_same_state(eager, compiled)
    return eager, compiled, step


def assert_same_state(eager, compiled):
    for (name, p), q in zip(eager.model.named_parameters(), compiled.model.parameters()):
        assert p.data.dtype == q.data.dtype
        # the same memory layout (Linear's weight: the transpose of a row-major array), so
        # that both run the same BLAS products
        assert p.data.strides == q.data.strides, f"layout of {name}"
        if p.grad is not None and q.grad is not None:
            assert p.grad.strides == q.grad.strides, f"layout of the gradient of {name}"
        assert np.array_equal(p.data, q.data), f"parameter {name}"
        assert (p.grad is None) == (q.grad is None), f"gradient of {name}"
        if p.grad is not None:
            assert np.array_equal(p.grad, q.grad), f"gradient of {name}"
    want, got = eager.opt.state_dict(), compiled.opt.state_dict()
    assert want["param_groups"] == got["param_groups"]
    for index, state in want["state"].items():
        for key, value in state.items():
            assert np.array_equal(value, got["state"][index][key]), f"state {key} of {index}"


# ----- every model the library builds -----------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid",
                                        "tanh", None])
def test_each_activation_gives_the_eager_numbers(activation):
    _, _, step = train_both(activation=activation, optimizer="sgd_momentum_wd")
    assert step.recordings == 1 and step.replays == 99


@pytest.mark.parametrize("loss", list(LOSSES))
def test_each_loss_gives_the_eager_numbers(loss):
    _, _, step = train_both(loss=loss)
    assert step.recordings == 1 and step.replays == 99


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_optimizer_gives_the_eager_numbers_in_float32_and_float64(optimizer, dtype):
    _, _, step = train_both(optimizer=optimizer, dtype=dtype)
    assert step.recordings == 1 and step.replays == 99


@pytest.mark.parametrize("optimizer", ["sgd_momentum_wd", "adam_wd_amsgrad",
                                       "rmsprop_centered_momentum_wd"])
def test_updates_run_slice_by_slice_give_the_eager_numbers(optimizer, monkeypatch):
    monkeypatch.setattr(layout, "CHUNK", 7)  # many slices, one ending mid-parameter
    _, _, step = train_both(steps=30, optimizer=optimizer)
    bucket = step.programs()[0].buckets[0]
    assert len(bucket.chunks) > 10 and step.replays == 29


def test_dropout_draws_new_masks_from_the_same_generator_as_eager():
    eager, compiled, step = train_both(dropout=0.3, activation="tanh")
    assert step.replays == 99
    dropouts = [m for m in compiled.model.modules() if isinstance(m, cr.nn.Dropout)]
    twins = [m for m in eager.model.modules() if isinstance(m, cr.nn.Dropout)]
    assert dropouts and all(a.get_extra_state() == b.get_extra_state()
                            for a, b in zip(dropouts, twins))


@pytest.mark.parametrize("scheduler", [
    lambda opt: lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=10),
    lambda opt: lr_scheduler.ExponentialLR(opt, gamma=0.9),
])
@pytest.mark.parametrize("optimizer", ["sgd_momentum_wd", "adam", "rmsprop"])
def test_a_schedulers_new_learning_rate_is_used_at_the_next_replay(scheduler, optimizer):
    eager, compiled, step = train_both(optimizer=optimizer, scheduler=scheduler)
    assert step.recordings == 1
    assert compiled.opt.param_groups[0]["lr"] != eager.opt.defaults["lr"]


def test_check_mode_agrees_with_eager_on_a_model_with_dropout_and_two_losses():
    _, _, step = train_both(steps=20, check=True, dropout=0.2, loss="hinge", optimizer="adamw")
    assert step.replays == 19


def test_gradients_read_after_a_replayed_step_are_the_steps_own():
    twin = Twin()
    step = cr.compile(twin.step)
    data = list(batches(3))
    for X, y in data:
        step(X, y)
    grads = [p.grad.copy() for p in twin.model.parameters()]
    reference = Twin()  # from the same seed: two eager steps, then the third's gradients
    for X, y in data[:2]:
        reference.step(X, y)
    reference.opt.zero_grad()
    F.cross_entropy(reference.model(data[2][0]), data[2][1]).backward()
    for got, p in zip(grads, reference.model.parameters()):
        assert np.array_equal(got, p.grad)


def test_the_generated_replay_is_flat_numpy_calls_into_fixed_buffers():
    twin = Twin(hidden=(8,))
    step = cr.compile(twin.step)
    for X, y in batches(3):
        step(X, y)
    source = step.programs()[0].source
    assert "np.matmul(" in source and "out=" in source and ".forward(" not in source
    first = [p.data for p in twin.model.parameters()]
    step(*next(batches(1)))
    assert all(a is p.data for a, p in zip(first, twin.model.parameters()))  # updated in place


# ----- what a recording cannot see ---------------------------------------------------------------
def test_new_batch_shapes_make_a_new_recording_kept_in_the_cache():
    data = batches(30, sizes=[16, 16, 16, 5])  # an epoch's smaller last batch, and again
    _, _, step = train_both(steps=30, data=data)
    assert step.recordings == 2 and step.replays == 28


def test_eval_mode_and_back_is_recorded_again_not_replayed_wrong():
    def switch(i, twin):
        twin.model.train(i % 7 not in (3, 4))

    _, _, step = train_both(steps=30, dropout=0.5, between=switch)
    assert step.recordings >= 2


def test_modules_changed_behind_train_are_seen_too():
    """A replay compares its modules only when a change could have happened (the
    structure count of nn.module moved): each way of changing one moves it."""
    calls = []

    def change(i, twin):
        dropout = next(m for m in twin.model.modules() if isinstance(m, cr.nn.Dropout))
        if i == 3:  # the flag set directly, not through eval()
            for m in twin.model.modules():
                m.training = False
        if i == 5:
            for m in twin.model.modules():
                m.training = True
        if i == 7:
            twin.handle = twin.model[0].register_forward_hook(lambda m, a, out: calls.append(1))
        if i == 9:
            twin.handle.remove()
        if i == 11:
            dropout.p = 0.25

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the step with a hook runs eagerly, with a warning
        _, _, step = train_both(steps=14, dropout=0.5, between=change)
    assert len(calls) == 2 * 2  # both twins' hooks ran at steps 7 and 8
    assert step.recordings >= 4


@pytest.mark.parametrize("edit, recorded_again", [
    (lambda g: g.update(lr=g["lr"] * 0.5), False),  # read at every replay
    (lambda g: g.update(momentum=0.5), True),
    (lambda g: g.update(weight_decay=0.01), True),
    (lambda g: g.update(nesterov=True), True),
])
def test_editing_param_groups_between_steps_gives_the_eager_numbers(edit, recorded_again):
    def change(i, twin):
        if i == 5:
            edit(twin.opt.param_groups[0])

    _, _, step = train_both(steps=12, optimizer="sgd_momentum_wd", between=change)
    assert step.recordings == (2 if recorded_again else 1)


def test_a_parameter_replaced_or_cast_is_seen():
    def replace(i, twin):
        if i == 4:  # a new Parameter object, and then every array cast to float64
            twin.model[0].bias = cr.nn.Parameter(twin.model[0].bias.data.copy())
            twin.opt = OPTIMIZERS["adam"](twin.model.parameters())
        if i == 8:
            twin.model.to(np.float64)
            twin.opt = OPTIMIZERS["adam"](twin.model.parameters())

    _, _, step = train_both(steps=12, between=replace)
    assert step.recordings == 3


@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])  # in a flat array, and not
def test_a_weight_given_another_memory_layout_is_seen(optimizer):
    """A weight's layout decides which BLAS product gives its gradient (and so its last
    bits): an array of the same shape but row-major instead is a new recording."""
    def relayout(i, twin):
        if i == 4:
            layer = twin.model[0]
            layer.weight.data = np.ascontiguousarray(layer.weight.data)

    def build(ps):
        return optim.Adagrad(ps, lr=0.05) if optimizer == "adagrad" else optim.Adam(ps, lr=1e-2)

    OPTIMIZERS["_layout_test"] = build
    try:
        eager, compiled, step = train_both(steps=10, between=relayout, optimizer="_layout_test")
    finally:
        del OPTIMIZERS["_layout_test"]
    assert compiled.model[0].weight.data.flags.c_contiguous
    assert step.recordings == 2


def test_a_layer_frozen_and_unfrozen_between_steps_is_seen():
    def freeze(i, twin):
        for p in twin.model[0].parameters():
            p.requires_grad = not 4 <= i < 8

    _, _, step = train_both(steps=12, optimizer="sgd_momentum_wd", between=freeze)
    assert step.recordings == 3


def test_optimizer_state_loaded_between_steps_is_used():
    saved = {}

    def restore(i, twin):
        if i == 3:
            saved[id(twin)] = twin.opt.state_dict()
        if i == 7:
            twin.opt.load_state_dict(saved[id(twin)])

    train_both(steps=12, optimizer="adam", between=restore)


def test_a_step_that_raises_half_way_leaves_nothing_wrong():
    eager, compiled = Twin(), Twin()
    step = cr.compile(compiled.step)
    data = list(batches(10))
    bad_labels = data[4][1].copy()
    bad_labels[3] = -1
    for i, (X, y) in enumerate(data):
        labels = bad_labels if i in (0, 4) else y  # raises while recording, then replaying
        for run in (eager.step, step):
            if i in (0, 4):
                with pytest.raises(cr.ShapeError, match="target labels"):
                    run(X, labels)
            else:
                run(X, labels)
    assert step.recordings == 1
    assert_same_state(eager, compiled)


@pytest.mark.parametrize("body, why", [
    (lambda loss, p: loss.item(), "item()"),
    (lambda loss, p: p.__isub__(0.0), "in place"),
    (lambda loss, p: cr.tensor(np.ones(3)) * p[0, :3], "made inside the step"),
    (lambda loss, p: p[0, :3] * np.ones(3, dtype=np.float32), "made inside the step"),
    (lambda loss, p: setattr(p, "grad", None), ".grad by hand"),
])
def test_what_a_replay_cannot_see_is_run_eagerly_with_a_warning(body, why):
    eager, compiled = Twin(), Twin()

    def make(twin):
        def step(X, y):
            loss, scores = twin.step(X, y)
            with cr.no_grad():
                body(loss, twin.model[0].weight)
            return loss

        return step

    run_eagerly, run_compiled = make(eager), cr.compile(make(compiled))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for X, y in batches(5):
            assert np.array_equal(run_eagerly(X, y).data, run_compiled(X, y).data)
    assert any(why in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert run_compiled.replays == 0
    assert_same_state(eager, compiled)


@pytest.mark.parametrize("returned", [
    lambda loss, scores: float(loss.data),
    lambda loss, scores: scores.data.argmax(axis=1),
    lambda loss, scores: (loss, np.exp(scores.data)),
])
def test_a_value_computed_outside_the_operations_is_not_returned_stale(returned):
    twin = Twin()

    def step(X, y):
        return returned(*twin.step(X, y))

    compiled = cr.compile(step)
    with pytest.warns(UserWarning, match="returns"):
        for X, y in batches(4):
            compiled(X, y)
    assert compiled.replays == 0


def test_returning_parameters_arguments_and_none_is_fine():
    twin = Twin()

    def step(X, y):
        loss, _ = twin.step(X, y)
        return {"loss": loss, "weight": twin.model[0].weight, "X": X, "note": None}

    compiled = cr.compile(step)
    for X, y in batches(4):
        out = compiled(X, y)
        assert out["weight"] is twin.model[0].weight and out["X"] is X
    assert compiled.replays == 3


def test_check_names_the_first_difference_when_the_step_edits_gradients_by_hand():
    twin = Twin()

    def clipped(X, y):
        scores = twin.model(X)
        loss = F.cross_entropy(scores, y)
        twin.opt.zero_grad()
        loss.backward()
        np.clip(twin.model[0].weight.grad, -1e-3, 1e-3, out=twin.model[0].weight.grad)
        twin.opt.step()
        return loss

    step = cr.compile(clipped, check=True)
    data = batches(3)
    step(*next(data))
    with pytest.raises(CompileCheckError, match=r"parameter 0 \(8, 4\)|gradient"):
        step(*next(data))


def test_gradients_accumulated_over_steps_without_zero_grad():
    def accumulate(twin):
        def step(X, y):
            F.cross_entropy(twin.model(X), y).backward()

        return step

    eager, compiled = Twin(), Twin()
    run_eagerly, run_compiled = accumulate(eager), cr.compile(accumulate(compiled))
    for i, (X, y) in enumerate(batches(12)):
        run_eagerly(X, y)
        run_compiled(X, y)
        if i % 3 == 2:  # update every third batch, outside the compiled step
            for twin in (eager, compiled):
                twin.opt.step()
                twin.opt.zero_grad()
    assert run_compiled.replays == 11
    assert_same_state(eager, compiled)


def test_chainrule_compile_0_turns_compilation_off(monkeypatch):
    monkeypatch.setenv("CHAINRULE_COMPILE", "0")
    twin = Twin()
    step = cr.compile(twin.step)
    for X, y in batches(3):
        step(X, y)
    assert step.recordings == 0 and step.replays == 0


def test_a_list_argument_is_refused_with_a_message():
    step = cr.compile(lambda X: X)
    with pytest.raises(cr.ChainruleError, match="argument 0 is a list"):
        step([1, 2])


@pytest.mark.parametrize("width", [8, 64])  # 64: sums long enough for their order to show
def test_an_l2_penalty_and_a_layer_used_twice_give_the_eager_numbers(width):
    def build():
        shared = cr.nn.Linear(width, width, generator=1)
        model = cr.nn.Sequential(cr.nn.Linear(D, width, generator=0), cr.nn.Tanh(), shared,
                                 cr.nn.ReLU(), shared, cr.nn.ReLU(),
                                 cr.nn.Linear(width, C, generator=2))
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def step(X, y):
            scores = model(X)
            loss = F.cross_entropy(scores, y) + F.l2_penalty(model, 1e-3)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        return model, step

    (model_e, eager), (model_c, compiled) = build(), build()
    compiled = cr.compile(compiled)
    for X, y in batches(100):
        assert np.array_equal(eager(X, y).data, compiled(X, y).data)
    for p, q in zip(model_e.parameters(), model_c.parameters()):
        assert np.array_equal(p.data, q.data) and np.array_equal(p.grad, q.grad)
    assert compiled.replays == 99


def test_an_argument_converted_to_another_dtype_inside_an_operation_is_replayed():
    # binary_cross_entropy_with_logits converts float64 targets to the logits' float32
    eager, compiled = Twin(loss="bce"), Twin(loss="bce")
    step = cr.compile(compiled.step)
    for X, y in batches(20, one_hot=True, dtype=np.float64):
        X = X.astype(np.float32)
        assert np.array_equal(eager.step(X, y)[0].data, step(X, y)[0].data)
    assert step.replays == 19 and "astype" in step.programs()[0].source
    assert_same_state(eager, compiled)


def test_functional_dropout_draws_from_the_default_generator_like_eager():
    def run(compiled):
        cr.manual_seed(5)
        model = MLP(D, [8], C, seed=0)
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(X, y):
            hidden = F.dropout(model[1](model[0](X)), p=0.5, training=True)
            loss = F.cross_entropy(model[2](hidden), y)
            model.zero_grad()  # the module's zero_grad, not the optimizer's
            loss.backward()
            opt.step()
            return loss

        step = cr.compile(step) if compiled else step
        losses = [step(X, y).item() for X, y in batches(15)]
        return losses, [p.data.copy() for p in model.parameters()], step

    (want, want_params, _), (got, got_params, step) = run(False), run(True)
    assert want == got and step.replays == 14
    assert all(np.array_equal(a, b) for a, b in zip(want_params, got_params))


@pytest.mark.parametrize("build", [{"activation": a} for a in
                                   ("relu", "leaky_relu", "elu", "gelu", "silu", "sigmoid",
                                    "tanh", None)]
                         + [{"loss": loss} for loss in LOSSES]
                         + [{"optimizer": o, "dtype": np.float64} for o in OPTIMIZERS]
                         + [{"dropout": 0.3, "optimizer": "rmsprop"}],
                         ids=lambda b: "-".join(str(v) for v in b.values()))
def test_check_mode_finds_no_difference_on_any_model(build):
    _, _, step = train_both(steps=10, check=True, **build)
    assert step.replays == 9


def test_two_backward_passes_in_one_step_add_their_gradients_as_eager():
    def build():
        twin = Twin(hidden=(8,))

        def step(X, y):
            scores = twin.model(X)
            twin.opt.zero_grad()
            F.cross_entropy(scores, y).backward(retain_graph=True)
            F.hinge_loss(scores, y).backward()
            twin.opt.step()
            return scores

        return twin, step

    (eager, run_eagerly), (compiled, step) = build(), build()
    step = cr.compile(step)
    for X, y in batches(20):
        assert np.array_equal(run_eagerly(X, y).data, step(X, y).data)
    assert step.replays == 19
    assert_same_state(eager, compiled)
