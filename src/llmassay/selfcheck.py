"""Smoke check of the embedded backend, in a subprocess: load the bundled model, decode a few
tokens, compare one log-likelihood with a stored value.

Why a subprocess: a llama.cpp build that crashes on this CPU (AMX, upstream issue 20824)
kills the process that decodes. `scripts/install.sh` and the test suite run this first, so
such a build stops them with one line naming the CPU and the fix, instead of a segfault
mid-demo or mid-suite with no summary.

    python -m llmassay.selfcheck          # exit 0 and one "ok" line, or 1 and one line why
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass

from llmassay.machine import cpu_model, kernel_features, llama_system_info

MODEL = "smollm2-135m"
CONTEXT, CONTINUATION = "The capital of France is", " Paris"
# log P(" Paris" | CONTEXT) for SmolLM2-135M-Instruct Q4_1, measured on this project's builds
# (AVX2 and AVX-512, README "Reproducibility"); builds differ by rounding, a broken kernel by far more.
REFERENCE_LOGPROB = -0.264
TOLERANCE_NATS = 0.5
TIMEOUT_S = 300
NO_AMX_FIX = ("rebuild without AMX: rm -rf .venv ~/.cache/llmassay/wheels && bash scripts/install.sh "
              "(it builds with -mno-amx-*), or load with --model-args use_extra_bufts=false")
CHILD_ENV = "LLMASSAY_SELFCHECK_CHILD"  # a stand-in for the child command (tests of this module)


@dataclass(frozen=True)
class SelfCheck:
    ok: bool
    message: str  # one line


def _child() -> None:
    """Runs in the subprocess: the real load, score and decode."""
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.types import GenerateRequest, LoglikelihoodRequest

    backend = LlamaCppBackend(MODEL, n_ctx=256)
    logprob = backend.loglikelihood([LoglikelihoodRequest(CONTEXT, CONTINUATION)])[0].logprob
    text = backend.generate([GenerateRequest(prompt=CONTEXT, max_tokens=4, temperature=0.0)])[0].text
    print(json.dumps({"logprob": logprob, "text": text, "n_threads": backend.n_threads}))
    backend.llm.close()


def _machine() -> str:
    features = " ".join(kernel_features()) or "none read"
    info = llama_system_info() or "llama.cpp not importable"
    return f"CPU {cpu_model()} [{features}]; llama.cpp: {info}"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def run_selfcheck(child: list[str] | None = None, timeout_s: float = TIMEOUT_S) -> SelfCheck:
    """Run the check in a subprocess (or `child`, a stand-in command) and read its one JSON line."""
    command = child or [sys.executable, "-X", "faulthandler", "-m", "llmassay.selfcheck", "--child"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return SelfCheck(False, f"llmassay selfcheck: llama.cpp did not finish a 4-token decode in {timeout_s:.0f} s "
                                f"on {_machine()}")
    if done.returncode < 0:
        return SelfCheck(False, f"llmassay selfcheck: llama.cpp crashed ({_signal_name(done.returncode)}) on its "
                                f"first decode on {_machine()}; {NO_AMX_FIX}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return SelfCheck(False, f"llmassay selfcheck: the embedded model failed (exit {done.returncode}: {last})")
    answer = json.loads(lines[-1])
    drift = abs(answer["logprob"] - REFERENCE_LOGPROB)
    if drift > TOLERANCE_NATS:
        return SelfCheck(False, f"llmassay selfcheck: log P({CONTINUATION.strip()!r}) = {answer['logprob']:.3f}, "
                                f"stored {REFERENCE_LOGPROB:.3f} (tolerance {TOLERANCE_NATS}): this llama.cpp build "
                                f"computes wrong numbers on {_machine()}")
    return SelfCheck(True, f"llmassay selfcheck: ok (log P = {answer['logprob']:.3f}, stored {REFERENCE_LOGPROB:.3f}; "
                           f"threads: {answer['n_threads']}; CPU {cpu_model()})")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--child"]:
        _child()
        return 0
    stand_in = os.environ.get(CHILD_ENV)
    result = run_selfcheck(shlex.split(stand_in) if stand_in else None)
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
