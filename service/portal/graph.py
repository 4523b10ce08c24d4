"""The computational graph the portal draws: built torch-free from the forward code, laid out
in rows (inputs at the top, the loss at the bottom), and annotated after grading with
autograd's gradient at every node (computed by the worker) and the learner's answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exercises.lang.ir import Assign, Name, Node, Op
from exercises.lang.numeric import EvalError, eval_formula, run_program
from exercises.lang.render import to_source
from exercises.spec import ExerciseSpec

NODE_WIDTH = 216
LINE_HEIGHT = 17
PAD = 10
GAP_X = 24
GAP_Y = 38


@dataclass
class GraphNode:
    """One node: a leaf tensor, a constant input, or an operation of the forward code."""

    id: str
    type: str  # "leaf" (requires_grad), "input" (no grad) or "op"
    label: str  # the source text learners read, e.g. `w * x + b`
    name: str | None = None  # the assigned or parameter name, e.g. `z`
    value: Any = None
    grad: Any = None  # d(output)/d(node) from autograd, once graded
    answers: list[dict[str, Any]] = field(default_factory=list)
    broke: dict[str, Any] | None = None  # the diagnosis that names this node
    x: int = 0
    y: int = 0
    height: int = 0

    @property
    def lines(self) -> list[str]:
        """The text lines drawn inside the box (after the title)."""
        out = [f"value {fmt(self.value)}"]
        if self.grad is not None:
            out.append(f"∂L/∂{self.name or '·'} {fmt(self.grad)}")
        for answer in self.answers:
            mark = "✓" if answer["correct"] else "✗"
            out.append(f"{answer['part']}: you {fmt(answer['given'])} {mark}")
        if self.broke is not None:
            out.append("⚠ the chain broke here")
        return out

    @property
    def title(self) -> str:
        """Name and operation, e.g. `z = w * x + b`, or just `w`."""
        if self.name and self.type == "op":
            return f"{self.name} = {self.label}"
        return self.name or self.label


@dataclass
class Graph:
    """Nodes and forward edges (input -> consumer), with an SVG canvas size once laid out."""

    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    output: str | None
    width: int = 0
    height: int = 0

    def node(self, node_id: str) -> GraphNode:
        """The node with this id."""
        return next(n for n in self.nodes if n.id == node_id)

    def named(self, name: str) -> GraphNode | None:
        """The node a parameter or assignment name refers to."""
        return next((n for n in self.nodes if n.name == name), None)

    def edge_paths(self) -> list[dict[str, Any]]:
        """Each edge as SVG coordinates: from the bottom of the input to the top of the use."""
        out = []
        for src, dst in self.edges:
            a, b = self.node(src), self.node(dst)
            out.append(
                {
                    "x1": a.x + NODE_WIDTH // 2,
                    "y1": a.y + a.height,
                    "x2": b.x + NODE_WIDTH // 2,
                    "y2": b.y - 4,
                    "on_broken_path": a.broke is not None or b.broke is not None,
                }
            )
        return out


def fmt(value: Any) -> str:
    """A value for a node box: 4 significant figures, or a tensor's shape and first entries."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:.4g}"
    if isinstance(value, str):
        return value if len(value) <= 14 else value[:13] + "…"
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return f"{float(arr):.4g}"
    shape = "\u00d7".join(str(d) for d in arr.shape)  # the multiplication sign
    head = ", ".join(f"{v:.3g}" for v in arr.ravel()[:2])
    more = ", …" if arr.size > 2 else ""
    return f"[{shape}] {head}{more}"


