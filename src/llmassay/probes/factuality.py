"""Factuality: atomic-fact precision against the offline country KB, closed-book and with
retrieval, and whether an edited passage overrides what the model memorised.

Two question forms (the doc's `form`): short questions (`country_facts`), scored by exact
match after normalisation and by `correct` (the answer asserts one value of the field, and an
accepted one: `factuality.answer`), and profiles (`country_profiles`), decomposed two ways —
`structured`: the profile as JSON under a schema (constrained decoding), each field one
atomic fact checked exactly against the KB record, no judge; `free`: free text split into
sentences (pysbd), every field pattern match a claim (each (field, value) once), and
sentences no pattern reads left to a judge (`judge=self`, the model under test, its prompts
kept per sample) or reported as the `unverified` share beside precision. Each `rag` mode adds context:
`none` (closed book), `bm25`, `dense`, `index` (a built index, maybe over an edited KB) or
`irrelevant` (the same field's passage about another country: how much the model copies
what it is given). Retrieval recall@k and MRR are reported apart from answer accuracy, so a
miss shows as the retriever's or the reader's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.factuality.answer import score_short
from llmassay.factuality.kb import FIELDS, KnowledgeBase, load_kb, norm
from llmassay.factuality.scores import answer_metrics, unverified_share
from llmassay.factuality.verify import Fact, accepted, counts, profile_facts, text_facts
from llmassay.metrics import bootstrap_mean, bootstrap_statistic, proportion
from llmassay.probes._json import parse_extract
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import GenerateRequest, LlmassayError, Metric, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.factuality.retrieval import Index
    from llmassay.tasks.loader import Task

RAG = ("none", "bm25", "dense", "index", "irrelevant")
PATHS = ("structured", "free")
PRECISION_GOOD, PRECISION_WARN = 0.8, 0.5  # summary-card thresholds on fact precision / accuracy
NOT_MEASURABLE = "not measurable (n = 0)"
FACTSCORE_GAMMA = 10  # FActScore's length penalty: answers with fewer facts are discounted


def _check_judge(value: str) -> None:
    if value not in ("off", "self"):
        from llmassay.judge.judges import check_judge_spec

        check_judge_spec(value)  # "expected KIND/NAME" or "unknown backend", before any model loads


@dataclass(frozen=True)
class FactualityOptions:
    rag: tuple[str, ...] = option(("none",), "context modes: " + ", ".join(RAG), choices=RAG)
    index: str = option("", "an index directory from `llmassay index build` (the 'index' mode; its KB is the truth)")
    kb: str = option("", "a KB directory (`llmassay kb edit`) instead of the bundled KB")
    k: int = option(3, "passages retrieved per short question", minimum=1, maximum=20)
    paths: tuple[str, ...] = option(PATHS, "profile decomposition paths: structured (JSON, judge-free), free (text)",
                                    choices=PATHS)
    judge: str = option("off", "free path: sentences no field pattern reads go to a judge: off, self (the model "
                        "under test) or a model spec such as llamacpp/gemma3-270m", check=_check_judge)
    judge_args: str = option("", "the judge model's --model-args (k=v,k2=v2), when judge is a model spec")
    f1_k: int = option(8, "K of F1@K (SAFE): the facts a complete profile has", minimum=1)


def _short(field: str) -> SampleMetric:
    def read(row: Row) -> dict[str, Any]:
        return {m: e.get(field) for m, e in (row.get("modes") or {}).items() if "answer" in e}

    return SampleMetric(read, f"{field} of the short answer, per rag mode", family=True)


def _precision(row: Row) -> dict[str, Any]:
    out = {}
    for mode, entry in (row.get("modes") or {}).items():
        for path in PATHS:
            c = (entry.get(path) or {}).get("counts")
            if c and sum(c.values()):
                out[f"{mode}/{path}"] = c["supported"] / sum(c.values())
    return out


def _unverified(row: Row) -> dict[str, Any]:
    out = {}
    for mode, entry in (row.get("modes") or {}).items():
        free = entry.get("free")
        if free and (share := unverified_share(free)) is not None:
            out[f"{mode}/free"] = share
    return out


class FactualityProbe(Probe):
    name = "factuality"
    description = "atomic-fact precision against an offline KB, closed-book vs retrieval, and knowledge updates"
    challenge = "hallucination"
    task_types = ("generate_until",)
    Options = FactualityOptions
    # 2: alternative names, lowercase-article neighbours and St./Saint change verdicts, so rows
    # stored by version 1 must not be resumed. 3: "Trinidad and Tobago" in a list is one claim.
    # 4: every field match of a sentence is a claim, each (field, value) once; a short answer
    # is correct only when it asserts one value of the field (no hedges, lists or negations);
    # path_agreement is a mean over profiles.
    schema_version = 4
    sample_metrics = {
        "exact_match": _short("exact_match"),
        "correct": _short("correct"),
        "fact_precision": SampleMetric(_precision, "supported ÷ all read facts of the profile, per mode/path",
                                       family=True, binary=False),
        "unverified": SampleMetric(_unverified, "unread sentences ÷ read facts + unread sentences of the free-text "
                                   "profile, per mode", family=True, binary=False),
    }
    # quick: short questions only (a profile under constrained decoding costs minutes on 2 cores)
    presets = {"quick": Preset(("country_facts",), limit=20, options=(("rag", "none,bm25"),)),
               "full": Preset(("country_facts", "country_profiles"), limit=200, options=(("rag", "none,bm25,dense"),))}

    def supports(self, task: Task) -> str | None:
        if task.output_type != "generate_until" or not task.samples or "country" not in task.samples[0].doc:
            return f"task '{task.name}' has no 'country' field (use country_facts or country_profiles)"
        return None

    # -- per sample ---------------------------------------------------------------------
    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        kb = _truth(opts)
        ask = _Asker(task, cfg)
        judge: _Judge | None = None  # loaded on the first free-text profile that needs it
        rows: list[Row] = []
        for s in samples:
            form, code = s.doc.get("form", "short"), str(s.doc.get("country", ""))
            if form not in ("short", "profile"):
                raise LlmassayError(f"{task.source}: item '{s.id}': field 'form' must be short or profile")
            row: Row = {"id": s.id, "form": form, "country": code, "modes": {}}
            if form == "short":
                row["field"] = str(s.doc.get("field", ""))
            rows.append(row)
        for mode in opts.rag:
            contexts = [_context(kb, r, s, mode, opts) for r, s in zip(rows, samples)]
            short = [(r, s, c) for r, s, c in zip(rows, samples, contexts) if r["form"] == "short"]
            gens = engine.generate([ask.request(_prompt(c[1], s.prompt)) for _, s, c in short])
            for (row, s, (ids, text)), g in zip(short, gens):
                row["modes"][mode] = {**_score_short(kb, row, g.text, mode, opts), **_retrieval(ids, row, mode)}
            prof = [(r, s, c) for r, s, c in zip(rows, samples, contexts) if r["form"] == "profile"]
            for row, _, (ids, _) in prof:
                row["modes"][mode] = _retrieval(ids, row, mode)
            if "structured" in opts.paths and prof:
                reqs = [ask.request(_prompt(c[1], _structured_prompt(s)), schema=PROFILE_SCHEMA) for _, s, c in prof]
                for (row, _, _), g in zip(prof, engine.generate(reqs)):
                    parsed = parse_extract(g.text)
                    facts = profile_facts(kb, kb.country(row["country"]), parsed.value if parsed.ok else None)
                    row["modes"][mode]["structured"] = _facts_entry(g.text, facts, parsed.ok)
            if "free" in opts.paths and prof:
                reqs = [ask.request(_prompt(c[1], _free_prompt(s))) for _, s, c in prof]
                for (row, _, c), g in zip(prof, engine.generate(reqs)):
                    facts, rest = text_facts(kb, kb.country(row["country"]), g.text)
                    row["modes"][mode]["free"] = {**_facts_entry(g.text, facts, True), "unverified": rest}
                if opts.judge != "off":
                    judge = judge or _judge_for(opts, cfg, engine, ask)
                    self._judge(kb, [r for r, _, _ in prof], mode, judge)
        return rows

    @staticmethod
    def _judge(kb: KnowledgeBase, rows: list[Row], mode: str, judge: _Judge) -> None:
        """Sentences no field pattern reads: the judge (the model under test, or another
        model) rules on each against the country's passages (yes → supported, no →
        contradicted); its prompt, answer and name are kept with the fact."""
        todo = []
        for row in rows:
            entry = row["modes"][mode]["free"]
            country = kb.country(row["country"])
            evidence = "\n".join(p.text for p in kb.passages.values() if country and p.country == country.code)
            for sentence in entry.pop("unverified"):
                prompt = (f"Facts:\n{evidence}\n\nClaim: {sentence}\n"
                          "Is the claim supported by the facts? Answer yes or no.\nAnswer:")
                todo.append((entry, sentence, prompt))
            entry["unverified"] = []
        for (entry, sentence, prompt), text in zip(todo, judge.ask([prompt for _, _, prompt in todo])):
            said = norm(text).split()[:1]
            verdict = {"yes": "supported", "no": "contradicted"}.get(said[0] if said else "", "not_in_kb")
            entry["facts"].append({**Fact("claim", sentence, verdict, None, sentence).as_dict(),
                                   "judge": judge.name, "judge_prompt": prompt, "judge_answer": text})
            entry["counts"][verdict] += 1

    # -- corpus level -------------------------------------------------------------------
    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        seed = cfg.seed
        metrics: dict[str, Metric] = {}
        table: list[dict[str, Any]] = []
        short = [r for r in rows if r["form"] == "short"]
        prof = [r for r in rows if r["form"] == "profile"]
        for mode in opts.rag:
            m: dict[str, Metric] = {}
            if short:
                es = [r["modes"][mode] for r in short]
                m["exact_match"] = proportion([e["exact_match"] for e in es])
                m["correct"] = proportion([e["correct"] for e in es])
                m["contradicted"] = proportion([e["verdict"] == "contradicted" for e in es])
                m["abstention"] = proportion([e["abstained"] for e in es])
                edited = [e for e in es if "follows_edit" in e]
                if edited:
                    m.update(_update_metrics(edited, seed))
                if mode == "irrelevant":
                    m["copied_irrelevant"] = proportion([e["copied"] for e in es])
            m.update(_retrieval_metrics(short + prof, mode, seed))
            if short and any(e.get("rank") is not None for e in (r["modes"][mode] for r in short)):
                hit = [r["modes"][mode]["correct"] for r in short if r["modes"][mode].get("rank") is not None]
                miss = [r["modes"][mode]["correct"] for r in short
                        if "rank" in r["modes"][mode] and r["modes"][mode]["rank"] is None]
                m["correct_when_retrieved"] = proportion(hit)
                if miss:
                    m["correct_when_missed"] = proportion(miss)
            for path in opts.paths:
                entries = [r["modes"][mode][path] for r in prof if path in r["modes"][mode]]
                if entries:
                    m.update({f"{k}/{path}": v for k, v in _profile_metrics(entries, opts.f1_k, seed).items()})
            if prof and set(PATHS) <= set(opts.paths):
                agree = _agreement([r["modes"][mode] for r in prof])
                if agree:
                    m["path_agreement"] = bootstrap_mean(agree, seed)  # n = profiles, not fields
            # A figure with nothing to count (no answer names either value of an edit, every
            # profile abstained) is reported as such, never as NaN.
            unmeasured = {k: NOT_MEASURABLE for k, v in m.items() if not v.n}
            if short and any("follows_edit" in r["modes"][mode] for r in short) and "memorisation_ratio" not in m:
                unmeasured["memorisation_ratio"] = NOT_MEASURABLE + ": no answer names the original or the edited value"
            m = {k: v for k, v in m.items() if v.n}
            metrics.update({f"{k}[{mode}]": v for k, v in m.items()})
            table.append({"rag": mode, **{k: v.as_dict() for k, v in m.items()}, **unmeasured})
        kb = _truth(opts)
        details: dict[str, Any] = {"tables": ["modes"], "modes": table, "kb": kb.origin,
                                   "kb_edits": len(kb.edits), "k": opts.k, "judge": opts.judge}
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        mode = opts.rag[0]
        for metric, what in ((f"fact_precision/structured[{mode}]", "of profile facts are supported"),
                             (f"fact_precision/free[{mode}]", "of profile facts are supported"),
                             (f"correct[{mode}]", "of short answers are right")):
            if metric in analysis.metrics:
                v = analysis.metrics[metric].value
                level = "good" if v >= PRECISION_GOOD else "warn" if v >= PRECISION_WARN else "bad"
                return self.line(task, analysis, metric, f"{v:.0%} {what} ({mode})", level)
        return None


PROFILE_SCHEMA: dict[str, Any] = {
    "title": "country profile",
    "type": "object",
    "properties": {
        "capital": {"type": "string"},
        "continent": {"type": "string"},
        "currencies": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "languages": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "population": {"type": "integer"},
        "area_km2": {"type": "integer"},
        "neighbours": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        "calling_code": {"type": "string"},
    },
    "required": list(FIELDS),
    "additionalProperties": False,
}


class _Asker:
    """Chat messages for chat models, a raw prompt otherwise; the task's decoding settings."""

    def __init__(self, task: Task, cfg: ProbeConfig) -> None:
        self.chat, self.cfg = cfg.chat_model, cfg
        self.max_tokens = int(task.generation_kwargs.get("max_gen_toks", 64))
        self.stop = tuple(task.generation_kwargs.get("until", ()))

    def request(self, text: str, schema: dict[str, Any] | None = None, max_tokens: int | None = None) -> GenerateRequest:
        common: dict[str, Any] = {
            "max_tokens": max_tokens or self.max_tokens, "stop": () if schema else self.stop,
            "temperature": self.cfg.temperature, "seed": self.cfg.seed,
            "json_schema": GenerateRequest.schema_string(schema) if schema else None,
        }
        if self.chat:
            return GenerateRequest(messages=(("user", text),), **common)
        return GenerateRequest(prompt=text, **common)


