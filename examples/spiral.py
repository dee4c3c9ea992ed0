"""Why non-linearity matters: the CS231n spiral, which no linear classifier separates,
solved by a network with one hidden ReLU layer.

Run: python examples/spiral.py   (writes spiral_linear.png and spiral_mlp.png if
matplotlib is installed)
"""

import sys

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import spiral
from chainrule.nn import functional as F

X, y = spiral(n_per_class=100, classes=3, seed=0)


def train(hidden_sizes):
    model = nn.MLP(2, hidden_sizes, 3, seed=0)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(1000):
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with cr.no_grad():
        accuracy = (model(X).data.argmax(axis=1) == y).mean()
    return model, accuracy


linear, linear_acc = train([])
mlp, mlp_acc = train([100])
print(f"linear classifier: {linear_acc:.0%} training accuracy")
print(f"2-layer network:   {mlp_acc:.0%} training accuracy")
assert linear_acc < 0.65 and mlp_acc > 0.98

if "--plot" in sys.argv:
    from chainrule.plots import plot_boundary

    for name, model in (("linear", linear), ("mlp", mlp)):
        path = plot_boundary(lambda P, m=model: m(P).data.argmax(axis=1), X, y,
                             f"spiral_{name}.png", title=f"spiral: {name}")
        print("wrote", path)
