"""One neuron of a playground network as a graph the backprop player steps through.

For the first training point, the neuron's inputs x1..xn (the previous layer's outputs,
or the input features) are constants, its weights w1..wn and bias b leaves, and its
output a = activation(w1 x1 + ... + wn xn + b) (the output layer has no activation: a
class score, or a regression's value). The numbers are the model's at this moment.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..engine import no_grad
from ..errors import ChainruleError
from ..tensor import tensor
from ..viz.player import player


def neuron_player(session, layer: int, neuron: int) -> str:
    """The player page (HTML) of neuron ``neuron`` of hidden layer ``layer`` (the last
    layer index is the output layer) of ``session``'s model."""
    model = session.model
    modules = list(model)
    linear_at = [i for i, m in enumerate(modules) if isinstance(m, nn.Linear)]
    if not (isinstance(layer, int) and 0 <= layer < len(linear_at)):
        raise ChainruleError(f"no layer {layer}: the network has {len(linear_at)}")
    lin = modules[linear_at[layer]]
    if not (isinstance(neuron, int) and 0 <= neuron < lin.weight.shape[0]):
        raise ChainruleError(f"layer {layer} has no neuron {neuron}")
    following = modules[linear_at[layer] + 1: linear_at[layer] + 2]
    activation = next((m for m in following if not isinstance(m, nn.Linear | nn.Dropout)),
                      None)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            h = tensor(session.data.X_train[:1])
            for m in modules[:linear_at[layer]]:
                h = m(h)
            inputs = np.asarray(h.data[0], dtype=np.float64)
    finally:
        model.train(was_training)
    w_values = np.asarray(lin.weight.data[neuron], dtype=np.float64)
    b_value = float(lin.bias.data[neuron]) if lin.bias is not None else 0.0
    names = (session.config.features if layer == 0
             else [f"h{layer}_{k + 1}" for k in range(len(inputs))])
    xs = [tensor(np.float64(v), name=_safe(n)) for v, n in zip(inputs, names)]
    ws = [tensor(np.float64(v), requires_grad=True, name=f"w{k + 1}")
          for k, v in enumerate(w_values)]
    b = tensor(np.float64(b_value), requires_grad=True, name="b")

    def build():
        z = b
        for w, x in zip(ws, xs):
            z = w * x + z
        return activation(z) if activation is not None else z

    output = "the output value" if session.regression else "a class score"
    kind = (type(activation).__name__ if activation is not None
            else f"{output} (no activation)")
    title = (f"layer {layer + 1}, neuron {neuron + 1}: {kind} of w.x + b, on the first "
             "training point")
    return player(build(), recompute=build, title=title)


def _safe(name: str) -> str:
    return name.replace("^2", "²").replace("*", "·")