JUDGE_TOKENS = 4  # "yes" or "no"


@dataclass(frozen=True)
class _Judge:
    """Who rules on the free path's unread sentences: prompts → raw answers."""

    name: str
    ask: Callable[[list[str]], list[str]]


def _judge_for(opts: FactualityOptions, cfg: ProbeConfig, engine: Engine, ask: _Asker) -> _Judge:
    """`self`: the engine under test; a model spec: a second backend loaded through the same
    factory as `--model`, its requests cached in the run's cache (same seed)."""
    if opts.judge == "self":
        return _Judge("self", lambda prompts: [g.text for g in engine.generate(
            [ask.request(p, max_tokens=JUDGE_TOKENS) for p in prompts])])
    from llmassay.judge.judges import JudgeQuery, load_judge

    cache = getattr(engine, "cache", None)
    try:
        model = load_judge(opts.judge, opts.judge_args, str(cache.path) if cache else None,
                           use_cache=cache is not None, max_tokens=JUDGE_TOKENS, seed=cfg.seed)
    except LlmassayError as exc:
        raise LlmassayError(f"-P factuality.judge={opts.judge}: {exc}") from None
    return _Judge(opts.judge, lambda prompts: model.ask([JudgeQuery(p, "grade", (p,)) for p in prompts]))


