"""lm-eval's answer filters and `exact_match` options, for generation tasks.

A `filter_list` turns one generation into the answer each named pipeline extracts
(`strict-match`: the number after '####'; `flexible-extract`: the last number), and each
pipeline gets its own result, named as lm-eval names it: `exact_match,strict-match`.
`exact_match`'s options (`ignore_case`, `ignore_punctuation`, `ignore_numbers`,
`regexes_to_ignore`) follow lm-eval's `exact_match_hf_evaluate`. Tasks that name neither
keep llmassay's normalised exact match (case, spaces, quotes, final full stop), reported
as plain `exact_match`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmassay.metrics import exact_match as normalised_exact_match
from llmassay.types import LlmassayError

Filter = Callable[..., list[str]]  # (responses), or (responses, doc) where it sets `needs_doc`
TEXT_METRICS = ("bleu", "chrf", "ter")  # sacrebleu's corpus scores, as lm-eval's
EXACT_MATCH_OPTIONS = ("ignore_case", "ignore_punctuation", "ignore_numbers", "regexes_to_ignore")


def _regex(regex_pattern: str = r"#### (\-?[0-9\.\,]+)", group_select: int = 0, fallback: str = "[invalid]") -> Filter:
    pattern = re.compile(regex_pattern)

    def apply(responses: list[str]) -> list[str]:
        out = []
        for resp in responses:
            found: Any = pattern.findall(resp if isinstance(resp, str) else "")
            if not found:
                out.append(fallback)
                continue
            match = found[group_select]
            if isinstance(match, tuple):
                match = next((m for m in match if m), fallback)
            out.append(match.strip())
        return out

    return apply


_PUNCTUATION = None  # unicode punctuation (categories P*), built on first use as lm-eval's


def _punctuation_table() -> dict[int, None]:
    global _PUNCTUATION
    if _PUNCTUATION is None:
        import sys
        import unicodedata

        _PUNCTUATION = dict.fromkeys(i for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P"))
    return _PUNCTUATION


def _multi_choice_regex(regex_pattern: str = r"#### (\-?[0-9\.\,]+)", group_select: int = 0, fallback: str = "[invalid]",
                        ignore_case: bool = False, ignore_punctuation: bool = False,
                        regexes_to_ignore: list[str] | None = None) -> Filter:
    """lm-eval's `multi_choice_regex`: the pattern (e.g. '(\\([A-Z]\\))'), else a choice's text
    found in the answer (case and punctuation ignored as asked) as its letter '(B)', else
    ': B'; reads the document's `choices`."""
    pattern = re.compile(regex_pattern)

    def find(regex: re.Pattern[str], resp: str, convert: dict[str, str] | None = None) -> Any:
        match: Any = regex.findall(resp)
        if match:
            match = match[group_select]
            if isinstance(match, tuple):
                match = next((m for m in match if m), "")
                if not match:
                    return ""
            match = match.strip()
            if match and convert and match in convert:
                match = convert[match]
        return match

    def ignore(text: str) -> str:
        for r in regexes_to_ignore or ():
            text = re.sub(r, "", text)
        if ignore_case:
            text = text.lower()
        if ignore_punctuation:
            text = text.translate(_punctuation_table())
        return text

    def apply(responses: list[str], doc: dict[str, Any]) -> list[str]:
        choices = doc.get("choices")
        if not isinstance(choices, list):
            raise LlmassayError("filter 'multi_choice_regex' needs a 'choices' list in each document")
        letters = [chr(ord("A") + i) for i in range(len(choices))]
        to_letter = {ignore(str(c).strip()): f"({a})" for c, a in zip(choices, letters)}
        by_text = re.compile("|".join(sorted((re.escape(ignore(str(c).strip())) for c in choices), key=len, reverse=True)))
        by_letter = re.compile(rf":[\s]*({'|'.join(letters)})")
        out = []
        for resp in responses:
            resp = resp if isinstance(resp, str) else ""
            match = (find(pattern, resp) or find(by_text, ignore(resp), to_letter)
                     or find(by_letter, resp, {a: f"({a})" for a in letters}))
            out.append(match or fallback)
        return out

    apply.needs_doc = True  # type: ignore[attr-defined]
    return apply


