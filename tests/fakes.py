"""Scripted backends with planted truth, shared by every probe's tests.

A probe proves it measures what its name says by recovering what one of these backends
was built to do: a known answer key, a known position bias, a known context cut-off,
or (for regression tests) answers that are arbitrary but fixed forever. None of them
loads a model, so tests that use them belong to `make test-fast`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llmassay.types import GenerateRequest, Generation, LoglikelihoodRequest, LoglikelihoodResult

LABELS = ("A", "B", "C", "D", "E", "F", "G", "H")


def _digest(*parts: str) -> int:
    """A stable pseudo-random integer: the same text gives the same number on every machine."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def prompt_of(req: GenerateRequest) -> str:
    """The text a generation request asks about (the whole chat, joined, for messages)."""
    return req.prompt if req.prompt is not None else "\n".join(c for _, c in req.messages or ())


class ScriptedBackend:
    """The Backend protocol, answered by two functions; records every request it sees.

    `score(context, continuation) -> logprob` and `answer(request) -> text` are the plan;
    `asked` keeps the requests so a test can check what the engine actually sent.
    """

    name = "test/scripted"

    def __init__(
        self,
        score: Callable[[str, str], float],
        answer: Callable[[GenerateRequest], str],
        identity: str = "scripted",
    ) -> None:
        self._score, self._answer, self.identity = score, answer, identity
        self.asked: list[LoglikelihoodRequest | GenerateRequest] = []

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self.asked += reqs
        out = []
        for r in reqs:
            n = max(1, len(r.continuation.split()))
            out.append(LoglikelihoodResult(float(self._score(r.context, r.continuation)), False, n, len(r.context.split())))
        return out

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        self.asked += reqs
        out = []
        for r in reqs:
            text = self._answer(r)
            out.append(Generation(text, len(prompt_of(r).split()), max(1, len(text.split())), "stop", 0.0))
        return out

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode())

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": self.name, "identity": self.identity}


def hashed_backend(salt: str = "") -> ScriptedBackend:
    """Arbitrary but fixed answers: every log-likelihood and generation is a hash of the
    request. Used by regression tests, where any change of a row is a change of code."""

    def score(context: str, continuation: str) -> float:
        return -(_digest(salt, context, continuation) % 10_000) / 1_000

    def answer(req: GenerateRequest) -> str:
        h = _digest(salt, prompt_of(req), str(req.json_schema), str(req.repeat), str(req.temperature))
        if req.json_schema is not None or "JSON" in prompt_of(req):
            forms = ('{"name": "Ann", "age": 3}', '```json\n{"name": "x"}\n```', "{'name': 'y',}", "no json here", "{}")
            return forms[h % len(forms)]
        forms = ("A", "B", " C", "The answer is D", "(B)", "I don't know", "4", "12")
        return forms[h % len(forms)]

    return ScriptedBackend(score, answer, identity=f"hashed:{salt}")


def _options(context: str) -> list[str]:
    """Option labels shown in an MMLU-style prompt ("A. …" lines), in order."""
    return re.findall(r"^\(?([A-H1-8])[.)]\s", context, flags=re.M)


def position_bias_backend(slot: int = 0, strength: float = 5.0) -> ScriptedBackend:
    """Prefers the option shown in `slot` by `strength` nats, whatever it says: its true
    position bias is a share of 1.0 on that slot. Generation names the same slot."""

    def score(context: str, continuation: str) -> float:
        labels = _options(context)
        label = continuation.strip().strip("()")
        return 0.0 if labels[slot:slot + 1] == [label] else -strength

    def answer(req: GenerateRequest) -> str:
        labels = _options(prompt_of(req))
        return labels[slot] if slot < len(labels) else "?"

    return ScriptedBackend(score, answer, identity=f"position:{slot}:{strength}")


def answer_key_backend(key: Callable[[str], str | None], wrong: float = -4.0) -> ScriptedBackend:
    """Knows the answer to a prompt through `key(prompt) -> answer text` (None: no idea,
    uniform scores); it scores that continuation 0 and every other one `wrong`, and
    generates it. Its true accuracy is the share of prompts `key` answers correctly."""

    def score(context: str, continuation: str) -> float:
        truth = key(context)
        if truth is None:
            return -1.0
        return 0.0 if continuation.strip() == truth.strip() else wrong

    def answer(req: GenerateRequest) -> str:
        return key(prompt_of(req)) or ""

    return ScriptedBackend(score, answer, identity="answer-key")


def cutoff_backend(max_chars: int, inner: ScriptedBackend) -> ScriptedBackend:
    """Sees only the last `max_chars` characters of every prompt, as a model with a short
    context window would: facts before the cut-off are lost. The cut-off is the truth a
    long-context probe must recover."""

    def score(context: str, continuation: str) -> float:
        return inner._score(context[-max_chars:], continuation)

    def answer(req: GenerateRequest) -> str:
        cut = GenerateRequest(prompt=prompt_of(req)[-max_chars:], max_tokens=req.max_tokens, json_schema=req.json_schema)
        return inner._answer(cut)

    return ScriptedBackend(score, answer, identity=f"cutoff:{max_chars}:{inner.identity}")


def first_option_backend() -> ScriptedBackend:
    """The option labelled "A" (or "1") is always the most likely; it always writes "A"."""

    def score(context: str, continuation: str) -> float:
        return 0.0 if continuation.strip().strip("()") in ("A", "1") else -5.0

    return ScriptedBackend(score, lambda req: "A", identity="always-a")


