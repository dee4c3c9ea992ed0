"""What does the Jacobian look like? The lecture's question, answered with chainrule.

For an elementwise operation such as ReLU, each output depends only on the input at the
same position, so the Jacobian is diagonal, and its diagonal is zero wherever the input
was negative. For a 4096-wide layer on a minibatch of 100 the full Jacobian would be
409,600 x 409,600: backward never builds it, it multiplies the upstream gradient by the
local gradient elementwise.

Run: python examples/jacobian.py
"""

import numpy as np

import chainrule as cr

x = cr.tensor([1.5, -0.5, 2.0, -3.0, 0.7], dtype=cr.float64)
J = cr.autograd.jacobian(cr.relu, x)
print("input:", x.data)
print("Jacobian of relu (5 x 5):")
print(J.data)
assert np.array_equal(J.data, np.diag((x.data > 0).astype(float)))

# backward computes upstream @ J without forming J
upstream = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
_, vjp = cr.autograd.vjp(cr.relu, x, cr.tensor(upstream))
print("upstream @ J          :", upstream @ J.data)
print("vjp (what backward does):", vjp.data)
assert np.allclose(vjp.data, upstream @ J.data)

print(cr.autograd.jacobian_size((100, 4096), (100, 4096)))