def _take_first() -> Filter:
    return lambda responses: responses[:1]


def _take_first_k(k: int) -> Filter:
    return lambda responses: responses[:k]


def _majority_vote() -> Filter:
    return lambda responses: [Counter(responses).most_common(1)[0][0]] if responses else []


def _map(mapping_dict: dict[str, str], default_value: str | None = None) -> Filter:
    # lm-eval's MapFilter: None for an unmapped response when no default is given
    return lambda responses: [mapping_dict.get(r, default_value) for r in responses]  # type: ignore[misc]


FILTERS: dict[str, Callable[..., Filter]] = {
    "regex": _regex,
    "take_first": _take_first,
    "take_first_k": _take_first_k,
    "majority_vote": _majority_vote,
    "remove_whitespace": lambda: lambda responses: [r.strip() for r in responses],
    "lowercase": lambda: lambda responses: [r.lower() for r in responses],
    "uppercase": lambda: lambda responses: [r.upper() for r in responses],
    "map": _map,
    "multi_choice_regex": _multi_choice_regex,
}


@dataclass
class FilterPipeline:
    name: str
    steps: list[Filter]
    spec: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, responses: list[str], doc: dict[str, Any] | None = None) -> str:
        for step in self.steps:
            responses = step(responses, doc or {}) if getattr(step, "needs_doc", False) else step(responses)
        return responses[0] if responses else ""


def lm_eval_exact_match(prediction: str, reference: str, regexes_to_ignore: list[str] | None = None,
                        ignore_case: bool = False, ignore_punctuation: bool = False, ignore_numbers: bool = False) -> bool:
    """lm-eval's `exact_match_hf_evaluate` for one pair."""
    for pattern in regexes_to_ignore or ():
        prediction, reference = re.sub(pattern, "", prediction), re.sub(pattern, "", reference)
    if ignore_case:
        prediction, reference = prediction.lower(), reference.lower()
    drop = (string.punctuation if ignore_punctuation else "") + (string.digits if ignore_numbers else "")
    if drop:
        table = str.maketrans("", "", drop)
        prediction, reference = prediction.translate(table), reference.translate(table)
    return prediction == reference