def _truth(opts: FactualityOptions) -> KnowledgeBase:
    """The KB answers are checked against: the index's (it may be edited), else --kb, else bundled."""
    if opts.index:
        from llmassay.factuality.retrieval import open_index

        return open_index(opts.index).kb
    return load_kb(opts.kb)


def _index(mode: str, opts: FactualityOptions) -> Index:
    from llmassay.factuality.retrieval import memory_index, open_index

    if mode == "index":
        if not opts.index:
            raise LlmassayError("-P factuality.rag=index needs -P factuality.index=DIR")
        return open_index(opts.index)
    return memory_index(opts.index or opts.kb, mode)  # an index directory holds its kb.json


def _context(kb: KnowledgeBase, row: Row, sample: Sample, mode: str, opts: FactualityOptions) -> tuple[list[str], str]:
    """The passage ids and the context text a mode puts before the question."""
    if mode == "none":
        return [], ""
    question = str(sample.doc.get("question", sample.prompt))
    if mode == "irrelevant":
        other = _other_country(kb, row["country"])
        fields = [row["field"]] if row["form"] == "short" else list(FIELDS)
        ids = [f"{other}.{f}" for f in fields if f"{other}.{f}" in kb.passages]
    else:
        k = opts.k if row["form"] == "short" else len(FIELDS)
        ids = _index(mode, opts).search(question, k)
    from llmassay.factuality.retrieval import context_text

    return ids, context_text(kb, ids)


