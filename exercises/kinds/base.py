"""The contract every exercise kind implements; kinds are classes in a registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from exercises.model import Variant, Verdict

if TYPE_CHECKING:
    from exercises.codejob import CodeJob, CodeRun
    from exercises.spec import ExerciseSpec


class Kind:
    """Base of all kinds.

    Methods marked torch-free run in the web process and must not import torch.
    """

    name: ClassVar[str]
    answer_type: ClassVar[Literal["data", "code"]] = "data"
    scalar_output: ClassVar[bool] = True  # the forward code's output must be a scalar loss

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Torch-free: kind-specific problems of a spec as (field path, message) pairs."""
        return []

    def make_variant(self, spec: ExerciseSpec, seed: int) -> Variant:
        """Torch-free: a reproducible, non-degenerate variant for this seed."""
        raise NotImplementedError

    def worked_example(self, spec: ExerciseSpec) -> Variant:
        """Torch-free: the variant of the exercise's worked example."""
        raise NotImplementedError

    def learner_view(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Torch-free: what the learner sees (statement, values, parts, forward code)."""
        raise NotImplementedError

    def validate_answer(self, spec: ExerciseSpec, answer: Any) -> dict[str, Any]:
        """Torch-free: check the answer's envelope (a dict of known parts, or {"code": str}).

        Raises exercises.errors.AnswerFormatError naming the problem (an unknown part,
        a non-object body); per-part content problems (NaN, text) are left to grade().
        """
        raise NotImplementedError

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Worker: the reference answer with autograd in float64, as JSON data."""
        raise NotImplementedError

    def grade(
        self,
        spec: ExerciseSpec,
        variant: Variant,
        reference: dict[str, Any],
        answer: dict[str, Any],
    ) -> Verdict:
        """Worker: the verdict on a data answer (learner mistakes are verdicts, not errors)."""
        raise NotImplementedError

    # Code kinds only.
    def code_job(self, spec: ExerciseSpec, variant: Variant, answer: dict[str, Any]) -> CodeJob:
        """Worker: the sandbox job that runs the learner's code on the variant and hidden inputs."""
        raise NotImplementedError

    def grade_run(
        self, spec: ExerciseSpec, variant: Variant, reference: dict[str, Any], run: CodeRun
    ) -> Verdict:
        """Worker: the verdict from the sandbox's raw outputs, computed outside the sandbox."""
        raise NotImplementedError
