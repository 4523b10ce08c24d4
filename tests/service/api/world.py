"""A small world for API tests: two courses, every role, an assignment with graded work,
an authored exercise, a dry run, a regrade job and an extension; built once per session
into a SQLite file that each test copies."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from exercises.catalog import CATALOG_DIR, parse_exercise
from service.assignments import ItemSpec, create_assignment, grant_extension
from service.authoring import save_version
from service.courses import create_course, enrol, rotate_join_code
from service.data.models import (
    ApiToken,
    CourseRole,
    ExerciseDryRun,
    JobStatus,
    RegradeJob,
    User,
    utcnow,
)
from service.data.session import get_engine, session_scope
from service.submissions import submit
from service.users import create_token, create_user
from tests.support import migrated_sqlite_template

ROLES = ("anonymous", "learner", "ta", "other_instructor", "instructor", "admin")
NEURON = "sigmoid-neuron"
SECOND = "tanh-neuron"


def authored_spec(slug: str, **changes: Any) -> dict[str, Any]:
    """The built-in sigmoid neuron's file, renamed (and changed) for authoring."""
    data: dict[str, Any] = yaml.safe_load((CATALOG_DIR / f"{NEURON}.yaml").read_text())
    data.update(slug=slug, title=f"Authored neuron {slug}", **changes)
    return data


class _NoDispatch:
    def enqueue(self, submission_id: int, queue: str) -> bool:
        return True


@dataclass
class World:
    """Ids and tokens of everything in the world."""

    database: Path
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    course: int = 0
    other_course: int = 0
    join_code: str = ""
    assignment: int = 0
    empty_assignment: int = 0
    submission: int = 0
    token_ids: dict[str, int] = field(default_factory=dict)
    exercise: str = "a101-neuron"
    dry_run: int = 0
    regrade_job: int = 0
    outsider_email: str = ""

    def headers(self, role: str) -> dict[str, str]:
        """Authorization for a role (none for anonymous)."""
        if role == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def build_world(path: Path) -> World:
    """Migrate, load the catalog, and populate the world."""
    migrated_sqlite_template(path)
    url = f"sqlite:///{path}"
    world = World(database=path)
    from worker.grading import grade_submission

    with session_scope(url) as db:
        people: dict[str, User] = {}
        for name, site_role in [
            ("admin", "admin"),
            ("instructor", "instructor"),
            ("other_instructor", "instructor"),
            ("ta", "learner"),
            ("learner", "learner"),
            ("learner2", "learner"),
            ("outsider", "learner"),
        ]:
            user = create_user(db, f"{name}@world.test", "correct-horse", site_role)
            people[name] = user
            world.users[name] = user.id
            world.tokens[name] = create_token(db, user, name="world")
            world.token_ids[name] = (
                db.scalar(select(ApiToken.id).where(ApiToken.user_id == user.id)) or 0
            )
        world.outsider_email = people["outsider"].email
        course = create_course(db, people["instructor"], "a101", "Autograd 101")
        other = create_course(db, people["other_instructor"], "b202", "Another course")
        world.course, world.other_course = course.id, other.id
        world.join_code = rotate_join_code(db, course)
        enrol(db, course, people["ta"], CourseRole.TA)
        enrol(db, course, people["learner"], CourseRole.LEARNER)
        enrol(db, course, people["learner2"], CourseRole.LEARNER)
        spec = parse_exercise(authored_spec(world.exercise))
        save_version(db, course, people["instructor"], spec)
        assignment = create_assignment(
            db,
            course,
            [ItemSpec(NEURON), ItemSpec(SECOND, 2.0), ItemSpec(world.exercise)],
            title="Week 1",
            due_at=utcnow() + timedelta(days=7),
        )
        world.assignment = assignment.id
        world.empty_assignment = create_assignment(
            db, course, [ItemSpec(SECOND)], title="Nobody has started this"
        ).id
        grant_extension(
            db,
            assignment,
            people["learner2"],
            due_at=utcnow() + timedelta(days=9),
            extra_attempts=1,
            reason="illness",
            granted_by=people["instructor"],
        )
        dry = ExerciseDryRun(
            course_id=course.id,
            content_hash=spec.content_hash(),
            spec=spec.model_dump(mode="json"),
            status=JobStatus.DONE,
            result={},
            problems=[],
            finished_at=utcnow(),
        )
        db.add(dry)
        job = RegradeJob(
            course_id=course.id, scope="assignment", target={"assignment_id": assignment.id}
        )
        db.add_all([dry, job])
        db.flush()
        world.dry_run, world.regrade_job = dry.id, job.id
        submission, _ = submit(
            db,
            _NoDispatch(),
            people["learner"],
            NEURON,
            {"answers": {"w": 1, "b": 1, "x": 1}},
            assignment_id=assignment.id,
        )
        world.submission = submission.id
    grade_submission(url, world.submission)
    with get_engine(url).connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    get_engine(url).dispose()
    return world


def copy_world(world: World, to: Path) -> World:
    """The same world in a file of this test's own."""
    shutil.copy(world.database, to)
    return World(**{**world.__dict__, "database": to})
