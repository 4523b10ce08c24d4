"""Pure pieces: outcome mapping, result parsing and cleaning, the codec, limits from env."""

from __future__ import annotations

import signal

import pytest
import torch

from exercises.codejob import SandboxLimits
from worker.sandbox import limits_from_env
from worker.sandbox.codec import UnencodableResult, encode
from worker.sandbox.errors import SandboxError
from worker.sandbox.outcome import Capture, clean_data, decide, parse_result
from worker.sandbox.seccomp import build_filter
from worker.sandbox.settings import DEFAULT_MAXIMA, SandboxConfigError

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=5)


def _done(status: int = 0, reason: str | None = None, cpu: float = 0.01) -> dict[str, object]:
    return {
        "wait_status": status,
        "cpu_seconds": cpu,
        "wall_seconds": 0.02,
        "maxrss_kb": 5000,
        "base_rss_kb": 4000,
        "reason": reason,
        "setup": "ok 3000",
    }


def _cap(data: bytes = b"", over: bool = False) -> Capture:
    return Capture(1000, bytearray(data), over)


def _killed_by(sig: int) -> int:
    return int(sig)  # a wait status whose low 7 bits are the signal


def test_decide_maps_how_the_child_ended() -> None:
    ok = b'{"status": "ok", "outputs": [1.5], "error": null, "error_line": null}'
    run = decide(_done(), LIMITS, _cap(ok), _cap(b"hi"), _cap())
    assert (run.status, run.outputs, run.stdout, run.peak_memory_kb) == ("ok", [1.5], "hi", 2000)
    assert decide(_done(reason="wall"), LIMITS, _cap(), _cap(), _cap()).status == "timeout"
    assert decide(_done(reason="cpu"), LIMITS, _cap(), _cap(), _cap()).status == "timeout"
    rlimit = _done(_killed_by(signal.SIGKILL), cpu=1.97)
    assert decide(rlimit, LIMITS, _cap(), _cap(), _cap()).status == "timeout"
    assert (
        decide(_done(_killed_by(signal.SIGKILL)), LIMITS, _cap(), _cap(), _cap()).status == "killed"
    )
    assert (
        decide(_done(_killed_by(signal.SIGSYS)), LIMITS, _cap(), _cap(), _cap()).status
        == "forbidden"
    )
    assert decide(_done(), LIMITS, _cap(ok), _cap(over=True), _cap()).status == "output_limit"
    assert decide(_done(1 << 8), LIMITS, _cap(ok), _cap(), _cap()).status == "error"
    assert decide(_done(), LIMITS, _cap(), _cap(), _cap()).status == "error"


def test_decide_raises_when_the_jail_was_not_set_up() -> None:
    done = {**_done(121 << 8), "setup": "jail setup failed: OSError(1)"}
    with pytest.raises(SandboxError, match="jail setup failed"):
        decide(done, LIMITS, _cap(), _cap(), _cap())


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage",
        b'{"status": "timeout", "outputs": []}',
        b'{"status": "ok", "outputs": 3}',
        b'{"status": "ok", "outputs": [NaN]}',
        b'{"status": "ok", "outputs": [], "error_line": -4}',
        b"[" * 100000,
        b'{"status": "ok", "outputs": [' + b"9" * 5000 + b"]}",
    ],
)
def test_parse_result_rejects_forgeries(raw: bytes) -> None:
    assert parse_result(raw) is None


def test_clean_data_makes_storable_json() -> None:
    data = {"a\x00": ["\ud800x", 1e400, -1e400, 2.5]}
    assert clean_data(data) == {"a\ufffd": ["?x", "Infinity", "-Infinity", 2.5]}


def test_encode_accepts_plain_data_and_refuses_impostors() -> None:
    t = torch.tensor([[1.0, float("nan")]], dtype=torch.float64, requires_grad=True)
    assert encode({"t": t, "n": (1, True, None)}) == {
        "t": {
            "__tensor__": [[1.0, "NaN"]],
            "dtype": "float64",
            "shape": [1, 2],
            "requires_grad": True,
        },
        "n": [1, True, None],
    }
    for bad in (
        object(),
        type("F", (float,), {})(1.0),
        {1: 2},
        (x for x in [1]),
        [[[[[]]]]] * 0 + [set()],
    ):
        with pytest.raises(UnencodableResult):
            encode(bad)


def test_limits_from_env() -> None:
    assert limits_from_env({}) == DEFAULT_MAXIMA
    limits = limits_from_env({"SANDBOX_MAX_CPU_SECONDS": "0.5", "SANDBOX_MAX_OUTPUT_BYTES": "4096"})
    assert limits.cpu_seconds == 0.5 and limits.output_bytes == 4096
    assert SandboxLimits(cpu_seconds=2, output_bytes=10**6).clamp(limits).output_bytes == 4096
    with pytest.raises(SandboxConfigError):
        limits_from_env({"SANDBOX_MAX_MEMORY_MB": "lots"})
    with pytest.raises(SandboxConfigError):
        limits_from_env({"SANDBOX_MAX_WALL_SECONDS": "-1"})


def test_seccomp_filter_is_a_valid_size_for_each_architecture() -> None:
    for arch in ("x86_64", "aarch64"):
        program = build_filter(arch, 1)
        assert len(program) % 8 == 0 and len(program) // 8 < 4096
    with pytest.raises(ValueError):
        build_filter("mips", 1)
