"""Courses, join codes and enrolment (one by one, and in bulk from CSV or JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from flask import request, url_for
from pydantic import Field

from service.access import INSTRUCTOR, STAFF, is_admin, require_course
from service.api.blueprint import bp, current_user, heavy_limit, json_body, rate_key
from service.api.models import Email, Id, In, Out, Title, validate_model
from service.api.openapi import operation
from service.authoring import UnsupportedMediaType
from service.courses import (
    MAX_ROSTER_ROWS,
    RosterRow,
    bulk_enrol,
    courses_of,
    create_course,
    disable_join_code,
    enrol,
    find_user_by,
    get_enrollment,
    join_by_code,
    members,
    parse_roster_csv,
    rotate_join_code,
    unenrol,
)
from service.data.models import Course, CourseRole, Enrollment, User
from service.errors import ValidationFailed
from service.security import limiter
from service.webdb import get_db

TAG = ["courses"]
RoleName = Literal["instructor", "ta", "learner"]


class CourseCreate(In):
    """A new course; its creator becomes its instructor."""

    code: str = Field(min_length=1, max_length=40, examples=["ml101-2026"])
    title: Title


class CourseUpdate(In):
    """Changes to a course."""

    title: Title | None = None
    join_enabled: bool | None = Field(
        None, description="true: make (or keep) a join code; false: switch joining off."
    )


class CourseOut(Out):
    """A course and the caller's role in it."""

    id: int
    code: str
    title: str
    role: RoleName | None = Field(description="The caller's role (null: an admin not enrolled).")
    join_code: str | None = Field(description="Shown to the course's instructors only.")
    created_at: datetime


class CourseList(Out):
    """Courses."""

    items: list[CourseOut]


class JoinIn(In):
    """A join code given out by an instructor."""

    join_code: str = Field(min_length=1, max_length=32)


class JoinOut(Out):
    """The course joined."""

    course: CourseOut
    created: bool


class JoinCode(Out):
    """A course's new join code."""

    course_id: int
    join_code: str


class EnrollmentOut(Out):
    """A member of a course."""

    user_id: int
    email: str
    role: RoleName
    enrolled_at: datetime


class EnrollmentList(Out):
    """Members of a course."""

    items: list[EnrollmentOut]


class EnrollmentCreate(In):
    """Enrol an existing user, by email or id."""

    email: Email | None = None
    user_id: Id | None = None
    role: RoleName = "learner"


class EnrollmentUpdate(In):
    """A new role."""

    role: RoleName


class EnrollmentCreated(Out):
    """An enrolment and what happened."""

    enrollment: EnrollmentOut
    result: Literal["enrolled", "updated", "unchanged"]


class RosterRowIn(In):
    """One row of a bulk enrolment."""

    email: str = Field(max_length=320)
    role: str = Field("learner", max_length=20)


class BulkIn(In):
    """Many rows at once (the JSON form; CSV with `email,role` columns works too)."""

    rows: list[RosterRowIn] = Field(min_length=1, max_length=MAX_ROSTER_ROWS)


class BulkQuery(In):
    """Options of a bulk enrolment."""

    dry_run: bool = Field(False, description="Report what would happen and change nothing.")


class RowReport(Out):
    """What was done with one row."""

    row: int
    email: str
    role: str
    result: Literal["enrolled", "updated", "unchanged", "error"]
    message: str
    user_id: int | None


class BulkReport(Out):
    """What was done, row by row."""

    dry_run: bool
    counts: dict[str, int]
    rows: list[RowReport]


def course_out(course: Course, role: CourseRole | None, user: User) -> CourseOut:
    """A course as the caller sees it."""
    sees_code = is_admin(user) or role == CourseRole.INSTRUCTOR
    return CourseOut(
        id=course.id,
        code=course.code,
        title=course.title,
        role=role.value if role else None,
        join_code=course.join_code if sees_code else None,
        created_at=course.created_at,
    )


def enrollment_out(e: Enrollment) -> EnrollmentOut:
    """A member as listed."""
    return EnrollmentOut(
        user_id=e.user_id, email=e.user.email, role=e.role.value, enrolled_at=e.created_at
    )


@bp.get("/courses")
@operation(tags=TAG, resp=CourseList)
def course_list() -> CourseList:
    """The courses the caller belongs to (an admin: all)."""
    user = current_user()
    return CourseList(items=[course_out(c, r, user) for c, r in courses_of(get_db(), user)])


@bp.post("/courses")
@operation(tags=TAG, ok=201, resp=CourseOut, creates=True, errors=(409,))
def course_create(json: CourseCreate) -> tuple[CourseOut, int, dict[str, str]]:
    """Create a course (site instructors and admins); the caller becomes its instructor."""
    db, user = get_db(), current_user()
    course = create_course(db, user, json.code, json.title)
    db.commit()
    out = course_out(course, CourseRole.INSTRUCTOR, user)
    return out, 201, {"Location": url_for("api.course_detail", course_id=course.id)}


@bp.get("/courses/<int:course_id>")
@operation(tags=TAG, resp=CourseOut)
def course_detail(course_id: int) -> CourseOut:
    """One course (its members only)."""
    course, role = require_course(get_db(), current_user(), course_id)
    return course_out(course, role, current_user())


