"""Kind `autograd_function`: a custom torch.autograd.Function, checked against autograd outside."""

from __future__ import annotations

from typing import Any

import numpy as np

from exercises.codejob import CodeJob, CodeRun
from exercises.grading import combine, diagnosis_of, match_candidate
from exercises.kinds.code_common import (
    CodeKind,
    all_wrong,
    decode,
    encode,
    hidden_params,
    run_details,
    run_fault,
)
from exercises.model import PartVerdict, Variant, Verdict
from exercises.numbers import agrees
from exercises.registry import register
from exercises.spec import ExerciseSpec, ParamSpec, PartSpec
from exercises.variants import rng_for

GRAD_OUTPUT = "grad_output"
VJP = "vjp_"
RTOL_SIG_FIGS = 6  # float64 forward and backward must agree closely, as in gradcheck


def _inputs(spec: ExerciseSpec) -> list[str]:
    return list(spec.code.arguments) if spec.code and spec.code.arguments else list(spec.params)


def vjp_spec(spec: ExerciseSpec, grad_output: Any) -> ExerciseSpec:
    """The spec extended by s = (out * grad_output).sum(), whose gradients are the VJP."""
    out = spec.output_name
    params = dict(spec.params)
    params[GRAD_OUTPUT] = ParamSpec(value=grad_output, requires_grad=False)
    parts = [
        PartSpec(
            name=n,
            label=n,
            input="tensor" if isinstance(spec.params[n].value, list) else "number",
            of=VJP,
            wrt=n,
        )
        for n in _inputs(spec)
    ]
    forward = spec.forward.rstrip() + f"\n{VJP} = ({out} * {GRAD_OUTPUT}).sum()\n"
    return spec.model_copy(
        update={
            "params": params,
            "forward": forward,
            "parts": parts,
            "output": VJP,
            "misconceptions": [],
        }
    )


def _grad_output(spec: ExerciseSpec, variant: Variant, index: int, shape: tuple[int, ...]) -> Any:
    rng = rng_for(spec.slug, variant.seed, "grad_output", index)
    value = np.asarray([round(rng.uniform(0.5, 1.5), 2) for _ in range(int(np.prod(shape)))])
    return value.reshape(shape).tolist()


def _close(given: np.ndarray[Any, Any] | None, true: Any) -> bool:
    t = np.asarray(true, dtype=np.float64)
    if given is None or given.shape != t.shape or not np.all(np.isfinite(given)):
        return False
    return all(
        agrees(float(a), float(b), RTOL_SIG_FIGS, 1e-9)
        for a, b in zip(given.ravel(), t.ravel(), strict=True)
    )


