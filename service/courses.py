"""Courses and their members: creation, join codes, enrolment one by one and in bulk.

The portal uses `courses_of` for a learner's dashboard and `join_by_code` for
"join a course by code"; the API uses the same functions.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from service.access import is_admin
from service.data.models import Course, CourseRole, Enrollment, Role, User
from service.errors import Conflict, Forbidden, NotFound, ValidationFailed
from service.users import normalise_email

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
JOIN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in class
JOIN_CODE_LENGTH = 10
MAX_ROSTER_ROWS = 5000


def create_course(db: Session, user: User, code: str, title: str) -> Course:
    """A new course; site instructors and admins may create one, and become its instructor."""
    if user.role not in (Role.INSTRUCTOR, Role.ADMIN):
        raise Forbidden("only instructors and admins create courses")
    if not CODE.match(code):
        raise ValidationFailed(
            "code must be 1 to 40 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            errors=[{"field": "code", "message": "invalid course code"}],
        )
    if db.scalar(select(Course.id).where(func.lower(Course.code) == code.lower())) is not None:
        raise Conflict(f"a course with code {code} already exists")
    course = Course(code=code, title=title.strip(), created_by_id=user.id)
    db.add(course)
    db.flush()
    db.add(Enrollment(course_id=course.id, user_id=user.id, role=CourseRole.INSTRUCTOR))
    db.flush()
    return course


def courses_of(db: Session, user: User) -> list[tuple[Course, CourseRole | None]]:
    """The courses the user belongs to with their role (an admin: every course)."""
    mine = {
        e.course_id: e.role
        for e in db.scalars(select(Enrollment).where(Enrollment.user_id == user.id))
    }
    query = select(Course).order_by(Course.id)
    if not is_admin(user):
        query = query.where(Course.id.in_(mine))
    return [(c, mine.get(c.id)) for c in db.scalars(query)]


def new_join_code() -> str:
    """A random code a learner types to join."""
    return "".join(secrets.choice(JOIN_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def rotate_join_code(db: Session, course: Course) -> str:
    """Give the course a fresh join code (the old one stops working)."""
    course.join_code = new_join_code()
    db.flush()
    return course.join_code


def disable_join_code(db: Session, course: Course) -> None:
    """Switch joining by code off."""
    course.join_code = None
    db.flush()


def join_by_code(db: Session, user: User, code: str) -> tuple[Enrollment, bool]:
    """Enrol the user as a learner of the course with this join code; (enrolment, created)."""
    normalised = code.strip().upper()
    course = db.scalar(select(Course).where(Course.join_code == normalised)) if normalised else None
    if course is None:
        raise NotFound("no course has this join code")
    existing = _enrollment(db, course.id, user.id)
    if existing is not None:
        return existing, False
    enrollment = Enrollment(course_id=course.id, user_id=user.id, role=CourseRole.LEARNER)
    db.add(enrollment)
    db.flush()
    return enrollment, True


def _enrollment(db: Session, course_id: int, user_id: int) -> Enrollment | None:
    return db.scalar(
        select(Enrollment)
        .where(Enrollment.course_id == course_id, Enrollment.user_id == user_id)
        .options(selectinload(Enrollment.user))
    )


def get_enrollment(db: Session, course: Course, user_id: int) -> Enrollment:
    """The enrolment of `user_id` in the course, or NotFound."""
    enrollment = _enrollment(db, course.id, user_id)
    if enrollment is None:
        raise NotFound(f"user {user_id} is not enrolled in {course.code}")
    return enrollment


def members(db: Session, course: Course, role: CourseRole | None = None) -> list[Enrollment]:
    """The course's enrolments (optionally of one role), by user id."""
    query = (
        select(Enrollment)
        .where(Enrollment.course_id == course.id)
        .options(selectinload(Enrollment.user))
        .order_by(Enrollment.user_id)
    )
    if role is not None:
        query = query.where(Enrollment.role == role)
    return list(db.scalars(query))


def _instructor_count(db: Session, course: Course) -> int:
    return (
        db.scalar(
            select(func.count(Enrollment.id)).where(
                Enrollment.course_id == course.id, Enrollment.role == CourseRole.INSTRUCTOR
            )
        )
        or 0
    )


def _keep_an_instructor(db: Session, course: Course, enrollment: Enrollment) -> None:
    if enrollment.role == CourseRole.INSTRUCTOR and _instructor_count(db, course) <= 1:
        raise Conflict(f"{course.code} must keep at least one instructor")


