"""The web side of the instructor API never imports torch: validation happens here, the dry
run and regrades in workers."""

from __future__ import annotations

import subprocess
import sys

from tests.service.api.world import World

SCRIPT = """
import sys
from pathlib import Path
import yaml
from service.app import create_app
from service.config import Settings
from tests.service.api.world import authored_spec

database, token, course, assignment = sys.argv[1:5]
folder = Path(database).parent
settings = Settings(database_url=f"sqlite:///{database}", broker_url="memory://",
                    secret_key="x", data_dir=folder, dev=True, grading_mode="celery")
app = create_app(settings, TESTING=True, DRY_RUN_WAIT_SECONDS=0)
client = app.test_client()
h = {"Authorization": f"Bearer {token}"}
statuses = [
    client.get("/api/v1/openapi.json").status_code,
    client.post(f"/api/v1/courses/{course}/exercises/dry-run", json=authored_spec("web-only"),
                headers=h).status_code,
    client.post(f"/api/v1/courses/{course}/exercises", json=authored_spec("web-only"),
                headers=h).status_code,
    client.post(f"/api/v1/courses/{course}/regrade-jobs", json={"assignment_id": int(assignment)},
                headers=h).status_code,
    client.get(f"/api/v1/courses/{course}/gradebook", headers=h).status_code,
    client.get(f"/api/v1/courses/{course}/analytics", headers=h).status_code,
]
print(statuses, "torch" in sys.modules)
"""


def test_the_api_never_imports_torch_in_the_web_process(world: World) -> None:
    argv = [sys.executable, "-c", SCRIPT, str(world.database), world.tokens["instructor"]]
    argv += [str(world.course), str(world.assignment)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[200, 202, 503, 202, 200, 200] False", out.stderr