@dataclass
class GenerationScoring:
    """How one generation is scored: filters (lm-eval's, else none) and exact-match options."""

    pipelines: list[FilterPipeline] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    lm_eval: bool = False  # lm-eval's strict exact match (its options or filters were given)
    metrics: tuple[str, ...] = ("exact_match",)  # exact_match and corpus text metrics (bleu, chrf, ter)
    process_results: Callable[..., dict[str, Any]] | None = None  # the task's own scoring, per filtered answer
    # metric → the task's own `aggregation: !function` over (gold, answer) pairs (afrobench's
    # SQuAD f1): lm-eval passes each pair through and aggregates them with it
    custom: dict[str, Callable[[list[Any]], float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any], fail: Any) -> GenerationScoring:
        options: dict[str, Any] = {}
        for entry in config.get("metric_list") or ():
            if isinstance(entry, dict) and entry.get("metric") == "exact_match":
                options = {k: v for k, v in entry.items() if k in EXACT_MATCH_OPTIONS}
                unknown = [k for k in entry if k not in EXACT_MATCH_OPTIONS + ("metric", "aggregation", "higher_is_better")]
                if unknown:
                    raise fail("metric_list", f"exact_match option '{unknown[0]}' is not supported "
                                              f"(use {', '.join(EXACT_MATCH_OPTIONS)})")
        regexes = options.get("regexes_to_ignore")
        if regexes is not None and (not isinstance(regexes, list) or not all(isinstance(r, str) for r in regexes)):
            raise fail("metric_list", "regexes_to_ignore must be a list of regular expressions")
        for pattern in regexes or ():
            _compile(pattern, "metric_list", fail)
        pipelines = _pipelines(config.get("filter_list"), fail)
        named = [e.get("metric") if isinstance(e, dict) else e for e in config.get("metric_list") or ()]
        custom = {e["metric"]: e["aggregation"] for e in config.get("metric_list") or ()
                  if isinstance(e, dict) and isinstance(e.get("metric"), str) and callable(e.get("aggregation"))
                  and e["metric"] not in ("exact_match", *TEXT_METRICS)}
        metrics = tuple(str(m) for m in named if m in ("exact_match", *TEXT_METRICS, *custom)) or ("exact_match",)
        text = any(m in TEXT_METRICS for m in metrics)
        return cls(pipelines, options, lm_eval=bool(options) or bool(pipelines) or text or bool(custom),
                   metrics=metrics, custom=custom)

    def metric_names(self) -> list[str]:
        if not self.pipelines:
            return list(self.metrics)
        return [f"{m},{p.name}" for p in self.pipelines for m in self.metrics]

    def score(self, text: str | list[str], references: list[str], doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """One item's scores; `text` is its answer, or its `repeats` answers in order (the
        filters see them all, as lm-eval's: `majority_vote`, `take_first_k`)."""
        responses = [text] if isinstance(text, str) else list(text)
        if not self.lm_eval and self.process_results is None:
            return {"exact_match": any(normalised_exact_match(responses[0], r) for r in references)}
        pipelines = self.pipelines or [FilterPipeline("none", [_take_first()])]
        out: dict[str, Any] = {}
        for pipeline in pipelines:
            answer = pipeline.apply(responses, doc)
            suffix = f",{pipeline.name}" if self.pipelines else ""
            if self.process_results is not None:
                values = self.process_results(doc or {}, [answer])
                out.update({m + suffix: values[m] for m in self.metrics})
                out[f"filtered_resps,{pipeline.name}"] = answer
                continue
            for metric in self.metrics:
                if metric == "exact_match":
                    out[metric + suffix] = any(lm_eval_exact_match(answer, r, **self.options) for r in references)
                elif metric in self.custom:  # lm-eval's passthrough item, aggregated by the task's function
                    out[metric + suffix] = [references[0] if len(references) == 1 else references, answer]
                else:  # a corpus metric: the answer is kept, the score is computed over all rows
                    out[metric + suffix] = answer
            out[f"filtered_resps,{pipeline.name}"] = answer
        if any(m in TEXT_METRICS for m in self.metrics):
            out["references"] = references
        return out

    def record(self) -> dict[str, Any]:
        return {"filters": [[p.name, p.spec] for p in self.pipelines], "exact_match": self.options}


def _compile(pattern: Any, key: str, fail: Any) -> None:
    try:
        re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise fail(key, f"invalid regular expression {pattern!r} ({exc})") from None


def _pipelines(spec: Any, fail: Any) -> list[FilterPipeline]:
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise fail("filter_list", "must be a list of {name, filter} entries")
    pipelines = []
    for entry in spec:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("filter"), list):
            raise fail("filter_list", "each entry needs a 'name' and a 'filter' list")
        steps = []
        for step in entry["filter"]:
            name = step.get("function") if isinstance(step, dict) else None
            if name not in FILTERS:
                raise fail("filter_list", f"filter function '{name}' in '{entry['name']}' is not supported "
                                          f"(use {', '.join(FILTERS)})")
            kwargs = {k: v for k, v in step.items() if k != "function"}
            if "regex_pattern" in kwargs:
                _compile(kwargs["regex_pattern"], "filter_list", fail)
            try:
                steps.append(FILTERS[name](**kwargs))
            except TypeError as exc:
                raise fail("filter_list", f"filter '{name}' in '{entry['name']}': {exc}") from None
        pipelines.append(FilterPipeline(entry["name"], steps, entry["filter"]))
    return pipelines
