"""The lecture's first computational graph, f(x, y, z) = (x + y) * z, and the gate patterns.

Run: python examples/gates.py
"""

import chainrule as cr

x = cr.tensor(-2.0, requires_grad=True, name="x")
y = cr.tensor(5.0, requires_grad=True, name="y")
z = cr.tensor(-4.0, requires_grad=True, name="z")

q = x + y          # q = 3
f = q * z          # f = -12
f.backward()

print(f"forward:  q = x + y = {(x + y).item():g},  f = q * z = {f.item():g}")
print(f"backward: df/dx = {x.grad:g}, df/dy = {y.grad:g}, df/dz = {z.grad:g}")

# add gate: distributes the upstream gradient (df/dq = z = -4) to both inputs unchanged
assert x.grad == y.grad == z.item()
# multiply gate: swaps; each input's gradient is the other input times the upstream (1)
assert z.grad == (x + y).item()

# max gate: routes the whole gradient to the larger input
a = cr.tensor(4.0, requires_grad=True)
b = cr.tensor(-1.0, requires_grad=True)
cr.maximum(a, b).backward()
print(f"max gate: d max(a, b)/da = {a.grad:g}, d/db = {b.grad:g}")
assert (a.grad, b.grad) == (1.0, 0.0)

# copy gate: a value used twice receives the sum of both gradients
w = cr.tensor(3.0, requires_grad=True)
(w * w).backward()   # d(w^2)/dw = w + w
print(f"copy gate: d(w*w)/dw = {w.grad:g}")
assert w.grad == 6.0
