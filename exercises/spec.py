"""ExerciseSpec: the pydantic model of one exercise data file (YAML in exercises/catalog/)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from exercises.lang.ir import Program

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=40)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)]
Value = float | list[float] | list[list[float]]
PartInput = Literal["number", "tensor", "formula", "choice", "code"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParamSpec(_Model):
    """One input of the forward computation: its worked-example value and variant range."""

    value: Value = Field(description="Worked-example value: a number or a (nested) list.")
    range: tuple[float, float] | None = Field(
        default=None,
        description="Variants draw each element uniformly from [lo, hi]; None keeps it fixed.",
    )
    decimals: int = Field(
        default=1, ge=0, le=6, description="Variant values are rounded to this many."
    )
    requires_grad: bool = Field(default=True, description="A leaf tensor with requires_grad=True.")
    description: str = ""


class ChoiceSpec(_Model):
    """One option of a choice part."""

    id: Identifier
    text: str = Field(min_length=1, description="Markdown shown to the learner.")
    feedback: str = Field(
        default="", description="Why this option is right or wrong (shown after)."
    )


class PartSpec(_Model):
    """One asked quantity: a gradient, a formula, an updated weight or a choice."""

    name: Identifier
    label: str = Field(
        min_length=1, description="Markdown with $LaTeX$, e.g. $\\partial L/\\partial w$."
    )
    input: PartInput = "number"
    of: Identifier | None = Field(
        default=None, description="The differentiated node (default: output)."
    )
    wrt: Identifier | None = Field(
        default=None, description="The node differentiated with respect to."
    )
    chain: list[Identifier] = Field(
        default_factory=list,
        description="Chain rule: this part is the product of these earlier parts.",
    )
    choices: list[ChoiceSpec] = Field(default_factory=list)
    answer: Identifier | None = Field(default=None, description="The right choice id.")
    weight: float = Field(default=1.0, gt=0)
    hint: str = ""


class KnownWrong(_Model):
    """A misconception the author expects, with the feedback it deserves."""

    part: Identifier
    value: Value | str | None = Field(
        default=None, description="The wrong answer (a number, tensor, formula or choice id)."
    )
    code: Identifier
    message: str = Field(min_length=1)
    node: str | None = None
    rule: str | None = None


class Degeneracy(_Model):
    """Rules that reject a drawn variant (and thereby keep its answers informative)."""

    min_abs_gradient: float = Field(
        default=1e-8, ge=0, description="Reject gradients smaller than this."
    )
    allow_zero: list[Identifier] = Field(
        default_factory=list, description="Parts whose answer may be 0."
    )
    allow_kink: bool = Field(default=False, description="Allow inputs at ReLU's / |x|'s kink.")
    kink_margin: float = Field(default=0.05, ge=0)
    max_abs_value: float = Field(default=1e6, gt=0, description="Reject huge forward values.")


class SgdSpec(_Model):
    """One plain SGD step: w <- w - lr * dL/dw."""

    lr: float = Field(gt=0)
    lr_range: tuple[float, float] | None = None


class BackwardSpec(_Model):
    """How often backward() runs before `.grad` is read, and with retain_graph or not."""

    calls: int = Field(default=2, ge=1, le=5)
    retain_graph: bool = True
    zero_grad_between: bool = False


class CodeSpec(_Model):
    """A code part: the learner writes `entry` in Python; the sandbox runs it."""

    entry: Identifier
    template: str = Field(min_length=1)
    arguments: list[Identifier] = Field(
        default_factory=list, description="Argument names (default: the parameters, in order)."
    )
    hidden_calls: int = Field(
        default=4, ge=0, le=20, description="Hidden random inputs to grade on."
    )
    solution: str = Field(
        default="", description="A model answer (never shown; used by validation)."
    )
    cpu_seconds: float = Field(default=2.0, gt=0, le=10)
    wall_seconds: float = Field(default=5.0, gt=0, le=30)


class ExerciseSpec(_Model):
    """One exercise, as authored in a YAML data file."""

    format: Literal[1] = Field(default=1, description="Version of this file format.")
    slug: Slug
    title: str = Field(min_length=1, max_length=120)
    kind: Identifier
    topics: list[Slug] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    difficulty: int = Field(ge=1, le=5)
    statement: str = Field(min_length=1, description="Markdown with $LaTeX$ math.")
    explanation: str = Field(default="", description="Shown once the exercise is solved.")
    sig_figs: int = Field(default=3, ge=2, le=8, description="Numbers must agree to this many.")
    zero_tolerance: float = Field(default=1e-9, ge=0, description="Absolute floor for a true 0.")
    params: dict[Identifier, ParamSpec] = Field(default_factory=dict)
    forward: str = Field(default="", description="Forward code in the restricted PyTorch subset.")
    output: Identifier | None = Field(
        default=None, description="The scalar loss (default: last name)."
    )
    listing: str = Field(default="", description="Code shown to the learner verbatim; never run.")
    parts: list[PartSpec] = Field(min_length=1)
    worked_example: dict[Identifier, Value | str] = Field(
        default_factory=dict, description="Expected answers for the worked-example values."
    )
    misconceptions: list[KnownWrong] = Field(default_factory=list)
    degeneracy: Degeneracy = Field(default_factory=lambda: Degeneracy())
    sgd: SgdSpec | None = None
    backward: BackwardSpec | None = None
    code: CodeSpec | None = None
    formula_points: int = Field(default=6, ge=2, le=50)
    ecf_credit: float = Field(
        default=1.0, ge=0, le=1, description="Score of an error carried forward."
    )

    @model_validator(mode="after")
    def _semantics(self) -> ExerciseSpec:
        from exercises.checks import spec_problems

        problems = spec_problems(self)
        if problems:
            detail = "; ".join(f"{path}: {msg}" for path, msg in problems)
            raise PydanticCustomError(
                "exercise_semantics", "{detail}", {"detail": detail, "problems": problems}
            )
        return self

    def content_hash(self) -> str:
        """sha256 of the canonical JSON of this spec: a new hash is a new version."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def program(self) -> Program:
        """The parsed forward code."""
        from exercises.checks import parsed_program

        return parsed_program(self.forward, tuple(self.params))

    @property
    def output_name(self) -> str:
        """The node whose gradients are asked by default."""
        return self.output or self.program().names[-1]

    def part(self, name: str) -> PartSpec:
        """The part called `name`."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    def worked_params(self) -> dict[str, Any]:
        """Parameter values of the worked example."""
        return {k: p.value for k, p in self.params.items()}