@register
class AutogradFunction(CodeKind):
    """Code: a Function subclass whose forward and backward are compared with autograd."""

    name = "autograd_function"
    scalar_output = False

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Parts exactly `forward` and `backward`, of input code."""
        problems = super().check_spec(spec)
        if [p.name for p in spec.parts] != ["forward", "backward"]:
            problems.append(("parts", "autograd_function parts are `forward` then `backward`"))
        return problems

    def _calls(self, spec: ExerciseSpec, variant: Variant) -> list[tuple[dict[str, Any], Any]]:
        from exercises.lang.numeric import run_program

        params = [
            variant.params,
            *hidden_params(spec, variant, lambda q: self.variant_problem(spec, q)),
        ]
        out = []
        for i, p in enumerate(params):
            shape = run_program(spec.program(), p).values[spec.output_name].shape
            out.append((p, _grad_output(spec, variant, i, shape)))
        return out

    def code_job(self, spec: ExerciseSpec, variant: Variant, answer: dict[str, Any]) -> CodeJob:
        """Forward and backward of the learner's Function on float64 inputs."""
        names = _inputs(spec)
        calls = [
            {"inputs": [encode(p[n], True) for n in names], "grad_output": encode(g)}
            for p, g in self._calls(spec, variant)
        ]
        entry = spec.code.entry if spec.code else "Function"
        return CodeJob(answer["code"], entry, "autograd_function", calls, self.limits(spec))

    def compute_reference(self, spec: ExerciseSpec, variant: Variant) -> dict[str, Any]:
        """Autograd's output and vector-Jacobian products at every call."""
        from exercises.reference import gradient_reference, gradient_values, run_forward

        calls, candidates = [], {}
        for i, (p, g) in enumerate(self._calls(spec, variant)):
            ext = vjp_spec(spec, g)
            point = {**p, GRAD_OUTPUT: g}
            if i == 0:  # mistakes are diagnosed on the learner's own inputs only
                ref = gradient_reference(ext, point)
                grads, candidates = ref["values"], ref["candidates"]
            else:
                grads = gradient_values(ext, point)
            out = run_forward(spec, p)[spec.output_name].detach().tolist()
            calls.append({"output": out, "grads": [grads[n] for n in _inputs(spec)]})
        return {"calls": calls, "candidates": candidates, "inputs": _inputs(spec)}

    def grade_run(
        self, spec: ExerciseSpec, variant: Variant, reference: dict[str, Any], run: CodeRun
    ) -> Verdict:
        """forward: outputs agree; backward: input gradients agree with autograd's VJP."""
        fault = run_fault(spec, run)
        if fault:
            return all_wrong(spec, fault, run)
        calls = reference["calls"]
        got = [_split(o) for o in run.outputs[: len(calls)]]
        if len(got) < len(calls):
            return all_wrong(spec, "Your Function did not return results for every input.", run)
        fwd_ok = [_close(o, c["output"]) for (o, _), c in zip(got, calls, strict=True)]
        bwd_ok = [
            len(gs) == len(c["grads"])
            and all(_close(a, b) for a, b in zip(gs, c["grads"], strict=True))
            for (_, gs), c in zip(got, calls, strict=True)
        ]
        first_out, first_grads = got[0]
        fwd = _verdict(
            "forward",
            fwd_ok,
            "forward() differs from the reference",
            expected=calls[0]["output"],
            given=first_out.tolist() if first_out is not None else None,
        )
        bwd = _verdict(
            "backward",
            bwd_ok,
            "backward() differs from autograd's gradients",
            expected=calls[0]["grads"],
            given=[g.tolist() if g is not None else None for g in first_grads],
        )
        if not bwd.correct and not bwd_ok[0]:
            bwd = _diagnose(spec, reference, first_grads, bwd)
        verdict = combine(spec, [fwd, bwd])
        return Verdict(verdict.score, verdict.parts, verdict.message, details=run_details(run))


def _verdict(name: str, ok: list[bool], wrong: str, expected: Any, given: Any) -> PartVerdict:
    hidden = len(ok) - 1
    if all(ok):
        message = f"Right on your inputs and on {hidden} hidden ones."
        return PartVerdict(name, True, message, 1.0, expected=expected, given=given)
    if ok[0]:
        message = f"{wrong} on {ok[1:].count(False)} of {hidden} hidden inputs."
    else:
        message = f"{wrong} on your inputs."
    return PartVerdict(name, False, message, 0.0, expected=expected, given=given)


def _diagnose(
    spec: ExerciseSpec,
    reference: dict[str, Any],
    first: list[np.ndarray[Any, Any] | None],
    verdict: PartVerdict,
) -> PartVerdict:
    """Name the mistake behind a wrong gradient on the learner's own inputs, if known."""
    for name, given in zip(reference["inputs"], first, strict=False):
        if given is None:
            continue
        found = match_candidate(given.tolist(), reference["candidates"].get(name, []), spec)
        if found:
            return PartVerdict(
                verdict.part,
                False,
                f"{verdict.message} For `{name}`: {found['message']}",
                0.0,
                expected=verdict.expected,
                given=verdict.given,
                diagnosis=diagnosis_of(found),
            )
    return verdict


def _split(output: Any) -> tuple[np.ndarray[Any, Any] | None, list[np.ndarray[Any, Any] | None]]:
    """(forward output, input gradients) from one call's raw result."""
    if isinstance(output, dict):
        out = output.get("output", output.get("forward"))
        grads = output.get("grads", output.get("grad_inputs", output.get("gradients", [])))
    elif isinstance(output, list) and len(output) == 2:
        out, grads = output
    else:
        return None, []
    if not isinstance(grads, list) or (grads and isinstance(grads[0], int | float)):
        grads = [grads]
    return decode(out), [decode(g) for g in grads]
