"""Kind `autograd_function`: a custom torch.autograd.Function, checked against autograd outside."""

from __future__ import annotations

from typing import Any

import numpy as np

from exercises.codejob import CodeJob, CodeRun
from exercises.grading import combine, match_candidate
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
        PartSpec(name=n, label=n, input="tensor" if isinstance(spec.params[n].value, list)
                 else "number", of=VJP, wrt=n)
        for n in _inputs(spec)
    ]
    forward = spec.forward.rstrip() + f"\n{VJP} = ({out} * {GRAD_OUTPUT}).sum()\n"
    return spec.model_copy(update={"params": params, "forward": forward, "parts": parts,
                                   "output": VJP, "misconceptions": []})


def _grad_output(spec: ExerciseSpec, variant: Variant, index: int, shape: tuple[int, ...]) -> Any:
    rng = rng_for(spec.slug, variant.seed, "grad_output", index)
    value = np.asarray([round(rng.uniform(0.5, 1.5), 2) for _ in range(int(np.prod(shape)))])
    return value.reshape(shape).tolist()


def _close(given: np.ndarray[Any, Any] | None, true: Any) -> bool:
    t = np.asarray(true, dtype=np.float64)
    if given is None or given.shape != t.shape or not np.all(np.isfinite(given)):
        return False
    return all(agrees(float(a), float(b), RTOL_SIG_FIGS, 1e-9) for a, b in
               zip(given.ravel(), t.ravel(), strict=True))


@register
class AutogradFunction(CodeKind):
    """Code: a Function subclass whose forward and backward are compared with autograd."""

    name = "autograd_function"

    def check_spec(self, spec: ExerciseSpec) -> list[tuple[str, str]]:
        """Parts exactly `forward` and `backward`, of input code."""
        problems = super().check_spec(spec)
        if [p.name for p in spec.parts] != ["forward", "backward"]:
            problems.append(("parts", "autograd_function parts are `forward` then `backward`"))
        return problems

    def _calls(self, spec: ExerciseSpec, variant: Variant) -> list[tuple[dict[str, Any], Any]]:
        from exercises.lang.numeric import run_program

        params = [variant.params, *hidden_params(spec, variant, [])]
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
        from exercises.reference import gradient_reference, run_forward

        calls, candidates = [], {}
        for i, (p, g) in enumerate(self._calls(spec, variant)):
            ext = vjp_spec(spec, g)
            ref = gradient_reference(ext, {**p, GRAD_OUTPUT: g})
            out = run_forward(spec, p)[spec.output_name].detach().tolist()
            calls.append({"output": out, "grads": [ref["values"][n] for n in _inputs(spec)]})
            if i == 0:
                candidates = ref["candidates"]
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
            len(gs) == len(c["grads"]) and all(_close(a, b) for a, b in zip(gs, c["grads"], strict=True))
            for (_, gs), c in zip(got, calls, strict=True)
        ]
        n = len(calls)
        fwd = PartVerdict("forward", all(fwd_ok), "Right." if all(fwd_ok) else
                          f"forward() differs from the reference on {fwd_ok.count(False)} of {n} inputs.",
                          1.0 if all(fwd_ok) else 0.0)
        bwd = self._backward(spec, reference, got[0][1], bwd_ok)
        verdict = combine(spec, [fwd, bwd])
        return Verdict(verdict.score, verdict.parts, verdict.message, details=run_details(run))

    def _backward(self, spec: ExerciseSpec, reference: dict[str, Any],
                  first: list[np.ndarray[Any, Any] | None], ok: list[bool]) -> PartVerdict:
        if all(ok):
            return PartVerdict("backward", True, "Right: backward() matches autograd's gradients.", 1.0)
        message = f"backward() differs from autograd on {ok.count(False)} of {len(ok)} inputs."
        diagnosis = None
        for name, given in zip(reference["inputs"], first, strict=False):
            found = match_candidate(given.tolist(), reference["candidates"].get(name, []), spec) if given is not None else None
            if found:
                diagnosis = {k: found.get(k) for k in ("code", "node", "rule", "message")}
                message += f" For `{name}`: {found['message']}"
                break
        return PartVerdict("backward", False, message, 0.0, diagnosis=diagnosis)


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