def json_records(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as JSON lines, keys sorted: what a task file or a stored expectation holds."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


# -- multiple-choice tasks whose true answers are known, and a backend answering by a rule --
LETTERS = "ABCDEFGHIJ"
_OPTION = re.compile(r"(?m)^\(?([A-J0-9])[.)]\)? (.+)$")

TASK_YAML = (
    "task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files: {{test: {name}.jsonl}}\ntest_split: test\n"
    "output_type: multiple_choice\n"
    "doc_to_text: \"Question: {{{{question}}}}\\n{{% for c in choices %}}{{{{'ABCDEFGHIJ'[loop.index0]}}}}. "
    "{{{{c}}}}\\n{{% endfor %}}Answer:\"\n"
    "doc_to_choice: \"{{{{ ['A','B','C','D','E','F','G','H','I','J'][:choices|length] }}}}\"\n"
    "doc_to_target: answer\n"
)


def write_mc_task(root: Path, option_counts: Sequence[int], name: str = "mc", targets: Sequence[int] | None = None) -> Path:
    """A task whose item i has option_counts[i] options; the right one reads `right i`, the
    others `wrong i j`, and the prompt lists them as `A. …` lines."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, n in enumerate(option_counts):
        target = targets[i] if targets is not None else i % n
        choices = [f"right {i}" if j == target else f"wrong {i} {j}" for j in range(n)]
        rows.append({"question": f"Which option is right for item {i}?", "choices": choices, "answer": target})
    (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = root / f"{name}.yaml"
    path.write_text(TASK_YAML.format(name=name))
    return path


def shown_options(prompt: str) -> list[tuple[str, str]]:
    """(label, text) of every option line of the prompt."""
    return _OPTION.findall(prompt)


Rule = Callable[[str], "str | None"]  # prompt → the label the model answers (None: no answer)


def knows_everything(prompt: str) -> str | None:
    """The label of the option that reads `right …`, wherever it is shown."""
    return next((label for label, text in shown_options(prompt) if text.startswith("right")), None)


def always_first(prompt: str) -> str | None:
    options = shown_options(prompt)
    return options[0][0] if options else None


class RuleBackend:
    """A backend that answers by a rule on the prompt: the rule's label is the likely
    continuation (log-likelihood 0, every other −5) and the generated text (empty when
    the rule gives none, or `generate_rule` says otherwise). Records every request it computes."""

    name = "test/scripted"

    def __init__(self, rule: Rule, generate_rule: Rule | None = None) -> None:
        self.rule = rule
        self.generate_rule = generate_rule or rule
        self.loglikelihood_calls: list[tuple[str, str]] = []
        self.generate_calls: list[str] = []

    def loglikelihood(self, reqs):
        out = []
        for r in reqs:
            self.loglikelihood_calls.append((r.context, r.continuation))
            out.append(LoglikelihoodResult(0.0 if r.continuation.strip() == self.rule(r.context) else -5.0, True, 1, 1))
        return out

    def generate(self, reqs):
        self.generate_calls += [r.prompt for r in reqs]
        return [Generation(self.generate_rule(r.prompt) or "", 1, 1, "stop") for r in reqs]

    def tokenize(self, text):
        return list(text.encode())

    def fingerprint(self):
        return {"backend": "test-scripted", "id": id(self)}


# -- judges whose biases are planted (they read the default MT-Bench judge prompts) --
_SHOWN = re.compile(r"\[The Start of Assistant ([AB])'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]", re.S)
_QUESTION = re.compile(r"\[(?:User )?Question\]\n(.*?)\n\n\[The Start", re.S)
_GRADED = re.compile(r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]", re.S)
ECHO = 'output "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'


def judge_backend(rule: str, key: Callable[[str], str] | None = None, flip_repeats: bool = False) -> ScriptedBackend:
    """A judge with a known bias: `first` always names slot A, `longer` the longer answer
    (tie when equal), `correct` the answer equal to `key(question)` (tie when both or
    neither), `echo` repeats the format instructions (unparseable by construction). With
    `flip_repeats`, a request asked again at temperature > 0 (odd `repeat`) gets the other
    slot: its repetition stability is 0. Grade prompts get [[PASS]]/[[FAIL]] by `key`."""

    def answer(req: GenerateRequest) -> str:
        text = prompt_of(req)
        question = _QUESTION.search(text).group(1)
        graded = _GRADED.search(text)
        if graded:
            right = key is not None and graded.group(1).strip() == key(question)
            return "Looks right. [[PASS]]" if right else "Wrong. [[FAIL]]"
        shown = dict(_SHOWN.findall(text))
        a, b = shown["A"], shown["B"]
        if rule == "echo":
            return ECHO
        if rule == "first":
            slot = "A"
        elif rule == "longer":
            slot = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "C"
        elif rule == "correct":
            truth = key(question) if key else None
            hits = [a.strip() == truth, b.strip() == truth]
            slot = "AB"[hits.index(True)] if hits.count(True) == 1 else "C"
        else:
            raise ValueError(rule)
        if flip_repeats and req.temperature > 0 and req.repeat % 2 == 1 and slot != "C":
            slot = "B" if slot == "A" else "A"
        return f"Both answers were considered. Final verdict: [[{slot}]]"

    return ScriptedBackend(lambda c, x: 0.0, answer, identity=f"judge:{rule}:{flip_repeats}")
