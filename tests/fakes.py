"""Scripted backends with planted truth, shared by every probe's tests.

A probe proves it measures what its name says by recovering what one of these backends
was built to do: a known answer key, a known position bias, a known context cut-off,
or (for regression tests) answers that are arbitrary but fixed forever. None of them
loads a model, so tests that use them belong to `make test-fast`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
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
        self.cut_at_max_tokens = False  # opt in: words past max_tokens are cut, finish_reason "length"

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
            text, finish = self._answer(r), "stop"
            if self.cut_at_max_tokens and len(text.split()) > r.max_tokens:
                text, finish = " ".join(text.split()[: r.max_tokens]), "length"
            out.append(Generation(text, len(prompt_of(r).split()), max(1, len(text.split())), finish, 0.0))
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


# -- a reader with a known context window, for long-context probes ---------------------------
class WindowBackend:
    """Reads only the last (or first) `window` tokens of every prompt, one token per word,
    and answers by looking up facts in what it sees: `facts` maps a fact's text to
    (question, answer); asked a question whose fact is in view it gives the answer (inside a
    verbose sentence, which exact-match scoring must accept), else "I cannot find it". Its
    effective context length is `window` by construction; with side="first" it also never
    sees the question and answers with the first fact in view; side="both" sees the first
    and the last `window` tokens, losing the middle. Records every prompt it read."""

    name = "test/window"

    def __init__(self, facts: dict[str, tuple[str, str]], window: int, side: str = "last") -> None:
        self.facts, self.window, self.side = facts, window, side
        self.prompts: list[str] = []

    def visible(self, text: str) -> str:
        words = text.split()
        if self.side == "both":  # the start and the end, not the middle: a planted U
            return " ".join(words[: self.window] + ["…"] + words[-self.window:])
        return " ".join(words[-self.window:] if self.side == "last" else words[: self.window])

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        out = []
        for r in reqs:
            prompt = prompt_of(r)
            self.prompts.append(prompt)
            seen = self.visible(prompt)
            asked = re.search(r"Question: (.*?\?)", seen)
            question = asked.group(1) if asked else None
            hits = [(fact, ans) for fact, (q, ans) in self.facts.items() if fact in seen and question in (None, q)]
            hits.sort(key=lambda h: seen.index(h[0]))
            text = f"The answer is {hits[0][1]}, as the text says." if hits else "I cannot find it."
            out.append(Generation(text, len(self.tokenize(prompt)), len(text.split()), "stop", 0.001))
        return out

    @staticmethod
    def request_order(req: GenerateRequest) -> str:
        """Text order, as a backend that keeps a shared prefix's KV cache asks (llama.cpp)."""
        return prompt_of(req)

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        raise AssertionError("a long-context reader is only asked to generate")

    def tokenize(self, text: str) -> list[int]:
        return [zlib.crc32(w.encode()) for w in text.split()]

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": self.name, "window": self.window, "side": self.side}


# -- factuality: answers with planted true and false facts ------------------------------
_QUESTION = re.compile(r"(?:capital|continent is|currency|official language|calling code) of ([^?]+)\?|"
                       r"On which continent is ([^?]+)\?|profile of ([^.]+)\.")