def _other_country(kb: KnowledgeBase, code: str) -> str:
    """A fixed other country (the next in code order): the irrelevant-passage control."""
    codes = sorted(kb.countries)
    return codes[(codes.index(code) + 1) % len(codes)] if code in kb.countries else codes[0]


def _prompt(context: str, text: str) -> str:
    return context + text


def _structured_prompt(s: Sample) -> str:
    return (f"{s.prompt}\nAnswer with a JSON object with the fields capital, continent, currencies, languages, "
            "population, area_km2, neighbours and calling_code.\nJSON:")


def _free_prompt(s: Sample) -> str:
    return (f"{s.prompt} In a few sentences, give its capital, continent, currency, official languages, "
            "population, area, neighbouring countries and international calling code.\n")


def _mentions(text: str, value: str) -> bool:
    """The value appears in the answer as whole words (after normalisation)."""
    v = norm(value)
    return bool(v) and f" {v} " in f" {norm(text)} "


def _names(text: str, mine: list[str], theirs: list[str]) -> bool:
    """The answer names one of `mine`, not merely as part of one of `theirs` that contains
    it: "New Kingston" follows an edit to New Kingston, not the original Kingston."""
    t = f" {norm(text)} "
    own = [f" {norm(m)} " for m in mine if norm(m)]
    for other in sorted((f" {norm(v)} " for v in theirs if norm(v)), key=len, reverse=True):
        if any(o in other and o != other for o in own):
            t = t.replace(other, " | ")
    return any(o in t for o in own)


