"""Structured output: how often a model returns valid JSON when asked, and which fix works.

One free generation per item is judged three ways — `strict` (`json.loads` on the whole
output), `extract` (the first JSON value in it) and `repair` (json-repair) — so those modes
cost the same. `retry` feeds the validator's error back and asks again (extract + schema
check, up to `max_retries` times); `constrained` decodes under the schema (a grammar in
llama.cpp, `response_format` on OpenAI-compatible servers). A schema keyword no grammar
enforces (`backends._schema_subset`) is left out of the decoding schema, the answer is still
validated against the full schema, and the item counts as `constraint_relaxed`: one such
keyword never ends the run. Each mode is scored for parse
validity, schema validity (jsonschema) and field accuracy against gold records, with its
cost (output tokens, latency, retries). The same items under other wordings of the JSON
instruction measure instruction brittleness.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llmassay.metrics import bootstrap_mean, bootstrap_statistic, proportion, spread_with_null
from llmassay.probes._json import (
    PARSERS,
    TAXONOMY,
    describe,
    field_accuracy,
    parse_extract,
    parse_strict,
    schema_classes,
    schema_errors,
    text_classes,
)
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.probes._options import build_options, option
from llmassay.types import GenerateRequest, Generation, LlmassayError, Metric, Sample

if TYPE_CHECKING:
    from llmassay.backends._schema_subset import Subset
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

MODES = ("strict", "extract", "repair", "retry", "constrained")
PROMPT_FORMATS = ("chat", "raw")  # chat: the backend's chat template; raw: a plain prompt (base models)
DEFAULT_MAX_RETRIES = 2
SCHEMA_ERRORS_KEPT = 5  # per row; the feedback quotes the first 3
VALID_GOOD, VALID_WARN = 0.95, 0.80  # summary-card thresholds on the schema-valid rate when asked

# Wording 0 is the canonical instruction; the others measure instruction brittleness.
# {schema} is the schema's outline (see `outline`): tiny models shown a raw JSON schema
# tend to copy the schema itself instead of filling it in.
INSTRUCTIONS = (
    "Extract the information in the text as a JSON object with these fields (? = optional):\n{schema}\n"
    "Answer with the JSON object only.",
    "Return only valid JSON of this shape:\n{schema}",
    "Read the text and fill in this JSON template. Output JSON and nothing else.\n{schema}",
    "You are a data extraction tool. Convert the text below into JSON of the form {schema}. "
    "Do not add explanations.",
    "Fields:\n{schema}\nWrite the JSON record for the text below.",
    "Please produce a JSON object (no markdown, no comments) with the fields described here:\n{schema}",
)


def _at_most_wordings(value: int) -> None:
    if value > len(INSTRUCTIONS) - 1:
        raise LlmassayError(f"{value} is not an integer from 0 to {len(INSTRUCTIONS) - 1}")


@dataclass(frozen=True)
class StructuredOptions:
    modes: tuple[str, ...] = option(MODES, "modes to score: " + ", ".join(MODES), choices=MODES)
    max_retries: int = option(DEFAULT_MAX_RETRIES, "retry mode: how often to ask again with the error", minimum=0)
    instructions: int = option(
        len(INSTRUCTIONS) - 1, "other wordings of the JSON instruction (instruction brittleness), 0-5",
        minimum=0, check=_at_most_wordings,
    )
    prompt_format: str = option("chat", "chat (the model's chat template) or raw (base models)", choices=PROMPT_FORMATS)

    @staticmethod
    def from_config(cfg: ProbeConfig) -> StructuredOptions:
        """The options a ProbeConfig carries, checked (one-line error naming `-P structured.<key>`)."""
        return build_options("structured", StructuredOptions, cfg.options_dict())


@dataclass(frozen=True)
class _Item:
    sample: Sample
    schema: dict[str, Any]
    gold: Any
    demo: str = ""  # one solved item with the same schema, "Text: …\nJSON: {…}"

    def prompt(self, wording: int) -> str:
        instruction = INSTRUCTIONS[wording].format(schema=outline(self.schema))
        return instruction + "\n\n" + (self.demo + "\n\n" if self.demo else "") + self.sample.prompt


def outline(schema: dict[str, Any]) -> str:
    """A schema as a JSON-like skeleton: {"name": string, "email"?: string, "tags"?: [string, ...]}."""
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "object" and isinstance(schema.get("properties"), dict):
        required = set(schema.get("required", ()))
        fields = [
            f"{json.dumps(k)}{'' if k in required else '?'}: {outline(v)}" for k, v in schema["properties"].items()
        ]
        return "{" + ", ".join(fields) + "}"
    if kind == "array":
        return "[" + outline(schema.get("items", {})) + ", ...]"
    text = " | ".join(kind) if isinstance(kind, list) else str(kind)
    return f"{text} ({schema['description']})" if schema.get("description") else text


def _mode_values(field: str) -> SampleMetric:
    def read(row: Row) -> dict[str, Any]:
        return {mode: entry.get(field) for mode, entry in (row.get("modes") or {}).items() if isinstance(entry, dict)}

    return SampleMetric(read, f"{field} of the item's answer, per mode", family=True, binary=field in VALIDITY)


def _wording_values(field: str) -> SampleMetric:
    def read(row: Row) -> dict[str, Any]:
        return {k: bool(e.get(field)) for k, e in (row.get("instructions") or {}).items() if isinstance(e, dict)}

    return SampleMetric(read, f"{field} per wording of the JSON instruction", family=True)


VALIDITY = ("parse_valid", "schema_valid")


class StructuredProbe(Probe):
    name = "structured"
    description = "valid JSON when asked: strict, extract, repair, retry and constrained decoding, with cost"
    challenge = "structured output"
    task_types = ("generate_until",)
    Options = StructuredOptions
    # 2: constrained requests carry no stop strings; 3: constrained decodes under the enforceable
    # part of the schema and its entry says what was relaxed
    schema_version = 3
    sample_metrics = {
        **{name: _mode_values(name) for name in (*VALIDITY, "field_acc", "tokens", "latency_s", "retries",
                                                  "constraint_relaxed")},
        "instruction_parse_valid": _wording_values("strict_parse_valid"),
        "instruction_schema_valid": _wording_values("extract_schema_valid"),
    }
    presets = {
        "quick": Preset(("json_sample",), limit=4,
                        options=(("modes", "strict,extract,repair,constrained"), ("instructions", 2))),
        "full": Preset(("json_sample",)),
    }

    def supports(self, task: Task) -> str | None:
        if task.output_type != "generate_until" or not task.json_schemas:
            return f"task '{task.name}' gives no json_schema (a generate_until task with gold JSON records is needed)"
        return None

    # -- per sample ---------------------------------------------------------------------
    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        items = [_item(task, s, _demo(task, s)) for s in samples]
        ask = _Asker(task, opts, cfg)
        free = engine.generate([ask.request(it.prompt(0)) for it in items])
        rows = [
            {
                "id": it.sample.id,
                "prompt": it.prompt(0),
                "gold": it.gold,
                "output": _output(g),
                "modes": {},
                "instructions": {"0": _wording_entry(g, it)},
            }
            for it, g in zip(items, free)
        ]
        for mode in ("strict", "extract", "repair"):
            if mode in opts.modes:
                for row, it, g in zip(rows, items, free):
                    row["modes"][mode] = {**judge(g.text, g.finish_reason, mode, it), **_cost([g])}
        if "retry" in opts.modes:
            for row, entry in zip(rows, self._retry(items, free, engine, ask, opts)):
                row["modes"]["retry"] = entry
        if "constrained" in opts.modes:
            enforced = [_enforced(task, it) for it in items]
            # Nothing relaxed: the full schema goes out (the same request, and cache key, as before).
            reqs = [ask.request(it.prompt(0), schema=e.schema if e.relaxed else it.schema)
                    for it, e in zip(items, enforced)]
            try:
                constrained = engine.generate(reqs)
            except LlmassayError as exc:
                about = next((it.sample.id for it, r in zip(items, reqs)
                              if r.json_schema and GenerateRequest.schema_label(r.json_schema) in str(exc)), None)
                item = f"{task.source}: item '{about}': " if about else ""
                raise LlmassayError(f"{item}{exc} (constrained mode; leave it out with --modes)") from None
            for row, it, g, e in zip(rows, items, constrained, enforced):
                # judged against the item's full schema, relaxed keywords included
                row["modes"]["constrained"] = {**judge(g.text, g.finish_reason, "strict", it), "text": g.text,
                                               **_cost([g]), "constraint_relaxed": bool(e.relaxed),
                                               "relaxed": [{"keyword": r.keyword, "at": r.path, "reason": r.reason}
                                                           for r in e.relaxed]}
        for k in range(1, opts.instructions + 1):
            for row, it, g in zip(rows, items, engine.generate([ask.request(it.prompt(k)) for it in items])):
                # The alternate wording's prompt is kept, so a row shows what each answer was asked.
                row["instructions"][str(k)] = {**_wording_entry(g, it), "prompt": it.prompt(k)}
        return rows

    @staticmethod
    def _retry(
        items: list[_Item], free: list[Generation], engine: Engine, ask: _Asker, opts: StructuredOptions
    ) -> list[dict[str, Any]]:
        """Ask again with the validator's error until the answer is valid or retries run out."""
        attempts: list[list[Generation]] = [[g] for g in free]
        verdicts = [judge(g.text, g.finish_reason, "extract", it) for it, g in zip(items, free)]
        feedback: list[list[str]] = [[] for _ in items]
        for _ in range(opts.max_retries):
            pending = [i for i, v in enumerate(verdicts) if not v["schema_valid"]]
            if not pending:
                break
            for i in pending:
                feedback[i].append(_feedback(verdicts[i]))
            reqs = [
                ask.followup(items[i].prompt(0), [g.text for g in attempts[i]], feedback[i]) for i in pending
            ]
            for i, g in zip(pending, engine.generate(reqs)):
                attempts[i].append(g)
                verdicts[i] = judge(g.text, g.finish_reason, "extract", items[i])
        return [
            {**v, "retries": len(a) - 1, "attempts": [g.text for g in a], **_cost(a)}
            for v, a in zip(verdicts, attempts)
        ]

    # -- corpus level -------------------------------------------------------------------
    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        seed = cfg.seed
        metrics: dict[str, Metric] = {}
        table = []
        for mode in opts.modes:
            entries = [r["modes"][mode] for r in rows]
            m = {
                "parse_valid": proportion([e["parse_valid"] for e in entries]),
                "schema_valid": proportion([e["schema_valid"] for e in entries]),
                "field_acc": bootstrap_mean([e["field_acc"] for e in entries], seed),
                "tokens": bootstrap_mean([e["tokens"] for e in entries], seed),
                "latency_s": bootstrap_mean([e["latency_s"] for e in entries], seed),
            }
            if mode == "retry":
                m["retries"] = bootstrap_mean([e["retries"] for e in entries], seed)
            if mode == "constrained":
                m["constraint_relaxed"] = proportion([bool(e.get("constraint_relaxed")) for e in entries])
            if mode != "strict" and "strict" in opts.modes:
                # Paired: the same items, so the difference's CI is tighter than the two rates' CIs.
                pairs = np.array([[r["modes"]["strict"]["schema_valid"], r["modes"][mode]["schema_valid"]] for r in rows])
                m["schema_valid_gain_vs_strict"] = bootstrap_statistic(
                    pairs, lambda x: float(x[:, 1].mean() - x[:, 0].mean()), seed
                )
            metrics.update({f"{name}[{mode}]": value for name, value in m.items()})
            table.append({"mode": mode, **{name: value.as_dict() for name, value in m.items()}})
        details: dict[str, Any] = {"tables": ["modes", "taxonomy", "instructions"], "modes": table}
        details["taxonomy"] = _taxonomy(rows, opts.modes)
        relaxed = _relaxed(rows) if "constrained" in opts.modes else []
        if relaxed:
            details["tables"].append("relaxed")
            details["relaxed"] = relaxed
        details["instructions"] = self._instructions(rows, metrics, seed)
        details["prompt_format"] = opts.prompt_format
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        metric = next((f"schema_valid[{m}]" for m in ("strict", "extract", "repair") if m in opts.modes), None)
        if metric is None or metric not in analysis.metrics:
            return None
        m = analysis.metrics[metric]
        fixed = analysis.metrics.get("schema_valid[constrained]")
        fix = f"; constrained decoding: {fixed.value:.0%}" if fixed is not None else ""
        relaxed = analysis.metrics.get("constraint_relaxed[constrained]")
        if fixed is not None and relaxed is not None and relaxed.value > 0:
            fix += f" ({round(relaxed.value * relaxed.n)} of {relaxed.n} items under a relaxed grammar)"
        if m.value >= VALID_GOOD:
            verdict, level = f"schema-valid JSON {m.value:.0%} of the time when asked{fix}", "good"
        else:
            verdict, level = f"ignores the JSON format: valid only {m.value:.0%} of the time when asked{fix}", (
                "warn" if m.value >= VALID_WARN else "bad")
        return self.line(task, analysis, metric, verdict, level)

    @staticmethod
    def _instructions(rows: list[dict[str, Any]], metrics: dict[str, Metric], seed: int) -> list[dict[str, Any]]:
        """Valid rate per wording of the JSON instruction, and the spread between wordings
        (nothing with one wording: its rates are the strict and extract rows already)."""
        keys = [k for k in rows[0]["instructions"] if all(k in r["instructions"] for r in rows)] if rows else []
        if len(keys) < 2:
            return []
        out = []
        for k in keys:
            strict = proportion([r["instructions"][k]["strict_parse_valid"] for r in rows])
            schema = proportion([r["instructions"][k]["extract_schema_valid"] for r in rows])
            metrics[f"instruction_parse_valid[{k}]"] = strict
            metrics[f"instruction_schema_valid[{k}]"] = schema
            out.append({"wording": k, "instruction": INSTRUCTIONS[int(k)].split("\n")[0],  # whole: tables wrap it
                        "parse_valid[strict]": strict.as_dict(), "schema_valid[extract]": schema.as_dict()})
        matrix = np.array([[r["instructions"][k]["extract_schema_valid"] for k in keys] for r in rows], dtype=float)
        # As the brittleness probe: best − worst wording, re-picked in each resample, against
        # the spread that interchangeable wordings would show.
        spread = spread_with_null(matrix, keys, seed)
        metrics["instruction_spread"] = spread.metric
        metrics["instruction_spread_null"] = spread.null
        return out


