"""The built-in catalog (YAML files beside this module) and the loader of exercise files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from exercises.errors import ExerciseFormatError
from exercises.spec import ExerciseSpec

CATALOG_DIR = Path(__file__).parent


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(file)"


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """(field path, message) pairs of a pydantic ValidationError, semantic ones unpacked."""
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        if err["type"] == "exercise_semantics" and "problems" in ctx:
            problems += [(str(p), str(m)) for p, m in ctx["problems"]]
        else:
            problems.append((_path(err["loc"]), err["msg"]))
    return problems


def parse_exercise(data: Any, source: str = "") -> ExerciseSpec:
    """Validate already-loaded data as an ExerciseSpec; ExerciseFormatError lists every problem."""
    if not isinstance(data, dict):
        raise ExerciseFormatError([("(file)", "an exercise file must hold a mapping")], source)
    try:
        return ExerciseSpec.model_validate(data)
    except ValidationError as exc:
        raise ExerciseFormatError(problems_of(exc), source) from None


def load_exercise_file(path: str | Path) -> ExerciseSpec:
    """Read and validate one YAML exercise file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise ExerciseFormatError([(where, f"not valid YAML: {exc}")], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ExerciseFormatError([("(file)", f"cannot read: {exc}")], str(path)) from None
    spec = parse_exercise(data, str(path))
    if path.stem != spec.slug:
        raise ExerciseFormatError([("slug", f"must match the file name `{path.stem}`")], str(path))
    return spec


def catalog_paths() -> list[Path]:
    """The built-in exercise files, sorted."""
    return sorted(CATALOG_DIR.glob("*.yaml"))


def load_builtin_catalog() -> list[ExerciseSpec]:
    """Every built-in exercise, validated, in file-name order."""
    specs = [load_exercise_file(p) for p in catalog_paths()]
    slugs = [s.slug for s in specs]
    dupes = sorted({s for s in slugs if slugs.count(s) > 1})
    if dupes:
        raise ExerciseFormatError([("slug", f"used twice: {', '.join(dupes)}")], str(CATALOG_DIR))
    return specs
