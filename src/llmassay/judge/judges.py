"""Who answers a judge prompt: a model through the engine, or a rule that is right by
construction (the oracle), so the machinery can be checked against a judge whose every
verdict is known. Both return raw text, parsed by the same `verdict` functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from llmassay.metrics import exact_match
from llmassay.types import GenerateRequest, LlmassayError

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine

ORACLE = "oracle"
SLOTS = "AB"


@dataclass(frozen=True)
class JudgeQuery:
    """One judge request: the rendered prompt and what it shows (for the oracle)."""

    prompt: str
    kind: str  # "pairwise" | "grade"
    answers: tuple[str, ...]  # in slot order: (A, B) or (answer,)
    reference: str | None = None
    scale: str = "pass-fail"
    temperature: float = 0.0
    repeat: int = 0


class Judge(Protocol):
    name: str

    def ask(self, queries: Sequence[JudgeQuery]) -> list[str]: ...

    def describe(self) -> dict[str, Any]: ...


class ModelJudge:
    """A model as judge; every request goes through the engine (deduplicated, cached so a
    rerun resumes for free, counted in the engine's stats)."""

    def __init__(self, engine: Engine, name: str, chat: bool, max_tokens: int = 192, seed: int = 0) -> None:
        self.engine, self.name, self.chat, self.max_tokens, self.seed = engine, name, chat, max_tokens, seed

    def requests(self, queries: Sequence[JudgeQuery]) -> list[GenerateRequest]:
        common: dict[str, Any] = dict(max_tokens=self.max_tokens, seed=self.seed)
        return [
            GenerateRequest(messages=(("user", q.prompt),), temperature=q.temperature, repeat=q.repeat, **common)
            if self.chat
            else GenerateRequest(prompt=q.prompt, temperature=q.temperature, repeat=q.repeat, **common)
            for q in queries
        ]

    def ask(self, queries: Sequence[JudgeQuery]) -> list[str]:
        return [g.text for g in self.engine.generate(self.requests(queries))]

    def describe(self) -> dict[str, Any]:
        return {"judge": self.name, "verdict": "generate", "chat_template": self.chat, "max_tokens": self.max_tokens,
                "seed": self.seed, "fingerprint": self.engine.fingerprint}


class OracleJudge:
    """Right by construction on tasks with exact answers: prefers the answer that matches
    the reference (exact match after normalisation), ties when both or neither do."""

    name = ORACLE

    def ask(self, queries: Sequence[JudgeQuery]) -> list[str]:
        return [self._one(q) for q in queries]

    def _one(self, q: JudgeQuery) -> str:
        if q.reference is None:
            raise LlmassayError("--judge-model oracle: an item has no reference answer (needs a task with exact answers)")
        right = [exact_match(a, q.reference) for a in q.answers]
        if q.kind == "grade":
            if q.scale == "pass-fail":
                return "[[PASS]]" if right[0] else "[[FAIL]]"
            return "[[10]]" if right[0] else "[[1]]"
        return f"[[{SLOTS[right.index(True)]}]]" if right.count(True) == 1 else "[[C]]"

    def describe(self) -> dict[str, Any]:
        return {"judge": ORACLE, "rule": "exact match against the reference"}


def check_judge_spec(spec: str) -> None:
    """A judge spec's form and backend, checked before any model loads ("expected KIND/NAME",
    "unknown backend"); `oracle` passes."""
    if spec != ORACLE:
        from llmassay.backends.base import split_model_spec

        split_model_spec(spec)


def load_judge(
    spec: str,
    model_args: dict[str, Any] | str | None = None,
    cache_path: str | None = None,
    use_cache: bool = True,
    batch_size: int = 16,
    max_tokens: int = 192,
    seed: int = 0,
    verdict: str = "generate",
    ties: bool = False,
    chat_template: str = "auto",
) -> Judge:
    """`oracle`, or a model spec as for `llmassay run` (loaded locally, cached requests),
    whose verdict is generated text (`generate`) or its most likely answer (`loglik`).
    `chat_template` (auto|on|off) follows the accuracy probe's rule (`wants_chat_template`:
    a judge prompt is zero-shot, so `auto` means "when the judge is a chat model")."""
    if spec == ORACLE:
        return OracleJudge()
    if isinstance(model_args, str):  # `k=v,k2=v2`, as --model-args
        from llmassay.backends.base import parse_model_args

        model_args = parse_model_args(model_args)
    from llmassay.backends.chat import is_chat_model
    from llmassay.engine.chat import CHAT_TEMPLATE_SETTINGS, wants_chat_template
    from llmassay.engine.cache import RequestCache
    from llmassay.engine.engine import Engine
    from llmassay.engine.executors import load_executor
    from llmassay.home import llmassay_home
    from llmassay.judge.loglik import VERDICT_MODES

    if verdict not in VERDICT_MODES:
        raise LlmassayError(f"--verdict {verdict}: unknown (known: {', '.join(VERDICT_MODES)})")
    if chat_template not in CHAT_TEMPLATE_SETTINGS:
        raise LlmassayError(f"--chat-template {chat_template}: unknown (known: {', '.join(CHAT_TEMPLATE_SETTINGS)})")
    args = model_args or {}
    backend = load_executor("local", spec, args)
    cache = RequestCache(cache_path or llmassay_home() / "cache.sqlite") if use_cache else None
    engine = Engine(backend, cache=cache, batch_size=batch_size)
    chat = wants_chat_template(chat_template, is_chat_model(backend, spec, args))
    if verdict == "loglik":
        return loglik_judge(engine, backend, spec, ties, seed, chat, forced=chat_template == "on")
    return ModelJudge(engine, spec, chat, max_tokens, seed)


def loglik_judge(engine: Engine, backend: Any, name: str, ties: bool, seed: int, chat: bool, forced: bool) -> Judge:
    """A log-likelihood judge, through the chat template when `chat` and the backend can
    render it as scorable text; `on` that it cannot is an error, `auto` stays raw and says why."""
    from llmassay.judge.chat import chat_renderer
    from llmassay.judge.loglik import LoglikJudge

    if not chat:
        return LoglikJudge(engine, name, ties, seed)
    render, how = chat_renderer(backend)
    if render is None and forced:
        raise LlmassayError(f"--chat-template on: {name} cannot score through its chat template ({how}); "
                            "use --verdict generate or --chat-template off")
    if render is None:
        return LoglikJudge(engine, name, ties, seed, template=f"none (raw prompt): a chat model, but {how}")
    return LoglikJudge(engine, name, ties, seed, chat=render, template=how)
