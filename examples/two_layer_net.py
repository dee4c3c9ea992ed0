"""The lecture's two-layer network "in about 20 lines", with chainrule computing the
gradients that the lecture derives by hand.

Run: python examples/two_layer_net.py
"""

import chainrule as cr

N, D_in, H, D_out = 64, 1000, 100, 10
rng = cr.as_generator(0)
x, y = cr.randn(N, D_in, seed=rng, dtype=cr.float64), cr.randn(N, D_out, seed=rng, dtype=cr.float64)
w1 = cr.randn(D_in, H, seed=rng, dtype=cr.float64, requires_grad=True)
w2 = cr.randn(H, D_out, seed=rng, dtype=cr.float64, requires_grad=True)

losses = []
for _ in range(200):
    h = cr.sigmoid(x @ w1)
    y_pred = h @ w2
    loss = ((y_pred - y) ** 2).sum()
    losses.append(loss.item())

    loss.backward()                      # replaces the four lines of hand-derived gradients
    with cr.no_grad():
        w1.data -= 1e-4 * w1.grad        # gradient descent
        w2.data -= 1e-4 * w2.grad
    w1.grad = w2.grad = None

print(f"loss at step 0: {losses[0]:.1f}, at step {len(losses) - 1}: {losses[-1]:.1f}")
assert losses[-1] < 0.5 * losses[0]
