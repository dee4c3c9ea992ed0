"""Optimizers given one learning rate and weight decay per population member, arrays of
shape (K, 1, 1) over parameters of shape (K, ...), update each slice as the same optimizer
with scalar hyperparameters updates that slice alone."""

import numpy as np
import pytest

from chainrule import optim
from chainrule.tensor import tensor

KINDS = {
    "sgd": lambda p, lr, wd: optim.SGD(p, lr=lr, weight_decay=wd),
    "nesterov": lambda p, lr, wd: optim.SGD(p, lr=lr, momentum=0.9, nesterov=True,
                                            weight_decay=wd),
    "rmsprop": lambda p, lr, wd: optim.RMSprop(p, lr=lr, weight_decay=wd),
    "adam": lambda p, lr, wd: optim.Adam(p, lr=lr, weight_decay=wd),
    "adamw": lambda p, lr, wd: optim.AdamW(p, lr=lr, weight_decay=wd),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_slice_moves_as_with_its_own_scalars(kind):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4, 5)).astype(np.float32)
    grads = [rng.standard_normal((3, 4, 5)).astype(np.float32) for _ in range(4)]
    lrs, wds = [1e-3, 1e-2, 1e-1], [0.0, 1e-2, 1e-1]
    together = tensor(start.copy(), requires_grad=True)
    opt = KINDS[kind]([together], 1.0, 0.0)
    opt.param_groups[0]["lr"] = np.array(lrs, dtype=np.float32).reshape(3, 1, 1)
    opt.param_groups[0]["weight_decay"] = np.array(wds, dtype=np.float32).reshape(3, 1, 1)
    alone = [tensor(start[k].copy(), requires_grad=True) for k in range(3)]
    opts = [KINDS[kind]([alone[k]], lrs[k], wds[k]) for k in range(3)]
    for g in grads:
        together.grad = g.copy()
        opt.step()
        for k in range(3):
            alone[k].grad = g[k].copy()
            opts[k].step()
    for k in range(3):
        np.testing.assert_allclose(together.data[k], alone[k].data, rtol=1e-5, atol=1e-6)
        assert not np.allclose(together.data[k], start[k])


def test_a_negative_member_learning_rate_is_refused():
    p = tensor(np.zeros((2, 1, 1), dtype=np.float32), requires_grad=True)
    with pytest.raises(optim.OptimizerError, match="lr"):
        optim.SGD([p], lr=np.array([1e-2, -1.0]).reshape(2, 1, 1))