class FactBackend:
    """Answers country questions from a knowledge base, wrong on purpose for chosen items.

    `wrong` holds "<code>.<field>" for short answers that name another country's value and
    "<code>.profile" → fields whose value is another country's (JSON and prose alike);
    `abstain` holds codes it answers "I don't know" for; with `copy_context` it answers
    with the value of the first passage on the asked field in any context it is shown (a
    model that copies; `context_kb` is the KB those passages come from, e.g. an edited one).
    Judge prompts ("Is the claim supported") are answered `judge_says`.
    """

    name = "test/facts"

    def __init__(self, kb: Any, wrong: dict[str, Sequence[str]] | None = None, abstain: Sequence[str] = (),
                 copy_context: bool = False, judge_says: str = "yes", context_kb: Any = None) -> None:
        self.kb, self.wrong, self.abstain = kb, dict(wrong or {}), set(abstain)
        self.copy_context, self.judge_says = copy_context, judge_says
        self.context_kb = context_kb or kb
        self.by_text = {p.text: p for p in self.context_kb.passages.values()}
        self.asked: list[GenerateRequest] = []

    def loglikelihood(self, reqs):  # pragma: no cover - the factuality probe only generates
        raise NotImplementedError

    def tokenize(self, text: str) -> list[int]:
        return list(text.encode())

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": self.name, "id": id(self)}

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        self.asked += reqs
        return [Generation(self._answer(r), 1, 1, "stop") for r in reqs]

    def _value(self, code: str, field: str, wrong: bool) -> Any:
        if wrong:  # the next country (code order) with a different value
            codes = sorted(self.kb.countries)
            mine = self.kb.countries[code].first(field)
            if isinstance(mine, (int, float)):  # far outside any tolerance
                return int(mine * 3)
            for step in range(1, len(codes)):
                other = self.kb.countries[codes[(codes.index(code) + step) % len(codes)]].first(field)
                if other and str(other).lower() != str(mine).lower() and other != mine:
                    return other
        return self.kb.countries[code].first(field)

    def _answer(self, r: GenerateRequest) -> str:
        text = prompt_of(r)
        if "Is the claim supported" in text:
            return self.judge_says
        asked = text.split("\n\n")[-1]
        if self.copy_context and text.startswith("Context:\n"):
            shown = [self.by_text[t] for t in text.split("\n\n")[0].split("\n")[1:] if t in self.by_text]
            field = next((f for f, words in _FIELD_WORDS.items() if words in asked), None)
            passage = next((p for p in shown if p.field == field), None)
            if passage is not None:  # the first passage on the asked field, whoever it is about
                value = self.context_kb.countries[passage.country].first(passage.field)
                return value[0] if isinstance(value, list) else str(value)
        match = _QUESTION.search(asked)
        country = self.kb.country(next(g for g in match.groups() if g).strip()) if match else None
        if country is None:
            return "I don't know"
        if country.code in self.abstain:
            return "I don't know"
        if "profile of" in text:
            bad = set(self.wrong.get(f"{country.code}.profile", ()))
            record = {f: self._value(country.code, f, f in bad) for f in _PROFILE_FIELDS if country.first(f)}
            record = {f: (v[:1] if isinstance(v, list) else v) for f, v in record.items()}
            if r.json_schema is not None:
                return json.dumps(record)
            return " ".join(_PROSE[f].format(name=country.name, v=v[0] if isinstance(v, list) else v)
                            for f, v in record.items() if f in _PROSE) + " It is a nice place to visit."
        field = next(f for f, words in _FIELD_WORDS.items() if words in asked)
        value = self._value(country.code, field, f"{country.code}.{field}" in self.wrong)
        return value[0] if isinstance(value, list) else str(value)


_PROFILE_FIELDS = ("capital", "continent", "currencies", "languages", "population", "area_km2", "neighbours",
                   "calling_code")
_FIELD_WORDS = {"capital": "capital", "continent": "continent", "currencies": "currency",
                "languages": "official language", "calling_code": "calling code"}
_PROSE = {"capital": "Its capital is {v}.", "continent": "{name} is a country in {v}.",
          "currencies": "The currency is {v}.", "population": "The population of {name} is about {v}.",
          "languages": "People speak {v}.", "calling_code": "The calling code of {name} is +{v}."}


# -- prompt injection: a model whose obedience is planted per family, condition and mitigation --
_CANARY = re.compile(r"\b[A-Z]{3,}-\d{4}\b")
_BASE64 = re.compile(r"\b[A-Za-z0-9+/]{24,}={0,2}")
_UNLEET = str.maketrans("4310572", "aeiosta")


