"""Long-running processes move their start-up objects out of the collector's way
(service/ops/gc_tuning.py): each check runs in a fresh interpreter, as the process starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

REPORT = "import gc, json; print(json.dumps([gc.get_freeze_count(), len(gc.get_objects())]))"


def _fresh(code: str, tmp_path: Path, **extra_env: str) -> tuple[int, int]:
    """Run `code` then REPORT in a new interpreter; (objects frozen, objects still tracked)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "SECRET_KEY": "gc-test",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gc.db'}",
        "GRADSCHOOL_DATA_DIR": str(tmp_path),
        **extra_env,
    }
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    frozen, tracked = json.loads(out.strip().splitlines()[-1])
    return frozen, tracked


def test_a_bare_interpreter_freezes_nothing(tmp_path: Path) -> None:
    frozen, _ = _fresh("pass", tmp_path)
    assert frozen == 0  # the checks below see the code's freeze, not the interpreter's


def test_the_web_app_freezes_its_start_up_objects(tmp_path: Path) -> None:
    frozen, tracked = _fresh("import service.wsgi", tmp_path)
    # Flask, SQLAlchemy's mappers, pydantic/spectree models: >100k objects, a full
    # collection of which took 60-170 ms with the GIL held under load.
    assert frozen > 50_000
    assert tracked < frozen // 20


def test_the_inline_baseline_web_freezes_torch_too(tmp_path: Path) -> None:
    # GRADING_MODE=inline grades in the web process: it warms torch up before the freeze,
    # or its collections would still walk torch and sympy.
    frozen, tracked = _fresh("import service.wsgi", tmp_path, GRADING_MODE="inline")
    assert frozen > 150_000
    assert tracked < frozen // 20


def test_the_grading_worker_freezes_torch_after_warming_up(tmp_path: Path) -> None:
    frozen, tracked = _fresh("from worker.celery_app import _warm_up\n_warm_up()", tmp_path)
    assert frozen > 150_000  # torch and sympy are in the permanent generation
    assert tracked < frozen // 20
