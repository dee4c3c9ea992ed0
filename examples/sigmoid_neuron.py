"""The sigmoid neuron of the lecture, f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))),
backpropagated gate by gate, and again with the sigmoid as one node whose local gradient
is sigma(1 - sigma).

Run: python examples/sigmoid_neuron.py
"""

import chainrule as cr

values = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
t = {k: cr.tensor(v, requires_grad=True, name=k, dtype=cr.float64) for k, v in values.items()}

# Gate by gate: *, +, *, +, then -1 *, exp, + 1, 1 / ...
dot = t["w0"] * t["x0"] + t["w1"] * t["x1"] + t["w2"]
f = 1.0 / (1.0 + cr.exp(-dot))
f.backward()
by_gates = {k: float(v.grad) for k, v in t.items()}

# The same with the sigmoid gate: its local gradient is f (1 - f) = 0.73 * 0.27 = 0.2
for v in t.values():
    v.grad = None
g = cr.sigmoid(t["w0"] * t["x0"] + t["w1"] * t["x1"] + t["w2"])
g.backward()
by_sigmoid = {k: float(v.grad) for k, v in t.items()}

print(f"f = {f.item():.2f}; local gradient of the sigmoid gate = {g.item() * (1 - g.item()):.2f}")
for k in values:
    print(f"  df/d{k:2} = {by_gates[k]:+.2f} (gate by gate)   {by_sigmoid[k]:+.2f} (sigmoid node)")
    assert abs(by_gates[k] - by_sigmoid[k]) < 1e-12
assert abs(by_gates["x0"] - 0.39) < 0.01 and abs(by_gates["w0"] + 0.20) < 0.01
