"""The values that flow between probes, the engine and backends.

Requests are frozen dataclasses so the engine can hash them: identical requests from
different samples or probes are computed once and cached under one key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


class LlmassayError(Exception):
    """An error meant for the user: its message is one line that names the cause."""

    def __str__(self) -> str:
        # A newline or control character from a file name, a task field or a server's
        # answer must not break the one line: such characters are shown escaped.
        text = super().__str__()
        return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