def enrol(db: Session, course: Course, user: User, role: CourseRole) -> tuple[Enrollment, str]:
    """Enrol or change the role of `user`; returns (enrolment, "enrolled"|"updated"|"unchanged")."""
    existing = _enrollment(db, course.id, user.id)
    if existing is None:
        enrollment = Enrollment(course_id=course.id, user_id=user.id, role=role)
        try:
            with db.begin_nested():
                db.add(enrollment)
        except IntegrityError as err:
            raise Conflict(f"{user.email} was enrolled at the same moment; retry") from err
        return enrollment, "enrolled"
    if existing.role == role:
        return existing, "unchanged"
    if role != CourseRole.INSTRUCTOR:
        _keep_an_instructor(db, course, existing)
    existing.role = role
    db.flush()
    return existing, "updated"


def unenrol(db: Session, course: Course, user_id: int) -> None:
    """Remove a member (their submissions stay); the last instructor cannot be removed."""
    enrollment = get_enrollment(db, course, user_id)
    _keep_an_instructor(db, course, enrollment)
    db.delete(enrollment)
    db.flush()


def find_user_by(db: Session, *, email: str | None = None, user_id: int | None = None) -> User:
    """The user with this email or id, or NotFound."""
    if user_id is not None:
        user = db.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user
    normalised = normalise_email(email or "")
    found = db.scalar(select(User).where(func.lower(User.email) == normalised))
    if found is None:
        raise NotFound(f"no account with email {normalised}; they must sign up first")
    return found


@dataclass(frozen=True)
class RosterRow:
    """One row of a bulk enrolment: where it came from and what it asks."""

    row: int
    email: str
    role: str


@dataclass(frozen=True)
class RowResult:
    """What bulk enrolment did with one row."""

    row: int
    email: str
    role: str
    result: str  # enrolled | updated | unchanged | error
    message: str = ""
    user_id: int | None = None


def bulk_enrol(
    db: Session, course: Course, rows: list[RosterRow], *, dry_run: bool = False
) -> list[RowResult]:
    """Enrol every row it can; each row gets a result. With dry_run nothing is written."""
    results: list[RowResult] = []
    seen: dict[str, int] = {}
    for row in rows:
        email = normalise_email(row.email)
        try:
            role = CourseRole(row.role.strip().lower() or "learner")
        except ValueError:
            roles = ", ".join(r.value for r in CourseRole)
            results.append(
                RowResult(row.row, email, row.role, "error", f"role must be one of {roles}")
            )
            continue
        if email in seen:
            results.append(
                RowResult(row.row, email, role, "error", f"same email as row {seen[email]}")
            )
            continue
        seen[email] = row.row
        try:
            user = find_user_by(db, email=email)
            with db.begin_nested() as nested:
                _, what = enrol(db, course, user, role)
                if dry_run:
                    nested.rollback()
        except (NotFound, Conflict) as err:
            results.append(RowResult(row.row, email, role, "error", err.detail))
            continue
        results.append(RowResult(row.row, email, role, what, user_id=user.id))
    return results


def parse_roster_csv(data: bytes) -> list[RosterRow]:
    """Rows of a CSV roster with a header naming `email` and optionally `role`.

    A file that cannot be read as such a table is a ValidationFailed naming the line;
    problems of single rows (a bad role, an unknown email) are left to `bulk_enrol`.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _bad_csv(f"the CSV is not UTF-8 text (byte {err.start})", "body") from err
    if "\x00" in text:
        raise _bad_csv("the CSV contains a NUL byte", "body")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if "email" not in header:
            raise _bad_csv("the first line must be a header with an `email` column", "line 1")
        extra = sorted(set(header) - {"email", "role", ""})
        if extra:
            raise _bad_csv(f"unknown column `{extra[0]}` (expected email and role)", "line 1")
        rows: list[RosterRow] = []
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise _bad_csv(
                    f"line {line} has {len(fields)} fields, the header has {len(header)}",
                    f"line {line}",
                )
            if len(rows) >= MAX_ROSTER_ROWS:
                raise _bad_csv(f"at most {MAX_ROSTER_ROWS} rows per request", f"line {line}")
            record = dict(zip(header, fields, strict=True))
            rows.append(RosterRow(line, record["email"], record.get("role", "")))
    except csv.Error as err:
        raise _bad_csv(f"line {reader.line_num}: {err}", f"line {reader.line_num}") from err
    if not rows:
        raise _bad_csv("the CSV has a header but no rows", "body")
    return rows


def _bad_csv(message: str, where: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": where, "message": message}])