class _Asker:
    """Builds the probe's requests: chat messages or a raw prompt, the task's decoding settings."""

    def __init__(self, task: Task, opts: StructuredOptions, cfg: ProbeConfig) -> None:
        self.chat = opts.prompt_format == "chat"
        self.max_tokens = int(task.generation_kwargs.get("max_gen_toks", 256))
        self.stop = tuple(task.generation_kwargs.get("until", ()))
        self.cfg = cfg

    def request(self, prompt: str, schema: dict[str, Any] | None = None) -> GenerateRequest:
        return self._make([("user", prompt)], schema)

    def followup(self, prompt: str, answers: list[str], feedback: list[str]) -> GenerateRequest:
        turns = [("user", prompt)]
        for answer, note in zip(answers, feedback):
            turns += [("assistant", answer), ("user", note)]
        return self._make(turns, None)

    def _make(self, turns: list[tuple[str, str]], schema: dict[str, Any] | None) -> GenerateRequest:
        common: dict[str, Any] = {
            "max_tokens": self.max_tokens,
            # A schema grammar may allow "\n\n" as whitespace inside the object: a stop
            # string would cut a valid constrained answer, so constrained requests have none.
            "stop": () if schema is not None else self.stop,
            "temperature": self.cfg.temperature,
            "seed": self.cfg.seed,
            "json_schema": GenerateRequest.schema_string(schema) if schema is not None else None,
        }
        if self.chat:
            return GenerateRequest(messages=tuple(turns), **common)
        # A base model continues one text: earlier answers and the feedback are appended to it.
        text = turns[0][1]
        for role, content in turns[1:]:
            text += content if role == "assistant" else f"\n\n{content}\nJSON:"
        return GenerateRequest(prompt=text, **common)