def forward_graph(spec: ExerciseSpec, params: dict[str, Any]) -> Graph | None:
    """The graph of the forward code with forward values (None for kinds without one)."""
    if not spec.forward.strip():
        return None
    program = spec.program()
    try:
        values = run_program(program, params).values
    except EvalError:
        return None
    nodes: list[GraphNode] = []
    edges: list[tuple[str, str]] = []
    by_name: dict[str, str] = {}
    for name, param in spec.params.items():
        node_id = f"n{len(nodes)}"
        kind = "leaf" if param.requires_grad else "input"
        nodes.append(GraphNode(node_id, kind, name, name=name, value=_plain(values[name])))
        by_name[name] = node_id

    def visit(expr: Node, assign: Assign, top: bool) -> str | None:
        if isinstance(expr, Name):
            return by_name.get(expr.id)
        if not isinstance(expr, Op):  # a constant: folded into its user's label
            return None
        inputs = [visit(arg, assign, False) for arg in expr.args]
        node_id = f"n{len(nodes)}"
        try:
            value = _plain(eval_formula(expr, values))
        except EvalError:
            value = None
        name = assign.target if top else None
        nodes.append(GraphNode(node_id, "op", to_source(expr), name=name, value=value))
        for src in inputs:
            if src is not None and (src, node_id) not in edges:
                edges.append((src, node_id))
        return node_id

    for assign in program.assigns:
        found = visit(assign.expr, assign, True)
        if found is not None:
            by_name[assign.target] = found
    graph = Graph(nodes, edges, by_name.get(spec.output_name))
    layout(graph)
    return graph


def _plain(value: Any) -> Any:
    arr = np.asarray(value, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr.tolist()


def add_gradients(graph: Graph, autograd_graph: dict[str, Any]) -> None:
    """Copy autograd's d(output)/d(node) onto matching nodes (leaves by name, ops by source)."""
    leaves = {n["name"]: n for n in autograd_graph.get("nodes", []) if n.get("type") == "leaf"}
    ops: dict[str, list[dict[str, Any]]] = {}
    for n in autograd_graph.get("nodes", []):
        if n.get("type") == "op":
            ops.setdefault(n.get("label", ""), []).append(n)
    for node in graph.nodes:
        if node.type in ("leaf", "input") and node.name in leaves:
            node.grad = leaves[node.name].get("grad")
        elif node.type == "op" and ops.get(node.label):
            node.grad = ops[node.label].pop(0).get("grad")
    layout(graph)


def annotate(graph: Graph, answers: list[dict[str, Any]], diagnoses: list[dict[str, Any]]) -> None:
    """Put each answered part beside the node it is about, and mark where the chain broke."""
    for answer in answers:
        node = graph.named(answer["wrt"]) if answer.get("wrt") else None
        if node is not None:
            node.answers.append(answer)
    for diagnosis in diagnoses:
        node = graph.named(str(diagnosis.get("node") or ""))
        if node is not None and node.broke is None:
            node.broke = diagnosis
    layout(graph)


def layout(graph: Graph) -> None:
    """Rows by the longest path to the output (the loss at the bottom), then box positions.

    Within a row, nodes sit in the order of the nodes that use them, which keeps
    edges from crossing for the small trees these exercises have.
    """
    users: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for src, dst in graph.edges:
        users[src].append(dst)
    depth: dict[str, int] = {}

    def depth_of(node_id: str) -> int:
        if node_id not in depth:
            depth[node_id] = 0  # guards against cycles, which forward code cannot have
            depth[node_id] = max((depth_of(u) + 1 for u in users[node_id]), default=0)
        return depth[node_id]

    for n in graph.nodes:
        depth_of(n.id)
    deepest = max(depth.values(), default=0)
    rows: list[list[GraphNode]] = [[] for _ in range(deepest + 1)]
    for n in graph.nodes:
        rows[deepest - depth[n.id]].append(n)
    order: dict[str, float] = {}
    for row in reversed(rows):  # from the output up: place inputs under their users' order
        row.sort(key=lambda n: min((order.get(u, 0.0) for u in users[n.id]), default=0.0))
        for i, n in enumerate(row):
            order[n.id] = i + 0.5 * min((order.get(u, 0.0) for u in users[n.id]), default=0.0)
    widest = max((len(r) for r in rows), default=0)
    graph.width = max(widest * (NODE_WIDTH + GAP_X) - GAP_X + 2 * PAD, NODE_WIDTH + 2 * PAD)
    y = PAD
    for row in rows:
        row_width = len(row) * (NODE_WIDTH + GAP_X) - GAP_X
        x = (graph.width - row_width) // 2
        tallest = 0
        for n in row:
            n.height = 2 * PAD + LINE_HEIGHT * (1 + len(n.lines))
            n.x, n.y = x, y
            x += NODE_WIDTH + GAP_X
            tallest = max(tallest, n.height)
        y += tallest + GAP_Y
    graph.height = y - GAP_Y + PAD