def _score_short(kb: KnowledgeBase, row: Row, answer: str, mode: str, opts: FactualityOptions) -> dict[str, Any]:
    country, name = kb.country(row["country"]), row["field"]
    entry = score_short(kb, country, name, answer)
    if country is None or not country.values.get(name):
        return entry
    first, right = answer.strip().split("\n")[0], accepted(country, name)
    edit = kb.edits.get(f"{country.code}.{name}")
    if edit:
        original = edit.get("original_spellings") or _strings(edit["original"])
        entry["follows_edit"] = _names(first, right, original)  # the edited value and its aliases
        entry["follows_original"] = _names(first, original, right)
    if mode == "irrelevant":
        other = kb.countries.get(_other_country(kb, country.code))
        wrong = [a for a in accepted(other, name) if norm(a) not in {norm(r) for r in right}] if other else []
        entry["copied"] = any(_mentions(first, a) for a in wrong)
    return entry


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _retrieval(ids: list[str], row: Row, mode: str) -> dict[str, Any]:
    if mode in ("none", "irrelevant"):
        return {}
    if row["form"] == "short":
        gold = f"{row['country']}.{row['field']}"
        return {"retrieved": ids, "rank": ids.index(gold) + 1 if gold in ids else None}
    own = [i for i in ids if i.split(".")[0] == row["country"]]
    return {"retrieved": ids, "recall": len(own) / len(FIELDS)}


