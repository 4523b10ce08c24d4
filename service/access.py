"""Who may do what in a course: the caller's role there, checked on every course-scoped call.

A site admin may do anything anywhere. Anyone else needs an enrolment in the course;
a course they are not in answers 404 (its existence is not theirs to learn), a role
too low for the action answers 403.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.data.models import Course, CourseRole, Enrollment, Role, User
from service.errors import Forbidden, NotFound

STAFF = (CourseRole.INSTRUCTOR, CourseRole.TA)
INSTRUCTOR = (CourseRole.INSTRUCTOR,)
MEMBERS = (CourseRole.INSTRUCTOR, CourseRole.TA, CourseRole.LEARNER)

_NAMES = {
    CourseRole.INSTRUCTOR: "an instructor",
    CourseRole.TA: "a TA",
    CourseRole.LEARNER: "a learner",
}


def is_admin(user: User) -> bool:
    """True for the site administrator role."""
    return user.role == Role.ADMIN


def course_role(db: Session, user: User, course_id: int) -> CourseRole | None:
    """The user's role in the course, or None when not enrolled."""
    return db.scalar(
        select(Enrollment.role).where(
            Enrollment.course_id == course_id, Enrollment.user_id == user.id
        )
    )


def require_course(
    db: Session, user: User, course_id: int, allowed: tuple[CourseRole, ...] = MEMBERS
) -> tuple[Course, CourseRole | None]:
    """The course and the caller's role in it (None for an admin who is not enrolled).

    Raises NotFound when the course does not exist or the caller is not in it, and
    Forbidden when their role is not among `allowed`.
    """
    course = db.get(Course, course_id)
    if course is None:
        raise NotFound(f"no course {course_id}")
    role = course_role(db, user, course_id)
    if is_admin(user):
        return course, role
    if role is None:
        raise NotFound(f"no course {course_id}")
    if role not in allowed:
        wanted = " or ".join(_NAMES[r] for r in allowed)
        raise Forbidden(f"this needs {wanted} of course {course.code}; you are {_NAMES[role]}")
    return course, role


def is_staff(role: CourseRole | None, user: User) -> bool:
    """True for an instructor or TA of the course (or an admin)."""
    return is_admin(user) or role in STAFF
