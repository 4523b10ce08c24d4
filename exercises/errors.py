"""Errors of the exercises domain; each names the field or part at fault."""


class ExerciseError(Exception):
    """Base of the domain's errors."""


class ExerciseFormatError(ExerciseError):
    """An exercise file is invalid; `problems` lists (field path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(f"{path}: {msg}" for path, msg in problems))


class AnswerFormatError(ExerciseError):
    """An answer's envelope is malformed (not per-part content, which is a verdict)."""

    def __init__(self, message: str, field: str = "answers") -> None:
        self.field = field
        super().__init__(message)


class UnknownKindError(ExerciseError):
    """An exercise names a kind that is not in the registry."""
