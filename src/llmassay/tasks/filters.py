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

Filter = Callable[[list[str]], list[str]]
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


def _take_first() -> Filter:
    return lambda responses: responses[:1]


def _take_first_k(k: int) -> Filter:
    return lambda responses: responses[:k]


def _majority_vote() -> Filter:
    return lambda responses: [Counter(responses).most_common(1)[0][0]] if responses else []


def _map(mapping_dict: dict[str, str], default_value: str | None = None) -> Filter:
    return lambda responses: [mapping_dict.get(r, default_value) for r in responses]


FILTERS: dict[str, Callable[..., Filter]] = {
    "regex": _regex,
    "take_first": _take_first,
    "take_first_k": _take_first_k,
    "majority_vote": _majority_vote,
    "remove_whitespace": lambda: lambda responses: [r.strip() for r in responses],
    "lowercase": lambda: lambda responses: [r.lower() for r in responses],
    "uppercase": lambda: lambda responses: [r.upper() for r in responses],
    "map": _map,
}


@dataclass
class FilterPipeline:
    name: str
    steps: list[Filter]
    spec: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, responses: list[str]) -> str:
        for step in self.steps:
            responses = step(responses)
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
        metrics = tuple(m for m in named if m in ("exact_match", *TEXT_METRICS)) or ("exact_match",)
        text = any(m in TEXT_METRICS for m in metrics)
        return cls(pipelines, options, lm_eval=bool(options) or bool(pipelines) or text, metrics=metrics)

    def metric_names(self) -> list[str]:
        if not self.pipelines:
            return list(self.metrics)
        return [f"{m},{p.name}" for p in self.pipelines for m in self.metrics]

    def score(self, text: str, references: list[str], doc: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.lm_eval and self.process_results is None:
            return {"exact_match": any(normalised_exact_match(text, r) for r in references)}
        pipelines = self.pipelines or [FilterPipeline("none", [_take_first()])]
        out: dict[str, Any] = {}
        for pipeline in pipelines:
            answer = pipeline.apply([text])
            suffix = f",{pipeline.name}" if self.pipelines else ""
            if self.process_results is not None:
                values = self.process_results(doc or {}, [answer])
                out.update({m + suffix: values[m] for m in self.metrics})
                out[f"filtered_resps,{pipeline.name}"] = answer
                continue
            for metric in self.metrics:
                if metric == "exact_match":
                    out[metric + suffix] = any(lm_eval_exact_match(answer, r, **self.options) for r in references)
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