def judge(text: str, finish_reason: str, parser: str, item: _Item) -> dict[str, Any]:
    """One output read by one parser: validity, schema errors, field accuracy, failure classes."""
    parsed = PARSERS[parser](text)
    errors = schema_errors(parsed.value, item.schema) if parsed.ok else []
    return {
        "parse_valid": parsed.ok,
        "schema_valid": parsed.ok and not errors,
        "field_acc": field_accuracy(parsed.value, item.gold) if parsed.ok else 0.0,
        "parse_error": parsed.error,
        "schema_errors": describe(errors)[:SCHEMA_ERRORS_KEPT],
        "classes": sorted(set(text_classes(text, finish_reason)) | set(schema_classes(errors))),
        "parsed": parsed.value if parsed.ok else None,
    }


def _enforced(task: Task, item: _Item) -> Subset:
    """The part of the item's schema constrained decoding enforces, and what it relaxes
    (`_gbnf.enforced_schema`: one pass for every backend; pure Python, so a backend other
    than llama.cpp needs no llama-cpp-python)."""
    try:
        return _compile(GenerateRequest.schema_string(item.schema))
    except LlmassayError as exc:
        raise LlmassayError(f"{task.source}: item '{item.sample.id}': {exc} (constrained mode; "
                            "leave it out with --modes)") from None


