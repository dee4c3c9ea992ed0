"""An MLP as a standard ONNX model, runnable by any ONNX runtime.

The network is walked layer by layer (``Sequential`` and ``MLP``, nested or not): each
``Linear`` becomes a ``Gemm`` whose weight and bias keep their ``state_dict`` names, each
activation the ONNX operators that compute the same function, and ``Dropout`` and
``Identity`` disappear (at inference they do nothing). A run's input scaling can be put in
front, so the exported model takes the features as the data set gives them. ``onnx`` is an
optional extra (``pip install "chainrule[onnx]"``), imported only when exporting.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes
from ..errors import ExportError
from ..nn import (
    ELU,
    GELU,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)

OPSET = 17  # every operator used here exists unchanged since opset 13


def _onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ExportError('ONNX export needs the onnx package; install it with: '
                          'pip install "chainrule[onnx]"') from exc
    return onnx


def _layers(module: Module, prefix=""):
    """(dotted name, layer) for every leaf layer in order, descending into Sequentials."""
    if type(module) is Sequential or isinstance(module, Sequential) and \
            type(module).forward is Sequential.forward:
        for name, child in module._modules.items():
            yield from _layers(child, f"{prefix}{name}.")
    else:
        yield prefix.rstrip("."), module


SUPPORTED = ("Linear, ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh, Softmax, LogSoftmax, "
             "Flatten, Identity, and Dropout (removed)")


class _Graph:
    """Nodes and initializers appended in order, each value given a fresh name."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes, self.initializers, self.count = [], [], 0

    def fresh(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, name, value):
        array = np.asarray(value, dtype=self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type, inputs, hint, **attributes):
        out = self.fresh(hint)
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out],
                                                     name=out, **attributes))
        return out


def _activation(g: _Graph, layer, x, name):
    """The ONNX operators computing ``layer`` on the value named ``x``; returns the output."""
    kind = type(layer)
    if kind is ReLU:
        return g.op("Relu", [x], name)
    if kind is Sigmoid:
        return g.op("Sigmoid", [x], name)
    if kind is Tanh:
        return g.op("Tanh", [x], name)
    if kind is LeakyReLU:
        return g.op("LeakyRelu", [x], name, alpha=float(layer.negative_slope))
    if kind is ELU:
        return g.op("Elu", [x], name, alpha=float(layer.alpha))
    if kind is SiLU:  # x sigma(x)
        return g.op("Mul", [x, g.op("Sigmoid", [x], name)], name)
    if kind is GELU:
        half = g.constant(f"{name}.half", 0.5)
        one = g.constant(f"{name}.one", 1.0)
        if layer.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            cube = g.op("Mul", [x, g.op("Mul", [x, x], name)], name)
            inner = g.op("Add", [x, g.op("Mul", [cube, g.constant(f"{name}.c", 0.044715)],
                                         name)], name)
            inner = g.op("Mul", [inner, g.constant(f"{name}.k", math.sqrt(2 / math.pi))], name)
            squash = g.op("Tanh", [inner], name)
        else:  # exact: 0.5 x (1 + erf(x / sqrt 2))
            scaled = g.op("Mul", [x, g.constant(f"{name}.k", math.sqrt(0.5))], name)
            squash = g.op("Erf", [scaled], name)
        return g.op("Mul", [g.op("Mul", [x, half], name), g.op("Add", [squash, one], name)],
                    name)
    if kind is Softmax:
        return g.op("Softmax", [x], name, axis=int(layer.dim))
    if kind is LogSoftmax:
        return g.op("LogSoftmax", [x], name, axis=int(layer.dim))
    return None


def to_onnx(model: Module, path, scaler=None, input_name="input",
            output_name="logits") -> Path:
    """Write ``model`` to ``path`` as an ONNX model (opset 17, float32); returns the path.

    The model maps ``input`` (N, D) to ``logits`` (N, C), N free, D the first ``Linear``'s
    ``in_features``. ``scaler`` (a fitted ``data.Standardize`` or its ``state_dict()``)
    puts (x - mean) / std in front. A layer the exporter cannot express raises
    ``ExportError`` naming the layer; so does a model that is not built from
    ``Sequential`` layers, since its ``forward`` could do anything.
    """
    onnx = _onnx()
    if not isinstance(model, Module):
        raise ExportError(f"to_onnx: expected a Module, got {type(model).__name__}")
    layers = list(_layers(model))
    if layers == [("", model)] and type(model) is not Linear:
        raise ExportError(f"cannot export {type(model).__name__}: the exporter follows "
                          "Sequential (or MLP) models layer by layer, and this model's own "
                          "forward could compute anything; build it from nn.Sequential")
    linears = [layer for _, layer in layers if type(layer) is Linear]
    if not linears:
        raise ExportError("cannot export a model without a Linear layer (its input size "
                          "is unknown)")
    g = _Graph(onnx, np.float32)
    x, width = input_name, linears[0].in_features
    if scaler is not None:
        state = scaler.state_dict() if hasattr(scaler, "state_dict") else scaler
        mean, std = np.asarray(state["mean"]), np.asarray(state["std"])
        if mean.shape != (width,) or std.shape != (width,):
            raise ExportError(f"the scaler has {mean.shape} features, the model {width}")
        x = g.op("Sub", [x, g.constant("scaler.mean", mean)], "standardize")
        x = g.op("Div", [x, g.constant("scaler.std", std)], "standardize")
    for name, layer in layers:
        kind = type(layer)
        if kind in (Dropout, Identity):
            continue
        if kind is Flatten:
            x = g.op("Flatten", [x], name or "flatten", axis=int(layer.start_dim))
        elif kind is Linear:
            inputs = [x, g.constant(f"{name}.weight" if name else "weight", layer.weight.data)]
            if layer.bias is not None:
                inputs.append(g.constant(f"{name}.bias" if name else "bias", layer.bias.data))
            x = g.op("Gemm", inputs, name or "linear", transB=1)
        else:
            out = _activation(g, layer, x, name or kind.__name__.lower())
            if out is None:
                where = f"layer {name!r} ({kind.__name__})" if name else kind.__name__
                raise ExportError(f"cannot export {where}: ONNX export supports {SUPPORTED}")
            x = out
    g.nodes.append(onnx.helper.make_node("Identity", [x], [output_name], name=output_name))
    width_out = linears[-1].out_features
    float32 = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        g.nodes, "chainrule_mlp",
        [onnx.helper.make_tensor_value_info(input_name, float32, ["N", width])],
        [onnx.helper.make_tensor_value_info(output_name, float32, ["N", width_out])],
        initializer=g.initializers)
    proto = onnx.helper.make_model(graph, producer_name="chainrule",
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    proto.ir_version = 8  # the IR version of opset 17, read by runtimes old and new
    onnx.checker.check_model(proto, full_check=True)
    return atomic_write_bytes(path, proto.SerializeToString())
