"""The computational graph of an exercise, read from autograd's grad_fn chain, as JSON (torch)."""

from __future__ import annotations

from typing import Any

from exercises.model import Variant
from exercises.spec import ExerciseSpec


def build_graph(spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
    """Nodes (leaves and operations, with forward values and gradients) and edges, for display.

    Edges point the way data flows in the forward pass (input -> operation); the backward
    pass walks them in reverse. Built by traversing `output.grad_fn.next_functions`.
    """
    import torch

    from exercises.lang import torcheval as te

    if not spec.forward.strip():
        return {"nodes": [], "edges": [], "output": None, "forward": {}, "gradients": {}}
    grads = {k: p.requires_grad for k, p in spec.params.items()}
    env = te.leaves(variant.params, grads)
    sites: dict[int, tuple[te.OpSite, torch.Tensor]] = {}
    values = te.run(spec.program(), env, record=sites)
    out = values[spec.output_name]
    named = {id(values[n].grad_fn): n for n in spec.program().names if values[n].grad_fn}
    leaves = {id(env[n]): n for n in spec.params if env[n].requires_grad}
    by_fn = {id(t.grad_fn): (site, t) for site, t in sites.values() if t.grad_fn is not None}
    tensors = [t for _, t in by_fn.values()] + [env[n] for n in spec.params if env[n].requires_grad]
    # A non-scalar output (a custom Function's) is shown with the gradients of its sum.
    gradients = (
        torch.autograd.grad(out, tensors, torch.ones_like(out), allow_unused=True)
        if out.requires_grad
        else []
    )
    grad_of = {id(t): g for t, g in zip(tensors, gradients, strict=True)}

    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, str]] = []
    ids: dict[int, str] = {}

    def visit(fn: Any) -> str:
        key = id(fn)
        if key in ids:
            return ids[key]
        node_id = f"n{len(ids)}"
        ids[key] = node_id
        if hasattr(fn, "variable"):
            tensor = fn.variable
            name = leaves.get(id(tensor))
            nodes.append(
                _node(
                    node_id,
                    "leaf",
                    "AccumulateGrad",
                    name,
                    name or "leaf",
                    tensor,
                    grad_of.get(id(tensor)),
                )
            )
            return node_id
        site, tensor = by_fn.get(key, (None, None))
        label = site.label if site else type(fn).__name__
        nodes.append(
            _node(
                node_id,
                "op",
                type(fn).__name__,
                named.get(key),
                label,
                tensor,
                grad_of.get(id(tensor)) if tensor is not None else None,
            )
        )
        for child, _ in fn.next_functions:
            if child is not None:
                edges.append({"from": visit(child), "to": node_id})
        return node_id

    root = visit(out.grad_fn) if out.grad_fn is not None else None
    return {
        "nodes": nodes,
        "edges": edges,
        "output": root,
        "forward": {k: v.detach().tolist() for k, v in values.items()},
        "gradients": {
            n: (grad_of[id(env[n])].tolist() if grad_of.get(id(env[n])) is not None else None)
            for n in spec.params
            if env[n].requires_grad
        },
    }


def _node(
    node_id: str, kind: str, op: str, name: str | None, label: str, tensor: Any, grad: Any
) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": kind,
        "op": op,
        "name": name,
        "label": label,
        "value": tensor.detach().tolist() if tensor is not None else None,
        "grad": grad.tolist() if grad is not None else None,
    }