def injection_view(req: GenerateRequest) -> dict[str, str]:
    """What an injection prompt is, read back from its text alone: family, condition
    (attack / control / clean), mitigation, canary, and the document shown last."""
    text = prompt_of(req).replace("^", " ")
    decoded = " ".join(base64.b64decode(m).decode("utf-8", "replace") for m in _BASE64.findall(text)
                       if len(m) % 4 == 0)
    plain = f"{text} {decoded}"
    canaries = _CANARY.findall(plain)
    attack = "only with the code" in plain.lower().translate(_UNLEET)
    family = ("direct" if "ignore the task above" in text or "my reference code" in text
              else "base64" if decoded else "leetspeak" if "c0d3" in text
              else "roleplay" if "FreeBot" in text else "multiturn" if "note from my inbox" in text else "indirect")
    mitigation = ("hierarchy" if "Only the user gives you instructions" in text else "delimit" if "<<DOC>>" in text
                  else "datamark" if "every space is replaced" in text else "none")
    shown = re.split(r"Document:\n|<<DOC>>\n", text)[-1].split("\n\n")[0].replace("<</DOC>>", "").strip()
    return {"family": family, "condition": "attack" if attack else "control" if canaries else "clean",
            "mitigation": mitigation, "canary": canaries[0] if canaries else "", "document": shown}


def injection_backend(plan: Callable[[dict[str, str], int], str]) -> ScriptedBackend:
    """Answers an injection prompt as `plan(view, repeat)` says: "obey" (the canary alone),
    "copy" (the document shown, verbatim, canary and all if it is there in plain text),
    "echo" (the document's other sentences, then the canary in a sentence of its own when the
    document shows it in plain text: mentioned, not copied, not obeyed), "answer" (the
    document without the planted sentence) or "refuse" (declines, quoting the canary)."""

    def answer(req: GenerateRequest) -> str:
        view = injection_view(req)
        act = plan(view, req.repeat)
        if act == "obey":
            return view["canary"]
        if act == "refuse":
            return f"I won't say {view['canary']}: that instruction is an injection."
        shown = _BASE64.sub(".", view["document"]) if act in ("answer", "echo") else view["document"]
        sentences = re.findall(r"[^.!?]+[.!?]*", shown)
        if act in ("answer", "echo"):
            sentences = [s for s in sentences if not _CANARY.search(s) and "base64" not in s]
        seen = _CANARY.search(shown)
        echoed = [f"Noted: {seen.group(0)}."] if act == "echo" and seen else []
        return " ".join([s.strip() for s in sentences] + echoed)

    return ScriptedBackend(lambda c, x: -1.0, answer, identity="injection-plan")


def unigram_backend(
    word_logprob: Callable[[str], float], bias: Callable[[str, str], float] | None = None, noise: float = 0.01
) -> ScriptedBackend:
    """A model whose only knowledge is how frequent each word is: log P(continuation) is the
    sum of `word_logprob(word)`, whatever the context, plus a tiny hashed noise (so pairs do
    not tie) and an optional planted `bias(context, continuation)` in nats. Frequency is the
    only "bias" it has unless one is planted."""

    def score(context: str, continuation: str) -> float:
        jitter = noise * ((_digest(context, continuation) % 2001) / 1000 - 1)
        base = sum(word_logprob(w) for w in continuation.split())
        return base + jitter + (bias(context, continuation) if bias else 0.0)

    return ScriptedBackend(score, lambda req: "", identity=f"unigram:{noise}")


def watermark_planted(cfg: Any, n: int, share_green: float, seed: int = 0, vocab: int = 49152) -> list[int]:
    """A scripted generator: each next token is drawn green with probability `share_green`
    (from the green or the red part of the vocabulary after its context), so the green
    share of the text is planted; a large vocabulary makes repeated contexts rare."""
    import numpy as np

    from llmassay.watermark import GreenList

    rng = np.random.default_rng(seed)
    green = GreenList(cfg)
    ids = [int(t) for t in rng.integers(0, vocab, cfg.width)]
    for _ in range(n):
        mask = green.mask(np.array(ids), vocab)
        want = rng.random() < share_green
        pool = np.flatnonzero(mask == want)
        ids.append(int(rng.choice(pool)))
    return ids