def _compile(schema_json: str) -> Subset:
    from llmassay.engine.constraints import enforced_schema

    return enforced_schema(schema_json)


RELAXED_IDS_SHOWN = 10


def _relaxed(rows: list[Row]) -> list[dict[str, Any]]:
    """One line per relaxed keyword: on how many items, where, why, and which items (their
    answers were validated against the full schema: how many passed)."""
    lines: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = row["modes"].get("constrained") or {}
        for r in entry.get("relaxed") or ():
            line = lines.setdefault(r["keyword"], {"ids": {}, "at": {}, "why": r["reason"]})
            line["ids"][str(row["id"])] = bool(entry.get("schema_valid"))
            line["at"][r["at"] or "(root)"] = None
    out = []
    for keyword, line in lines.items():
        ids = list(line["ids"])
        shown = ", ".join(ids[:RELAXED_IDS_SHOWN]) + (f", … ({len(ids) - RELAXED_IDS_SHOWN} more)"
                                                      if len(ids) > RELAXED_IDS_SHOWN else "")
        out.append({"keyword": keyword, "items": len(ids), "schema_valid": sum(line["ids"].values()),
                    "at": ", ".join(line["at"]), "why": line["why"], "item ids": shown})
    return out


def _feedback(verdict: dict[str, Any]) -> str:
    if not verdict["parse_valid"]:
        problem = f"Your answer is not valid JSON ({verdict['parse_error']})."
    else:
        problem = "Your JSON does not match the schema: " + "; ".join(verdict["schema_errors"][:3]) + "."
    return problem + " Reply with only the corrected JSON object."


