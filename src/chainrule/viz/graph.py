"""The computational graph behind a tensor, as plain nodes and edges, with every gradient.

``collect_graph(output)`` walks from ``output`` back to the leaves and returns a ``Graph``:
one ``Node`` per tensor (leaves, operations) and per constant input, and one ``Edge`` per
input of each operation. An edge carries the forward value of its source (what flows
right) and the gradient sent back along it (what flows left). Non-leaf tensors keep no
``.grad``, so the gradients come from a backward pass of our own on the retained graph
that touches no ``.grad`` (``trace_backward``). Drawing (``svg``, ``dot``) and
``explain`` are built on this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import engine
from ..errors import GraphError
from ..tensor import Tensor

INFIX = {"+", "-", "*", "/", "**", "@"}


@dataclass
class Node:
    """One box of the drawing: a leaf, an operation, a constant or the output terminal."""

    id: int
    kind: str  # "leaf", "op", "const" or "output"
    label: str  # the text in the box: a name, an operation symbol or "const"
    name: str | None = None  # the user's name of an intermediate tensor, shown beside it
    value: object = None  # forward value: an ndarray or a Python number
    grad: object = None  # d output / d this node, an ndarray, or None when unknown
    op: str | None = None  # the operation's name, e.g. "multiply"
    info: str = ""  # a longer description (tooltips)


@dataclass
class Edge:
    """An input of an operation: the source's value flows to ``dst``, a gradient flows back."""

    src: int
    dst: int
    slot: int  # which input of ``dst`` this is
    value: object = None
    grad: object = None  # the gradient ``dst`` sends back to ``src`` along this edge


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # captions: how gradients were obtained


@dataclass
class Step:
    """What one tensor did in the backward pass (see ``trace_backward``)."""

    tensor: Tensor
    upstream: np.ndarray
    downstream: tuple | None  # one gradient per input (None where none was sent); None: leaf


# ----- walking the graph ---------------------------------------------------------------
def parents_of(t: Tensor):
    """The inputs of the operation that made ``t``; None for a leaf or a released node."""
    ctx = t._ctx
    if ctx is None:
        return None
    parents = getattr(ctx, "parents", None)
    return None if parents is None else tuple(parents)


def is_released(t: Tensor) -> bool:
    return t._ctx is not None and parents_of(t) is None