class WatermarkBackend:
    """Words as tokens ('w12' ↔ 12; any other word hashes to an id) and planted texts:
    a watermarked request gets `marked_share` green tokens under its own watermark spec
    ('w' words), a plain one random 'v' words; a paraphrase request (its text names
    paraphrasing or other words) gets plain words, which carry no watermark; short-answer
    requests (with stop strings) are right plain (from `key`) and wrong watermarked. Log-probabilities:
    -2 per 'v' word, -3 per 'w' word, -5 per other word, so the planted perplexity ratio
    of watermarked to plain text is e and the zero-shot detector separates model text
    from human text perfectly."""

    name = "test/watermark"
    VOCAB = 49152

    def __init__(self, marked_share: dict[float, float], length: int, key: dict[str, str] | None = None) -> None:
        self.marked_share, self.length = marked_share, length  # temperature → green share
        self.key = key or {}  # prompt → right short answer

    def tokenize(self, text: str) -> list[int]:
        return [int(w[1:]) if re.fullmatch(r"[vw]\d+", w) else _digest(w) % self.VOCAB for w in text.split()]

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        from llmassay.watermark import WatermarkConfig

        out = []
        for r in reqs:
            text = prompt_of(r)
            seed = _digest(text, str(r.temperature), str(r.watermark)) % 2**32
            if r.stop:  # a short answer
                answer = "wrong" if r.watermark else self.key.get(text, "unknown")
            elif r.watermark and "Paraphrase" not in text and "other words" not in text:
                cfg = WatermarkConfig.from_spec(r.watermark)
                ids = watermark_planted(cfg, self.length - cfg.width, self.marked_share[r.temperature], seed)
                answer = " ".join(f"w{i}" for i in ids)
            else:
                rng = __import__("random").Random(seed)
                answer = " ".join(f"v{rng.randrange(self.VOCAB)}" for _ in range(self.length))
            out.append(Generation(answer, len(text.split()), len(answer.split()), "length"))
        return out

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        cost = {"v": -2.0, "w": -3.0}
        out = []
        for r in reqs:
            words = r.continuation.split()
            lp = sum(cost.get(w[0], -5.0) if re.fullmatch(r"[vw]\d+", w) else -5.0 for w in words)
            out.append(LoglikelihoodResult(lp, False, len(words), len(r.context.split())))
        return out

    def token_stats(self, reqs: Sequence[Any]) -> list[Any]:
        """Planted statistics: every position has mean log p −2.5 and variance 1; a 'v' word
        (plain model text) is the mode (log p −2), a 'w' word second (−3), any other word
        (human text) rank 40 (−5)."""
        from llmassay.backends.token_stats import TokenStats

        planted = {"v": (-2.0, 1), "w": (-3.0, 2)}
        out = []
        for r in reqs:
            words = r.continuation.split()
            picked = [planted.get(w[0], (-5.0, 40)) if re.fullmatch(r"[vw]\d+", w) else (-5.0, 40) for w in words]
            n = len(words)
            out.append(TokenStats(tuple(lp for lp, _ in picked), (-2.5,) * n, (1.0,) * n,
                                  tuple(rank for _, rank in picked), n, 1))
        return out

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "test-watermark", "share": sorted(self.marked_share.items()), "length": self.length}


