"""Validation of exercise files for authors and the CLI (`gradschool exercises validate PATH`)."""

from __future__ import annotations

from pathlib import Path

from exercises.catalog import load_exercise_file
from exercises.errors import ExerciseFormatError
from exercises.spec import ExerciseSpec

VARIANT_SEEDS = 20


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")])
    return [path]


def validate_path(path: str | Path, check_reference: bool = True) -> list[str]:
    """Every problem of the exercise file(s) at `path`, as "field: message" strings.

    A directory is searched for *.yaml / *.yml (problems are then prefixed by file).
    With `check_reference` (the default; imports torch) the worked example is also
    graded against autograd, and variants and declared misconceptions are checked.
    """
    path = Path(path)
    if not path.exists():
        return [f"(file): {path} does not exist"]
    files = _files(path)
    if not files:
        return [f"(file): no *.yaml exercise files under {path}"]
    problems: list[str] = []
    slugs: dict[str, Path] = {}
    for file in files:
        prefix = f"{file.relative_to(path)}: " if path.is_dir() else ""
        try:
            spec = load_exercise_file(file)
        except ExerciseFormatError as exc:
            problems += [f"{prefix}{field}: {message}" for field, message in exc.problems]
            continue
        if spec.slug in slugs:
            problems.append(f"{prefix}slug: `{spec.slug}` is also used by {slugs[spec.slug].name}")
        slugs[spec.slug] = file
        if check_reference:
            problems += [f"{prefix}{p}" for p in reference_problems(spec)]
    return problems


def reference_problems(spec: ExerciseSpec) -> list[str]:
    """Problems found only by computing: worked example, variants, misconceptions (torch)."""
    from exercises.registry import get_kind

    kind = get_kind(spec.kind)
    problems: list[str] = []
    fallbacks = sum(
        kind.make_variant(spec, seed).label == "worked-example-fallback"
        for seed in range(VARIANT_SEEDS)
    )
    if fallbacks:
        problems.append(
            f"params: {fallbacks} of {VARIANT_SEEDS} seeds found no acceptable variant "
            "(ranges too wide or degeneracy rules too strict)"
        )
    if kind.answer_type == "code" or not spec.worked_example:
        return problems
    worked = kind.worked_example(spec)
    reference = kind.compute_reference(spec, worked)
    verdict = kind.grade(spec, worked, reference, dict(spec.worked_example))
    for part in verdict.parts:
        if part.part in spec.worked_example and not part.correct:
            problems.append(
                f"worked_example.{part.part}: autograd disagrees ({part.expected!r}): "
                + part.message
            )
    for i, wrong in enumerate(spec.misconceptions):
        if wrong.value is None or (isinstance(wrong.value, str) and spec.kind != "choice"):
            continue
        answer = {**dict(spec.worked_example), wrong.part: wrong.value}
        graded = kind.grade(spec, worked, reference, answer)
        if any(p.part == wrong.part and p.correct for p in graded.parts):
            problems.append(f"misconceptions.{i}.value: this wrong answer is graded right")
    return problems
