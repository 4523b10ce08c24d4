"""The built-in catalog covers the notes and is well formed."""

from __future__ import annotations

import json

from exercises.registry import get_kind
from exercises.spec import ExerciseSpec

NOTES_TOPICS = {
    "autograd-basics",  # what autograd is and does
    "why-gradients",
    "why-differentiation",
    "nested-functions",  # nested functions as layers
    "training-loop",  # forward, loss, backward, update
    "when-gradients",  # when gradients are computed
}


def test_size_and_topics(catalog: dict[str, ExerciseSpec]) -> None:
    assert len(catalog) >= 25
    topics = {t for s in catalog.values() for t in s.topics}
    assert topics >= NOTES_TOPICS | {"losses", "tensors", "chain-rule"}
    tags = {t for s in catalog.values() for t in s.tags}
    assert {
        "mse",
        "bce",
        "cross-entropy",
        "relu",
        "kink",
        "tanh",
        "broadcasting",
        "reduction",
    } <= tags
    kinds = {s.kind for s in catalog.values()}
    assert len(kinds) == 10


def test_every_exercise_is_complete(catalog: dict[str, ExerciseSpec]) -> None:
    for spec in catalog.values():
        kind = get_kind(spec.kind)
        assert "$" in spec.statement, spec.slug
        if spec.kind not in ("choice", "autograd_function"):
            assert set(spec.worked_example) == {p.name for p in spec.parts}, spec.slug
        view = kind.learner_view(spec, kind.make_variant(spec, 0))
        json.dumps(view)
        assert set(view) >= {"title", "statement", "forward_code", "params", "parts"}
        for part in view["parts"]:
            assert part["input"] in {"number", "tensor", "formula", "choice", "code"}


def test_nested_chains_of_three_and_four_functions(catalog: dict[str, ExerciseSpec]) -> None:
    lengths = {s.slug: len(s.program().assigns) for s in catalog.values() if s.forward.strip()}
    assert lengths["nested-chain"] == 4 and lengths["sigmoid-neuron"] == 3
    assert lengths["two-layer-net"] >= 4


def test_variants_are_fast_and_torch_free_work(catalog: dict[str, ExerciseSpec]) -> None:
    import time

    for spec in catalog.values():
        kind = get_kind(spec.kind)
        kind.make_variant(spec, 0)
        start = time.perf_counter()
        for seed in range(20):
            kind.make_variant(spec, seed)
        per_variant = (time.perf_counter() - start) / 20
        assert per_variant < 0.05, (spec.slug, per_variant)  # ~1 ms typical; generous for CI


LISTED = {"numeric_gradients", "tensor_gradients", "chain_rule", "update_step", "accumulation"}


def test_the_listing_the_learner_reads_is_real_pytorch(catalog: dict[str, ExerciseSpec]) -> None:
    """The learner's listing, run by PyTorch, leaves the reference's answers in .grad."""
    import numpy as np
    import torch

    for spec in catalog.values():
        if spec.kind not in LISTED:
            continue
        kind = get_kind(spec.kind)
        variant = kind.make_variant(spec, 5)
        env: dict[str, object] = {}
        exec(kind.learner_view(spec, variant)["forward_code"], env)  # trusted catalog, tests only
        ref = kind.compute_reference(spec, variant)
        for part in spec.parts:
            if part.wrt not in spec.params or (part.of or spec.output_name) != spec.output_name:
                continue
            leaf = env[part.wrt]
            assert isinstance(leaf, torch.Tensor)
            got = leaf.detach() if spec.kind == "update_step" else leaf.grad
            assert got is not None, (spec.slug, part.name)
            assert np.allclose(got.numpy(), ref["values"][part.name], rtol=1e-12), spec.slug
