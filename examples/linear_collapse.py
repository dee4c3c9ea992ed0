"""Without a non-linearity, stacked layers collapse: W2 (W1 x + b1) + b2 is one affine map
W x + b with W = W2 W1 and b = W2 b1 + b2. That is why the lecture puts max(0, .) between
the layers.

Run: python examples/linear_collapse.py
"""

import numpy as np

import chainrule as cr
from chainrule import nn

stack = nn.MLP(5, [8, 6], 3, activation=None, seed=0, dtype=cr.float64)
layers = stack.linear_layers()
W, b = np.eye(5), np.zeros(5)
for layer in layers:
    W, b = layer.weight.data @ W, layer.weight.data @ b + layer.bias.data

x = np.random.default_rng(1).standard_normal((4, 5))
print(stack)
print(f"{len(layers)} linear layers == one {W.shape[0]}x{W.shape[1]} matrix:",
      np.allclose(stack(x).data, x @ W.T + b))
assert np.allclose(stack(x).data, x @ W.T + b)

relu_net = nn.MLP(5, [8, 6], 3, activation="relu", seed=0, dtype=cr.float64)
print("with ReLU in between it does not collapse:",
      not np.allclose(relu_net(x).data, x @ W.T + b))