def _item(task: Task, sample: Sample, demo: str = "") -> _Item:
    try:
        gold = json.loads(str(sample.target))
    except ValueError:
        gold = None
    if not isinstance(gold, (dict, list)):
        raise LlmassayError(
            f"{task.source}: item '{sample.id}': doc_to_target must give the gold JSON record for --probe structured"
        )
    return _Item(sample, task.json_schema(sample.id), gold, demo)


def _demo(task: Task, sample: Sample) -> str:
    """The first other item of the whole task file (not only the --limit slice) that has the
    same schema, solved: a one-shot example of the record's shape. Empty when none exists."""
    schema = task.json_schema(sample.id)
    builder = task.builder
    if builder is None:
        return ""
    for sid, other in task.json_schemas.items():
        if sid != sample.id and other == schema and sid in builder.docs_by_id:
            shot = builder.build(sid, builder.docs_by_id[sid].data)
            return shot.prompt + " " + str(shot.target)
    return ""


def _output(g: Generation) -> dict[str, Any]:
    out = {"text": g.text, "finish_reason": g.finish_reason, "n_tokens": g.n_tokens, "latency_s": g.latency_s}
    if g.n_truncated_tokens:  # the prompt lost its start to the context window
        out["n_truncated_tokens"] = g.n_truncated_tokens
    return out


def _cost(gens: list[Generation]) -> dict[str, Any]:
    return {"tokens": sum(g.n_tokens for g in gens), "latency_s": sum(g.latency_s for g in gens)}


def _wording_entry(g: Generation, item: _Item) -> dict[str, Any]:
    extracted = parse_extract(g.text)
    return {
        "text": g.text,
        "finish_reason": g.finish_reason,
        "n_tokens": g.n_tokens,
        "strict_parse_valid": parse_strict(g.text).ok,
        "extract_schema_valid": extracted.ok and not schema_errors(extracted.value, item.schema),
    }


def _taxonomy(rows: list[dict[str, Any]], modes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per class seen: how many free outputs show it, and how many of each mode's failures
    (not schema-valid) show it. A failure can show several classes."""
    table = []
    for cls in TAXONOMY:
        entry: dict[str, Any] = {
            "class": cls,
            "outputs": sum(cls in text_classes(r["output"]["text"], r["output"]["finish_reason"]) for r in rows),
        }
        for mode in modes:
            entry[f"failed[{mode}]"] = sum(
                1 for r in rows if not r["modes"][mode]["schema_valid"] and cls in r["modes"][mode]["classes"]
            )
        if any(v for k, v in entry.items() if k != "class"):
            table.append(entry)
    return table
