"""SQLAlchemy 2.0 typed models; singular classes, plural tables."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite drops the zone; we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to naive values read back from SQLite."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: UTCDateTime(),
    }


class Role(enum.StrEnum):
    """Site-wide role of a user."""

    LEARNER = "learner"
    INSTRUCTOR = "instructor"
    ADMIN = "admin"


class CourseRole(enum.StrEnum):
    """A user's role in one course (the site-wide admin role overrides all)."""

    INSTRUCTOR = "instructor"
    TA = "ta"
    LEARNER = "learner"


class LatePolicy(enum.StrEnum):
    """What happens to a submission after the due date."""

    REJECT = "reject"
    ACCEPT = "accept"
    PENALTY = "penalty"


class FeedbackPolicy(enum.StrEnum):
    """When a learner sees per-part correctness, diagnosis and score (exams hide them)."""

    IMMEDIATE = "immediate"
    AFTER_DUE = "after_due"
    NEVER = "never"


class JobStatus(enum.StrEnum):
    """Life of a background job (a regrade, an exercise dry run)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class SubmissionStatus(enum.StrEnum):
    """Life of a submission: queued -> running -> graded | failed."""

    QUEUED = "queued"
    RUNNING = "running"
    GRADED = "graded"
    FAILED = "failed"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls, name=name, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
    )


class User(Base):
    """A person: learner, instructor or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.LEARNER)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """A personal API token: only its SHA-256 is stored; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(back_populates="tokens")


class Exercise(Base):
    """An exercise, identified by slug; its content lives in versions."""

    __tablename__ = "exercises"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None for the built-in catalog; else the course whose staff authored it (and may see it).
    course_id: Mapped[int | None] = mapped_column(
        ForeignKey("courses.id", ondelete="RESTRICT"), default=None, index=True
    )

    versions: Mapped[list[ExerciseVersion]] = relationship(
        back_populates="exercise", order_by="ExerciseVersion.number"
    )

    @property
    def current_version(self) -> ExerciseVersion:
        """The newest version: every change to an exercise makes a new one."""
        return self.versions[-1]


class ExerciseVersion(Base):
    """One immutable version of an exercise's content; submissions keep theirs."""

    __tablename__ = "exercise_versions"
    __table_args__ = (
        UniqueConstraint("exercise_id", "number"),
        UniqueConstraint("exercise_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exercise_id: Mapped[int] = mapped_column(ForeignKey("exercises.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    exercise: Mapped[Exercise] = relationship(back_populates="versions")


class Variant(Base):
    """A learner's own numbers for one exercise version, with the cached reference."""

    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("user_id", "exercise_version_id", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    exercise_version_id: Mapped[int] = mapped_column(
        ForeignKey("exercise_versions.id", ondelete="CASCADE"), index=True
    )
    seed: Mapped[int | None] = mapped_column(BigInteger)
    label: Mapped[str] = mapped_column(String(30), default="seeded")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Submission(Base):
    """One answer to one exercise version, and its grading."""

    __tablename__ = "submissions"
    # Values computed by the database at INSERT (the attempt number) come back by RETURNING.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_submissions_user_id_exercise_version_id", "user_id", "exercise_version_id"),
        Index("ix_submissions_status_updated_at", "status", "updated_at"),
        Index("ix_submissions_assignment_id_user_id", "assignment_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    exercise_version_id: Mapped[int] = mapped_column(ForeignKey("exercise_versions.id"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[SubmissionStatus] = mapped_column(
        _enum(SubmissionStatus, "submission_status"), default=SubmissionStatus.QUEUED
    )
    queue: Mapped[str] = mapped_column(String(30), default="numeric")
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    claim_token: Mapped[str | None] = mapped_column(String(36), default=None)
    grading_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    graded_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set when answered as part of an assignment; only those count in a gradebook.
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="RESTRICT"), default=None
    )
    # Set when a member of staff submitted on the learner's behalf.
    submitted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    exercise_version: Mapped[ExerciseVersion] = relationship()
    variant: Mapped[Variant] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    assignment: Mapped[Assignment | None] = relationship()


class Course(Base):
    """A course: its members (by role), assignments and authored exercises."""

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    # Learners join with this code; None when joining by code is switched off.
    join_code: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    enrollments: Mapped[list[Enrollment]] = relationship(back_populates="course")


class Enrollment(Base):
    """A user's membership of a course, with their role in it."""

    __tablename__ = "enrollments"
    __table_args__ = (UniqueConstraint("course_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[CourseRole] = mapped_column(_enum(CourseRole, "course_role"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    course: Mapped[Course] = relationship(back_populates="enrollments")
    user: Mapped[User] = relationship()


class Assignment(Base):
    """A set of exercises with dates, attempt limits, a late policy and a feedback policy."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    opens_at: Mapped[datetime | None] = mapped_column(default=None)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    max_attempts: Mapped[int | None] = mapped_column(Integer, default=None)
    late_policy: Mapped[LatePolicy] = mapped_column(
        _enum(LatePolicy, "late_policy"), default=LatePolicy.REJECT
    )
    # Fraction of the score taken off a late submission (late_policy=penalty).
    late_penalty: Mapped[float] = mapped_column(Float, default=0.0)
    # No submission at all after this (late_policy accept or penalty); None: no hard close.
    late_until: Mapped[datetime | None] = mapped_column(default=None)
    feedback: Mapped[FeedbackPolicy] = mapped_column(
        _enum(FeedbackPolicy, "feedback_policy"), default=FeedbackPolicy.IMMEDIATE
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    course: Mapped[Course] = relationship()
    items: Mapped[list[AssignmentExercise]] = relationship(
        back_populates="assignment",
        order_by="AssignmentExercise.position",
        cascade="all, delete-orphan",
    )


class AssignmentExercise(Base):
    """One exercise of an assignment, with its weight in the assignment's score."""

    __tablename__ = "assignment_exercises"
    __table_args__ = (UniqueConstraint("assignment_id", "exercise_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    exercise_id: Mapped[int] = mapped_column(ForeignKey("exercises.id", ondelete="RESTRICT"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[float] = mapped_column(Float, default=1.0)

    assignment: Mapped[Assignment] = relationship(back_populates="items")
    exercise: Mapped[Exercise] = relationship()


class Extension(Base):
    """A learner's own due date and extra attempts on one assignment."""

    __tablename__ = "extensions"
    __table_args__ = (UniqueConstraint("assignment_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    extra_attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(500), default="")
    granted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class RegradeJob(Base):
    """A regrade of one submission, an exercise version or an assignment, with its progress."""

    __tablename__ = "regrade_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    scope: Mapped[str] = mapped_column(String(20))  # submission | exercise_version | assignment
    target: Mapped[dict[str, Any]] = mapped_column(JSON)
    # "same": against each submission's own exercise version; "latest": the newest version.
    against: Mapped[str] = mapped_column(String(10), default="same")
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # The submissions to regrade, fixed when the job starts: what the sweeper sends again
    # (those without a verdict of this job yet). NULL: a job from before they were recorded.
    # Deferred: loaded only where read (the sweeper), not with every job a worker looks up
    # once per submission it regrades.
    submission_ids: Mapped[list[int] | None] = mapped_column(
        JSON(none_as_null=True), default=None, deferred=True
    )
    # Submissions counted without a regrade (no longer graded, or gone, when their turn came):
    # like a verdict of this job, the record that counts each one once (NULL: none).
    passed_over: Mapped[list[int] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # The last progress (a submission counted) or re-send by the sweeper: a job neither done
    # nor failed that has been idle too long lost its messages (worker/sweeper.py).
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegradeAttempt(Base):
    """A submission's regrade for a job, begun and not settled yet: counted before each try
    (worker/regrading.py), so that one that loses its worker, or meets an infrastructure
    fault, every time is given up (settled `failed`) instead of being sent forever. Removed
    when the submission is settled for the job."""

    __tablename__ = "regrade_attempts"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("regrade_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class SubmissionVerdict(Base):
    """One grading of a submission, kept forever: the original and every regrade."""

    __tablename__ = "submission_verdicts"
    __table_args__ = (
        UniqueConstraint("submission_id", "number"),
        UniqueConstraint("submission_id", "regrade_job_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)  # 1 is the original grading
    # Indexed: what is left of a job is its submissions without a verdict of it (the sweeper).
    regrade_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("regrade_jobs.id", ondelete="SET NULL"), default=None, index=True
    )
    exercise_version_id: Mapped[int] = mapped_column(ForeignKey("exercise_versions.id"))
    status: Mapped[SubmissionStatus] = mapped_column(_enum(SubmissionStatus, "submission_status"))
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    graded_at: Mapped[datetime | None] = mapped_column(default=None)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ExerciseDryRun(Base):
    """An authored exercise checked by a worker: reference and graph, before it is saved."""

    __tablename__ = "exercise_dry_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    problems: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class IdempotencyKey(Base):
    """A POST that created something, remembered by its Idempotency-Key to replay on retry."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of method, path and body
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)  # None: in progress
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    location: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