def forward_order(output: Tensor) -> list[Tensor]:
    """Every tensor ``output`` was computed from (requiring grad or not), inputs first.

    Iterative depth-first search, so graphs of any depth work; inputs are visited in
    their order, so for ``(x + y) * z`` the order is x, y, x + y, z, output.
    """
    order, seen = [], set()
    stack = [(output, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        for p in reversed(parents_of(t) or ()):
            if isinstance(p, Tensor) and id(p) not in seen:
                stack.append((p, False))
    return order


def given_labels(names=None) -> dict[int, str]:
    """id -> label from a ``names`` argument: {label: Tensor, array or Module}; a Module
    labels each of its parameters "<label>.<parameter name>"."""
    from ..nn import Module

    labels = {}
    for label, obj in (names or {}).items():
        if isinstance(obj, Module):
            for name, p in obj.named_parameters():
                labels[id(p)] = f"{label}.{name}" if label else name
        else:
            labels[id(obj)] = str(label)
    return labels


def label_for(obj, given: dict[int, str]) -> str | None:
    """A label for ``obj``: from ``names``, else its ``name``, else the one a model call
    gave it (a parameter's name in ``named_parameters()``, the batch "X")."""
    from ..nn.module import label_of

    if id(obj) in given:
        return given[id(obj)]
    return getattr(obj, "name", None) or label_of(obj)


def tensor_names(order: list[Tensor], output: Tensor, names=None) -> dict[int, str]:
    """A readable name for each tensor: from ``names`` (see ``given_labels``), its
    ``name``, a model's parameter name, else x0, x1... for leaves, t1, t2... for
    intermediate results and ``out`` for the output."""
    given = given_labels(names)
    labelled = {id(t): label_for(t, given) for t in order}
    taken = {v for v in labelled.values() if v}
    names, counters = {}, {"x": 0, "t": 1}

    def fresh(prefix):
        while f"{prefix}{counters[prefix]}" in taken:
            counters[prefix] += 1
        label = f"{prefix}{counters[prefix]}"
        counters[prefix] += 1
        return label

    for t in order:
        if labelled[id(t)]:
            names[id(t)] = labelled[id(t)]
        elif t is output and t._ctx is not None:
            names[id(t)] = "out" if "out" not in taken else fresh("t")
        else:
            names[id(t)] = fresh("x" if t._ctx is None else "t")
    return names


def trace_backward(output: Tensor, gradient=None) -> list[Step]:
    """Backpropagate from ``output`` on a retained graph, touching no ``.grad``.

    Returns one ``Step`` per tensor reached, in backward order (output first). The seed is
    ``gradient`` or, for an output with several elements, ones (the gradients of
    ``output.sum()``). Raises ``GraphError`` if an earlier ``backward()`` released the graph.
    """
    if not output.requires_grad:
        raise GraphError("the output does not require grad: none of the tensors it was "
                         "computed from has requires_grad=True, or it was computed under "
                         "no_grad(); there is no backward pass to show")
    seed = (np.ones(output.shape, dtype=output.dtype) if gradient is None
            else engine._seed_gradient(output, gradient, "explain"))
    steps = []

    def observe(t, upstream, downstream):
        # copies: the engine may add into its own buffers after we have seen them
        up = np.array(_array(upstream), copy=True)
        down = None if downstream is None else tuple(
            None if d is None else np.array(_array(d), copy=True) for d in downstream)
        steps.append(Step(t, up, down))

    engine.run_backward([output], [seed], retain_graph=True, capture=[], observer=observe,
                        allow_released=True)
    return steps


def _array(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# ----- the graph model -------------------------------------------------------------------
def collect_graph(output: Tensor, show_grad: bool = True, names=None) -> Graph:
    """The nodes and edges of ``output``'s graph, with values and (if asked) gradients.

    While the graph is alive every node's gradient is computed by ``trace_backward``; after
    a ``backward()`` that released it only the leaves' ``.grad`` are known (a note says so).
    """
    order = forward_order(output)
    given = given_labels(names)
    names = tensor_names(order, output, names)
    graph, index = Graph(), {}
    released = any(is_released(t) for t in order)
    for t in order:  # nodes in topological order: constants just before their consumer
        sources = []
        for p in parents_of(t) or ():
            if isinstance(p, Tensor):
                sources.append(index[id(p)])
            else:
                sources.append(len(graph.nodes))
                label = label_for(p, given)
                graph.nodes.append(Node(len(graph.nodes), "const", label or "const",
                                        value=_plain(p),
                                        info=f"{label or 'constant'} {format_value(_plain(p))}"))
        node = _tensor_node(len(graph.nodes), t, names[id(t)], t is output,
                            labelled=label_for(t, given) is not None)
        index[id(t)] = node.id
        graph.nodes.append(node)
        for slot, src in enumerate(sources):
            graph.edges.append(Edge(src, node.id, slot, value=graph.nodes[src].value))
    out_node = Node(len(graph.nodes), "output", output.name or "output",
                    value=output.data, info="the output")
    graph.nodes.append(out_node)
    graph.edges.append(Edge(index[id(output)], out_node.id, 0, value=output.data))
    if show_grad:
        _add_gradients(graph, output, order, index, released)
    return graph


def _tensor_node(nid: int, t: Tensor, name: str, is_output: bool, labelled: bool) -> Node:
    shape = f"shape {t.shape}, {t.dtype}"
    if t._ctx is None:
        grad_note = "" if t.requires_grad else ", requires_grad=False"
        return Node(nid, "leaf", name, value=t.data, info=f"{name}: leaf, {shape}{grad_note}")
    fn = t._ctx.fn
    label = fn.symbol
    shown_name = name if (labelled and not is_output) else None
    state = " (released by backward())" if is_released(t) else ""
    return Node(nid, "op", label, name=shown_name, value=t.data, op=fn.name,
                info=f"{name} = {fn.name}(...): {shape}{state}")


def _add_gradients(graph: Graph, output: Tensor, order, index, released: bool):
    out_node = graph.nodes[-1]
    if released or not output.requires_grad:
        for t in order:
            if t._ctx is None and t.grad is not None:
                graph.nodes[index[id(t)]].grad = _array(t.grad)
        for e in graph.edges:
            e.grad = graph.nodes[e.src].grad if graph.nodes[e.src].kind == "leaf" else None
        if released:
            seen = ("only the leaves' .grad are shown" if any(t._ctx is None for t in order)
                    else "what it was computed from can no longer be reached")
            graph.notes.append(f"the graph was released by backward(): {seen}; draw before "
                               "backward(), or call backward(retain_graph=True), to see "
                               "every node and gradient")
        return
    steps = trace_backward(output)
    sent = {}
    for step in steps:
        graph.nodes[index[id(step.tensor)]].grad = step.upstream
        if step.downstream is not None:
            sent[id(step.tensor)] = step.downstream
    by_node = {index[id(t)]: t for t in order}
    for e in graph.edges:
        if e.dst == out_node.id:
            e.grad = graph.nodes[e.src].grad
            out_node.grad = e.grad
            continue
        downstream = sent.get(id(by_node[e.dst]))
        if downstream is not None and e.slot < len(downstream):
            e.grad = downstream[e.slot]
    if output.size != 1:
        graph.notes.append(f"the output has shape {output.shape}: gradients shown are those "
                           "of output.sum() (upstream gradient of ones)")


def _plain(x):
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):
        return x.item()
    return x


# ----- short text for values ---------------------------------------------------------------
def format_number(v, digits: int = 3) -> str:
    """A number in a few characters: integers in full (-12), others to ``digits``
    significant digits (0.731, -1.5e-05)."""
    v = float(v)
    if np.isfinite(v) and v == round(v) and abs(v) < 1e7:
        return str(int(v)) if v != 0 else "0"
    text = f"{v:.{digits}g}"
    return text.replace("e-0", "e-").replace("e+0", "e+")


def format_value(x, inline: int = 4) -> str:
    """A value in one short line: a number in full; an array as shape and mean/std
    (``(64, 100) μ=0.01 σ=1``), or its elements when it has at most ``inline`` of them."""
    if x is None:
        return ""
    if isinstance(x, bool | int | float | np.generic):
        return format_number(x)
    a = np.asarray(x)
    if a.size == 1:
        return format_number(a.reshape(()).item() if a.dtype.kind in "biuf" else 0)
    if a.dtype.kind not in "biuf":
        return f"{a.shape} {a.dtype}"
    if 0 < a.size <= inline:
        return "[" + ", ".join(format_number(v) for v in a.reshape(-1)) + "]"
    if a.size == 0:
        return f"{a.shape} empty"
    with np.errstate(all="ignore"):
        mean, std = float(a.mean(dtype=np.float64)), float(a.std(dtype=np.float64))
        if np.isfinite(mean) and abs(mean) <= 1e-6 * float(np.max(np.abs(a))):
            mean = 0.0  # rounding noise such as 1e-17 would only distract
    return f"{a.shape} μ={format_number(mean, 2)} σ={format_number(std, 2)}"
