"""The web process's entry points never import torch."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
import exercises
assert 'torch' not in sys.modules, 'import exercises'
from exercises.catalog import load_builtin_catalog
from exercises.registry import get_kind
from exercises.spec import ExerciseSpec
for spec in load_builtin_catalog():
    kind = get_kind(spec.kind)
    variant = kind.make_variant(spec, 7)
    kind.worked_example(spec)
    kind.learner_view(spec, variant)
    ExerciseSpec.model_validate(spec.model_dump(mode="json")).content_hash()
    if kind.answer_type == "code":
        kind.validate_answer(spec, {"code": "x = 1"})
    else:
        kind.validate_answer(spec, {})
try:
    from exercises.formula import preview
except ImportError:
    pass
else:
    for spec in load_builtin_catalog():
        preview(spec, "x * (1 - x)")
print('torch' in sys.modules)
"""


def test_web_side_api_never_imports_torch() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False", out.stderr
