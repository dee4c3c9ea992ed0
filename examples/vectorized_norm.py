"""A vectorized example: f(x, W) = ||W x||^2 = sum_i (W x)_i^2.

By hand: with q = W x, df/dq = 2 q, so df/dW = 2 q x^T and df/dx = 2 W^T q. Each gradient
has the shape of its variable; the Jacobians are never formed.

Run: python examples/vectorized_norm.py
"""

import numpy as np

import chainrule as cr

W = cr.tensor([[0.1, 0.5], [-0.3, 0.8]], requires_grad=True, dtype=cr.float64, name="W")
x = cr.tensor([0.2, 0.4], requires_grad=True, dtype=cr.float64, name="x")

q = W @ x
f = (q * q).sum()
f.backward()

q_np = W.data @ x.data
print(f"q = W x = {q_np},  f = {f.item():.3f}")
print(f"df/dW =\n{W.grad}\n  (by hand 2 q x^T =\n{2 * np.outer(q_np, x.data)})")
print(f"df/dx = {x.grad}  (by hand 2 W^T q = {2 * W.data.T @ q_np})")
assert np.allclose(W.grad, 2 * np.outer(q_np, x.data))
assert np.allclose(x.grad, 2 * W.data.T @ q_np)