def _retrieval_metrics(rows: list[Row], mode: str, seed: int) -> dict[str, Metric]:
    entries = [r["modes"][mode] for r in rows if r["form"] == "short" and "rank" in r["modes"][mode]]
    out: dict[str, Metric] = {}
    if entries:
        out["recall_at_k"] = proportion([e["rank"] is not None for e in entries])
        out["mrr"] = bootstrap_mean([1 / e["rank"] if e["rank"] else 0.0 for e in entries], seed)
    prof = [r["modes"][mode]["recall"] for r in rows if r["form"] == "profile" and "recall" in r["modes"][mode]]
    if prof:
        out["profile_recall"] = bootstrap_mean(prof, seed)
    return out


def _facts_entry(text: str, facts: list[Fact], parsed: bool) -> dict[str, Any]:
    return {"text": text, "parsed": parsed, "facts": [f.as_dict() for f in facts], "counts": counts(facts)}


def _profile_metrics(entries: list[dict[str, Any]], f1_k: int, seed: int) -> dict[str, Metric]:
    """FActScore precision (and its length penalty), contradicted rate, facts per answer,
    unverified share (free path), abstention and SAFE's F1@K; the unit of each CI is the
    answer (`factuality.scores`)."""
    answered = [e["counts"] for e in entries if sum(e["counts"].values())]
    prec = [c["supported"] / sum(c.values()) for c in answered]
    penalty = [math.exp(1 - FACTSCORE_GAMMA / sum(c.values())) if sum(c.values()) < FACTSCORE_GAMMA else 1.0
               for c in answered]
    f1 = []
    for e in entries:
        c = e["counts"]
        total, s = sum(c.values()), c["supported"]
        p, r = (s / total if total else 0.0), min(s / f1_k, 1.0)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return {
        **answer_metrics(entries, seed),
        "factscore_penalised": bootstrap_mean([p * q for p, q in zip(prec, penalty)], seed),
        "parsed": proportion([bool(e.get("parsed")) for e in entries]),  # free text always "parses"
        "f1_at_k": bootstrap_mean(f1, seed),
    }


def _agreement(entries: list[dict[str, Any]]) -> list[float]:
    """Per profile with a field checked by both paths: the share of those fields on which
    the paths' verdicts agree (a field is supported when all its facts are). The profile
    is the unit that was sampled, so it is the unit of the mean and of its bootstrap."""
    out = []
    for e in entries:
        if "structured" not in e or "free" not in e:
            continue
        verdicts = []
        for path in PATHS:
            per: dict[str, bool] = {}
            for f in e[path]["facts"]:
                if f["field"] in FIELDS:
                    per[f["field"]] = per.get(f["field"], True) and f["verdict"] == "supported"
            verdicts.append(per)
        both = sorted(set(verdicts[0]) & set(verdicts[1]))
        if both:
            out.append(sum(verdicts[0][k] == verdicts[1][k] for k in both) / len(both))
    return out


def _update_metrics(edited: list[dict[str, Any]], seed: int) -> dict[str, Metric]:
    """Update success (the answer follows the edited passage) and Longpre et al.'s
    memorisation ratio M_R = p_orig / (p_orig + p_sub), both over the edited items."""
    pairs = np.array([[e["follows_original"], e["follows_edit"]] for e in edited], dtype=float)
    # M_R is a ratio of counts, so only answers that name either value carry it: resampling
    # those (n = their number) keeps every bootstrap draw defined.
    named = pairs[pairs.sum(axis=1) > 0]

    def ratio(x: np.ndarray) -> float:
        return float(x[:, 0].sum() / (x[:, 0].sum() + x[:, 1].sum()))

    out = {"update_success": proportion([e["follows_edit"] for e in edited])}
    if len(named):
        out["memorisation_ratio"] = bootstrap_statistic(named, ratio, seed)
    return out

