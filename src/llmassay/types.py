"""The values that flow between probes, the engine and backends.

Requests are frozen dataclasses so the engine can hash them: identical requests from
different samples or probes are computed once and cached under one key.
"""

from __future__ import annotations

import errno
import json
from dataclasses import asdict, dataclass, field
from typing import Any


class LlmassayError(Exception):
    """An error meant for the user: its message is one line that names the cause.

    This class is a problem with what was given (an argument, a file, a model arg, a key
    that is not set): the command exits 2, as for a usage error. A `RuntimeFailure` is the
    world failing a valid command (a server down or erring, a full disk): it exits 1.
    """

    exit_code = 2

    def __str__(self) -> str:
        # A newline or control character from a file name, a task field or a server's
        # answer must not break the one line: such characters are shown escaped.
        text = super().__str__()
        return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

    def reworded(self, message: str) -> LlmassayError:
        """The same kind of error (and exit code) with a new message, for a caller adding context."""
        return (RuntimeFailure if self.exit_code == RuntimeFailure.exit_code else LlmassayError)(message)


class RuntimeFailure(LlmassayError):
    """A valid command the run could not finish: an unreachable or failing server, a full
    disk, a worker that died. Exit code 1 (CI tells it from a usage error, 2)."""

    exit_code = 1


# errno values that say the machine failed (a full disk, a file system gone read-only mid-run),
# not that the path given is unusable (no permission, not a directory: exit 2)
RESOURCE_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EIO", "EFBIG", "ENOMEM", "EROFS") if hasattr(errno, n))


def os_failure(message: str, exc: BaseException) -> LlmassayError:
    """An OSError as a one-line error: a full disk or an I/O error is a RuntimeFailure; a
    path that cannot be used (not a directory, no permission, read-only) is the user's to fix."""
    return (RuntimeFailure if getattr(exc, "errno", None) in RESOURCE_ERRNOS else LlmassayError)(message)


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context), the unit of multiple-choice scoring."""

    context: str
    continuation: str

    def size(self) -> int:
        return len(self.context) + len(self.continuation)


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    is_greedy: bool
    n_tokens: int  # tokens in the continuation
    n_context_tokens: int = 0
    token_logprobs: tuple[float, ...] = ()
    # Context tokens dropped from the left to fit the model's window (lm-eval's rule): a
    # score over a cut context is flagged per result, never silent.
    n_truncated_tokens: int = 0


@dataclass(frozen=True)
class GenerateRequest:
    """A prompt (raw text) or a chat (role, content) tuple, plus decoding settings.

    `json_schema` is a canonical JSON string (not a dict) so the request stays hashable;
    use `GenerateRequest.with_schema` to build one from a dict. `repeat` distinguishes
    intentional repeats at temperature > 0, which must not be deduplicated.
    """

    prompt: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    seed: int = 0
    json_schema: str | None = None
    grammar: str | None = None
    repeat: int = 0
    watermark: str | None = None  # a WatermarkConfig.spec(): green-list bias while decoding

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("GenerateRequest needs exactly one of prompt or messages")

    @staticmethod
    def schema_string(schema: dict[str, Any]) -> str:
        return json.dumps(schema, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def schema_label(schema_json: str) -> str:
        """How an error names a schema (its title, else its first characters), so that a
        probe can tell which of its items a backend's schema error is about."""
        try:
            title = json.loads(schema_json).get("title")
        except (ValueError, AttributeError):
            title = None
        return f"JSON schema {title!r}" if title else f"JSON schema {schema_json[:60]!r}"

    def size(self) -> int:
        if self.prompt is not None:
            return len(self.prompt)
        return sum(len(c) for _, c in self.messages or ())


@dataclass(frozen=True)
class Generation:
    text: str
    n_prompt_tokens: int
    n_tokens: int
    finish_reason: str
    latency_s: float = 0.0
    ttft_s: float | None = None
    # Prompt tokens dropped from the left so prompt + max_tokens fit the window.
    n_truncated_tokens: int = 0


NOT_ESTIMABLE = "not estimable"


def bound_text(bound: float | None, fmt: str = ".4f") -> str:
    """A CI bound for display: "not estimable" where the data gave none, never a number."""
    return NOT_ESTIMABLE if bound is None else format(bound, fmt)


@dataclass(frozen=True)
class Metric:
    """A reported number always carries its uncertainty and its sample size.

    A CI bound is None where the data cannot give one (an upper bound for a p99 from fewer
    than 368 samples: `llmassay.metrics.quantile_ci`); it is shown as "not estimable",
    never as a number, and serialised as JSON null.
    """

    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    stderr: float | None = None
    method: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def interval(self) -> tuple[float, float]:
        """(ci_low, ci_high) of a metric whose method always gives both (bootstrap, Wilson):
        a missing bound is an error here rather than a None compared as a number."""
        if self.ci_low is None or self.ci_high is None:
            raise ValueError(f"{self.method or 'metric'}: no confidence interval (a bound is not estimable)")
        return self.ci_low, self.ci_high


@dataclass
class Sample:
    """One evaluation item after templating: the exact prompt text and its answer key.

    For multiple choice `choices` holds the answer strings (e.g. "A"; the task's
    target_delimiter goes before each when scored) and `target` the index of the right
    one; for generation `target` is the reference string.
    """

    id: str
    prompt: str
    choices: list[str] | None
    target: int | str
    doc: dict[str, Any] = field(default_factory=dict)