@bp.patch("/courses/<int:course_id>")
@operation(tags=TAG, resp=CourseOut)
def course_update(course_id: int, json: CourseUpdate) -> CourseOut:
    """Change the title, or switch joining by code on or off (instructors)."""
    db, user = get_db(), current_user()
    course, role = require_course(db, user, course_id, INSTRUCTOR)
    if json.title is not None:
        course.title = json.title
    if json.join_enabled is True and course.join_code is None:
        rotate_join_code(db, course)
    if json.join_enabled is False:
        disable_join_code(db, course)
    db.commit()
    return course_out(course, role, user)


@bp.post("/courses/<int:course_id>/join-code")
@operation(tags=TAG, resp=JoinCode)
def join_code_rotate(course_id: int) -> JoinCode:
    """A fresh join code (instructors); the previous one stops working."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, INSTRUCTOR)
    code = rotate_join_code(db, course)
    db.commit()
    return JoinCode(course_id=course.id, join_code=code)


@bp.post("/courses/join")
@operation(tags=TAG, resp=JoinOut, ok=200, also_ok=(201,))
def course_join(json: JoinIn) -> tuple[JoinOut, int]:
    """Join a course as a learner with its join code (201 when newly enrolled)."""
    db, user = get_db(), current_user()
    enrollment, created = join_by_code(db, user, json.join_code)
    db.commit()
    course = enrollment.course
    return JoinOut(course=course_out(course, enrollment.role, user), created=created), (
        201 if created else 200
    )


@bp.get("/courses/<int:course_id>/enrollments")
@operation(tags=TAG, resp=EnrollmentList)
def enrollment_list(course_id: int) -> EnrollmentList:
    """The course's members with their roles (staff)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, STAFF)
    return EnrollmentList(items=[enrollment_out(e) for e in members(db, course)])


@bp.post("/courses/<int:course_id>/enrollments")
@operation(tags=TAG, ok=201, resp=EnrollmentCreated, creates=True, errors=(409,))
def enrollment_create(
    course_id: int, json: EnrollmentCreate
) -> tuple[EnrollmentCreated, int, dict[str, str]]:
    """Enrol an existing user by email or id, or change their role (instructors)."""
    if (json.email is None) == (json.user_id is None):
        raise ValidationFailed("give exactly one of email and user_id", errors=[{"field": "email"}])
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, INSTRUCTOR)
    user = find_user_by(db, email=json.email, user_id=json.user_id)
    enrollment, what = enrol(db, course, user, CourseRole(json.role))
    db.commit()
    location = url_for("api.enrollment_list", course_id=course.id)
    out = EnrollmentCreated(enrollment=enrollment_out(enrollment), result=what)  # type: ignore[arg-type]
    return out, 201, {"Location": location}


@bp.post("/courses/<int:course_id>/enrollments/bulk")
@limiter.limit(heavy_limit, key_func=rate_key, override_defaults=False)
@operation(
    tags=TAG,
    resp=BulkReport,
    request_body={
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BulkIn"}},
            "text/csv": {
                "schema": {"type": "string"},
                "example": "email,role\nada@example.org,learner\nalan@example.org,ta\n",
            },
        },
    },
)
def enrollment_bulk(course_id: int, query: BulkQuery) -> BulkReport:
    """Enrol many users from CSV (`email,role` header) or JSON; a report row per input row.

    Rows that cannot be done (unknown email, bad role, duplicate) are reported and the rest
    are done; a body that cannot be read at all changes nothing. `dry_run=true` only reports.
    """
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, INSTRUCTOR)
    data = request.get_data(cache=True)
    if request.mimetype == "text/csv":
        rows = parse_roster_csv(data)
    elif request.is_json:
        parsed = validate_model(BulkIn, json_body())
        rows = [RosterRow(n + 1, r.email, r.role) for n, r in enumerate(parsed.rows)]
    else:
        raise UnsupportedMediaType("send text/csv (email,role) or application/json")
    results = bulk_enrol(db, course, rows, dry_run=query.dry_run)
    db.commit()
    counts = {k: 0 for k in ("enrolled", "updated", "unchanged", "error")}
    for r in results:
        counts[r.result] += 1
    return BulkReport(
        dry_run=query.dry_run,
        counts=counts,
        rows=[
            RowReport(
                row=r.row,
                email=r.email,
                role=str(r.role),
                result=r.result,  # type: ignore[arg-type]
                message=r.message,
                user_id=r.user_id,
            )
            for r in results
        ],
    )


@bp.patch("/courses/<int:course_id>/enrollments/<int:user_id>")
@operation(tags=TAG, resp=EnrollmentOut, errors=(409,))
def enrollment_update(course_id: int, user_id: int, json: EnrollmentUpdate) -> EnrollmentOut:
    """Change a member's role (instructors; a course keeps at least one instructor)."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, INSTRUCTOR)
    enrollment = get_enrollment(db, course, user_id)
    enrollment, _ = enrol(db, course, enrollment.user, CourseRole(json.role))
    db.commit()
    return enrollment_out(enrollment)


@bp.delete("/courses/<int:course_id>/enrollments/<int:user_id>")
@operation(tags=TAG, ok=204, errors=(409,))
def enrollment_delete(course_id: int, user_id: int) -> tuple[str, int]:
    """Remove a member (instructors); their submissions stay."""
    db = get_db()
    course, _ = require_course(db, current_user(), course_id, INSTRUCTOR)
    unenrol(db, course, user_id)
    db.commit()
    return "", 204