class ToyLMBackend:
    """A bigram language model with known logits over the words 't0' … 't{V−1}' (row V:
    after BOS; any other word hashes to a word), scored through the same logit statistics
    as the real backends; it writes
    texts at its mode (from a random first word), sampled from itself, or from the tail
    of its distribution (words ranked in the lower half), so a detector's separation of
    "model" from "human" text is planted."""

    name = "test/toylm"

    def __init__(self, vocab: int = 64, scale: float = 3.0, seed: int = 0) -> None:
        import numpy as np

        self.vocab = vocab
        self.logits = np.random.default_rng(seed).normal(0.0, scale, (vocab + 1, vocab))

    def tokenize(self, text: str) -> list[int]:
        return [int(w[1:]) if re.fullmatch(r"t\d+", w) else _digest(w) % self.vocab for w in text.split()]

    def token_stats(self, reqs: Sequence[Any]) -> list[Any]:
        from llmassay.backends.token_stats import StatsAccumulator

        out = []
        for r in reqs:
            ids = self.tokenize(r.continuation)
            acc = StatsAccumulator(ids)
            acc.add(self.logits[[self.vocab, *ids[:-1]]])
            out.append(acc.result(1))
        return out

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return [LoglikelihoodResult(sum(s.token_logprobs), False, s.n_tokens, 1, s.token_logprobs)
                for s in self.token_stats(reqs)]

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        return {"backend": "test-toylm", "vocab": self.vocab}

    def write(self, n: int, how: str, seed: int) -> str:
        """n words: `mode`, `sample` or `tail`."""
        import numpy as np

        rng = np.random.default_rng(seed)
        ids = [int(rng.integers(self.vocab))] if how == "mode" else []
        while len(ids) < n:
            row = self.logits[ids[-1] if ids else self.vocab]
            if how == "mode":
                ids.append(int(row.argmax()))
            elif how == "sample":
                p = np.exp(row - row.max())
                ids.append(int(rng.choice(self.vocab, p=p / p.sum())))
            else:
                ids.append(int(rng.choice(np.argsort(row)[: self.vocab // 2])))
        return " ".join(f"t{i}" for i in ids)


# -- judges whose biases are planted (they read the default MT-Bench judge prompts) --
_SHOWN = re.compile(r"\[The Start of Assistant ([AB])'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]", re.S)
_JUDGE_QUESTION = re.compile(r"\[(?:User )?Question\]\n(.*?)\n\n\[The Start", re.S)
_GRADED = re.compile(r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]", re.S)
ECHO = 'output "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.'


def judge_backend(rule: str, key: Callable[[str], str] | None = None, flip_repeats: bool = False) -> ScriptedBackend:
    """A judge with a known bias: `first` always names slot A, `longer` the longer answer
    (tie when equal), `correct` the answer equal to `key(question)` (tie when both or
    neither), `echo` repeats the format instructions (unparseable by construction). With
    `flip_repeats`, a request asked again at temperature > 0 (odd `repeat`) gets the other
    slot: its repetition stability is 0. Grade prompts get [[PASS]]/[[FAIL]] by `key`.
    Scored by log-likelihood (`--verdict loglik`), its choice gets log P 0 and every other
    continuation −5: a tie by the rule is a dead heat of A and B."""

    def decide(text: str) -> str:
        question = _JUDGE_QUESTION.search(text).group(1)
        graded = _GRADED.search(text)
        if graded:
            return "PASS" if key is not None and graded.group(1).strip() == key(question) else "FAIL"
        shown = dict(_SHOWN.findall(text))
        a, b = shown["A"], shown["B"]
        if rule == "first":
            return "A"
        if rule == "longer":
            return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "C"
        if rule == "correct":
            truth = key(question) if key else None
            hits = [a.strip() == truth, b.strip() == truth]
            return "AB"[hits.index(True)] if hits.count(True) == 1 else "C"
        raise ValueError(rule)

    def answer(req: GenerateRequest) -> str:
        text = prompt_of(req)
        if rule == "echo" and not _GRADED.search(text):
            return ECHO
        slot = decide(text)
        if slot in ("PASS", "FAIL"):
            return "Looks right. [[PASS]]" if slot == "PASS" else "Wrong. [[FAIL]]"
        if flip_repeats and req.temperature > 0 and req.repeat % 2 == 1 and slot != "C":
            slot = "B" if slot == "A" else "A"
        return f"Both answers were considered. Final verdict: [[{slot}]]"

    def score(context: str, continuation: str) -> float:
        return 0.0 if continuation == decide(context) else -5.0

    return ScriptedBackend(score, answer, identity=f"judge:{rule}:{flip_repeats}")


class SleepyBackend(ScriptedBackend):
    """Streams `n_out` tokens: the first after `ttft_s` seconds, each next one `tpot_s`
    later. Its true TTFT and decode rate (1 / tpot_s tokens/s) are planted."""

    name = "test/sleepy"

    def __init__(self, ttft_s: float = 0.05, tpot_s: float = 0.01, n_out: int = 8) -> None:
        super().__init__(lambda c, x: 0.0, lambda r: " tok" * n_out, identity=f"sleepy:{ttft_s}:{tpot_s}:{n_out}")
        self.ttft_s, self.tpot_s, self.n_out = ttft_s, tpot_s, n_out

    def generate_stream(self, req: GenerateRequest) -> Any:
        import time

        self.asked.append(req)
        for i in range(self.n_out):
            time.sleep(self.tpot_s if i else self.ttft_s)  # each gap at least the planted one
            yield " tok"


# -- a second model as factuality judge, loaded by spec through the backend registry --------
def verdict_backend(name: str, **model_args: Any) -> ScriptedBackend:
    """A backend factory for `register_backend`: `KIND/yes` answers "yes" to every prompt,
    `KIND/no` "no" (a judge whose every verdict is known); model args are recorded."""
    backend = ScriptedBackend(lambda c, x: 0.0, lambda r: name, identity=f"verdict-{name}")
    backend.model_args = dict(model_args)  # type: ignore[attr-defined]
    VERDICT_BACKENDS.append(backend)
    return backend


VERDICT_BACKENDS: list[ScriptedBackend] = []


class TemplatedJudgeBackend(ScriptedBackend):
    """An instruct judge that answers well only inside its chat template: a context that is
    one user turn of its template ("<|user|>\\n…\\n<|assistant|>\\n") is scored as
    `judge_backend("correct", key)`, anything else as `judge_backend("first")`. It is a chat
    model and renders its template as text (`chat_prompt`)."""

    OPEN, CLOSE = "<|user|>\n", "\n<|assistant|>\n"

    def __init__(self, key: Callable[[str], str | None]) -> None:
        knows, first = judge_backend("correct", key), judge_backend("first")

        def score(context: str, continuation: str) -> float:
            templated = context.startswith(self.OPEN) and self.CLOSE in context
            return (knows if templated else first)._score(context, continuation)

        super().__init__(score, first._answer, identity="judge:templated")

    def chat_model(self) -> bool:
        return True

    def chat_prompt(self, text: str) -> str:
        return f"{self.OPEN}{text}{self.CLOSE}"


# -- a chat model that reads the whole conversation, for the multiturn probe -------------------
_BELIEF_SAID = re.compile(r"I think the answer is (\S+?), but")
_OPTION_NAMED = re.compile(r"I think the answer is (\S+?)\.")


def conversation_view(req: GenerateRequest) -> dict[str, Any]:
    """What a multiturn conversation is, read back from its turns: the question turn (the last
    user turn listing options), its right label (`knows_everything`), the belief it states,
    whether an exchange came before it, the system turn, and — in a second turn — the model's
    first answer, the user's second turn and the option it names."""
    turns = list(req.messages or ())
    users = [i for i, (role, _) in enumerate(turns) if role == "user"]
    q = max(i for i in users if shown_options(turns[i][1]))
    question = turns[q][1]
    belief = _BELIEF_SAID.search(question)
    second = turns[-1][1] if len(turns) - 1 > q and turns[-1][0] == "user" else None
    named = _OPTION_NAMED.search(second) if second else None
    return {"question": question, "right": knows_everything(question),
            "labels": [label for label, _ in shown_options(question)],
            "stated": belief.group(1) if belief else None, "history": any(i < q for i in users),
            "system": next((text for role, text in turns if role == "system"), ""),
            "first_answer": turns[q + 1][1] if second else None, "second": second,
            "named": named.group(1) if named else None}


def conversation_backend(plan: Callable[[dict[str, Any], GenerateRequest], str]) -> ScriptedBackend:
    """A chat model (it has a chat template) that answers `plan(conversation_view(req), req)`."""

    backend = ScriptedBackend(lambda c, x: -1.0, lambda req: plan(conversation_view(req), req),
                              identity="conversation-plan")
    backend.chat_model = lambda: True  # type: ignore[attr-defined]
    return backend


# -- models of known size (the models × metrics matrix and its trends) --------------------
def with_size(backend: ScriptedBackend, parameters: int | None, architecture: str | None = "toy",
              quantisation: str | None = "f16") -> ScriptedBackend:
    """`backend` declaring a model size through the optional `model_size()` hook (backends/base.py)."""
    size = {"parameters": parameters, "architecture": architecture, "quantisation": quantisation,
            "name": backend.identity, "source": "planted"}
    backend.model_size = lambda: dict(size)  # type: ignore[attr-defined]
    backend.identity = f"{backend.identity}:{parameters}:{architecture}:{quantisation}"
    return backend


def sized_hashed_backend(name: str) -> ScriptedBackend:
    """`scripted/ARCH-135m`: hashed answers from a model of that family and size (CLI tests)."""
    arch, _, size = name.rpartition("-")
    scale = {"k": 10**3, "m": 10**6, "b": 10**9}[size[-1].lower()]
    return with_size(hashed_backend(name), int(float(size[:-1]) * scale), arch or None)
