"""Tasks from lm-eval-style YAML, plain JSONL or CSV, rendered into `Sample`s.

Every problem in a task file becomes one line naming the file, the line and the field
(`TaskError`), never a traceback. Templates run in Jinja2's sandbox: a task file is data,
and it must not be able to reach Python objects.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import random
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from llmassay.hashing import stable_hash
from llmassay.tasks.doclist import DocList
from llmassay.tasks.filters import GenerationScoring
from llmassay.tasks.hub_data import HubDataError, load_split
from llmassay.tasks.perplexity import DEFAULT_AGGREGATION, ROLLING_METRICS, WEIGHTED_AGGREGATIONS
from llmassay.tasks.lmeval_yaml import (
    TaskConfigError,
    eval_split,
    excludes_eval_doc,
    fewshot_split,
    read_config,
    resolve_functions,
    warn_unsupported,
)
from llmassay.types import LlmassayError, Sample

DATA_DIR = Path(__file__).parent / "data"
OUTPUT_TYPES = ("multiple_choice", "generate_until", "loglikelihood", "loglikelihood_rolling")
UNSUPPORTED_OUTPUT_TYPES: tuple[str, ...] = ()
LOGLIKELIHOOD_METRICS = ("perplexity", "acc")  # lm-eval's: exp(-mean log P(target)), and 'target is greedy'
SCORE_CHANGING_KEYS = ("use_prompt", "doc_to_image", "doc_to_audio", "custom_dataset")
MC_METRICS = ("acc", "acc_norm", "acc_gen", "acc_bytes", "f1", "mcc", "acc_mutual_info")  # f1, mcc: over the corpus, as lm-eval
DEFAULT_MC_METRICS = ("acc", "acc_norm", "acc_gen")  # acc_bytes on request, as in lm-eval
GEN_METRICS = ("exact_match", "bleu", "chrf", "ter")  # bleu, chrf, ter: sacrebleu over the corpus


class TaskError(LlmassayError):
    """A task file problem; the message names file, line and field."""


_JINJA = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
_JINJA.filters["regex_replace"] = lambda text, pattern, repl, count=0: re.sub(pattern, repl, text, count=count)


def _lm_eval_target(rendered: str, has_choices: bool) -> Any:
    """lm-eval's reading of a rendered `doc_to_target`: digits index the choices, and a
    list literal ('['Paris', 'paris , france']') is a list of accepted answers."""
    if rendered.isdecimal() and has_choices and len(rendered) < 100:  # not '²': isdigit(), but int() refuses it
        return int(rendered)
    if len(rendered) >= 2 and rendered[0] == "[" and rendered[-1] == "]":
        try:
            value = ast.literal_eval(rendered)  # a literal, never eval()
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return rendered
        return value if isinstance(value, list) else rendered
    return rendered


@dataclass
class Task:
    name: str
    output_type: str
    samples: list[Sample]
    source: str
    content_hash: str
    metrics: list[str]
    num_fewshot: int = 0
    target_delimiter: str = " "
    generation_kwargs: dict[str, Any] = field(default_factory=dict)
    builder: PromptBuilder | None = field(default=None, repr=False, compare=False)
    json_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # sample id → JSON schema
    targets: dict[str, list[str]] = field(default_factory=dict)  # sample id → every accepted answer (list targets)
    # lm-eval's per-choice contexts (winogrande): sample id → the continuation scored after
    # prompt + each choice; the choices are then contexts, not answers
    continuations: dict[str, str] = field(default_factory=dict)
    scoring: GenerationScoring | None = field(default=None, repr=False, compare=False)
    # a trusted `process_results(doc, results) -> {metric: value}`: the task's own scoring
    process_results: Callable[..., dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    config: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # the resolved config
    # metric → lm-eval aggregation where it is not a mean (weighted_perplexity, bits_per_byte)
    aggregations: dict[str, str] = field(default_factory=dict)
    # lm-eval's `repeats`: answers generated per item, all passed to the filters (majority_vote)
    repeats: int = 1

    def references(self, sample: Sample) -> list[str]:
        """Every answer a generation may match: lm-eval's list targets (nq_open), else the one target."""
        return self.targets.get(sample.id) or [str(sample.target)]

    def score_generation(self, sample: Sample, text: str | list[str]) -> dict[str, Any]:
        """The generation's metrics, one per filter as lm-eval names them (`exact_match,strict-match`);
        a list is the item's `repeats` answers, in order."""
        scoring = self.scoring or GenerationScoring()
        return scoring.score(text, self.references(sample), sample.doc)

    def custom_scores(self, sample: Sample, results: list[Any]) -> dict[str, Any]:
        """The task's own `process_results` on lm-eval's per-request results."""
        assert self.process_results is not None
        return _run_process_results(self.process_results, sample, results, self.metrics)

    def json_schema(self, sample_id: str) -> dict[str, Any]:
        """The JSON schema the task's `json_schema` field gives this item."""
        if sample_id not in self.json_schemas:
            raise TaskError(f"{self.source}: task '{self.name}' has no 'json_schema' for item '{sample_id}'")
        return self.json_schemas[sample_id]

    def rerender(
        self, sample: Sample, data: dict[str, Any] | None = None, fewshot_seed: str | None = None,
        shot_order_seed: str | None = None,
    ) -> Sample:
        """The same item through the task's own templates, with changed document fields or
        a different few-shot draw/order: how perturbations change content, not format."""
        if self.builder is None:
            raise TaskError(f"task '{self.name}' cannot be re-rendered")
        return self.builder.build(sample.id, data if data is not None else sample.doc, fewshot_seed, shot_order_seed)

    def with_metrics(self, names: list[str] | None) -> Task:
        """The task scored with only these metrics (e.g. skip generation for speed)."""
        if not names:
            return self
        known = {"multiple_choice": MC_METRICS, "loglikelihood": LOGLIKELIHOOD_METRICS,
                 "loglikelihood_rolling": ROLLING_METRICS}.get(self.output_type, tuple(self.metrics) or GEN_METRICS)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise TaskError(
                f"--metrics: {', '.join(unknown)} not available for {self.name} ({self.output_type}: {', '.join(known)})"
            )
        return Task(**{**self.__dict__, "metrics": list(names)})

    def with_generation(self, overrides: dict[str, Any] | None) -> Task:
        """lm-eval's `--gen_kwargs until=…,max_gen_toks=…` over a generation task's own settings."""
        if not overrides or self.output_type != "generate_until":
            return self
        return Task(**{**self.__dict__, "generation_kwargs": {**self.generation_kwargs, **overrides}})

    def limited(self, limit: int | None) -> Task:
        if limit is None:
            return self
        return Task(**{**self.__dict__, "samples": self.samples[:limit]})


@dataclass
class _Doc:
    data: dict[str, Any]
    where: str  # "file:line"


# -- discovery ------------------------------------------------------------------------
def bundled_tasks() -> dict[str, Path]:
    """Bundled task name → its YAML file."""
    return {p.stem: p for p in sorted(DATA_DIR.glob("*/*.yaml"))}


def bundled_tags() -> dict[str, list[str]]:
    """The bundled tasks' `tag:` names → their task names (lm-eval's tags: `--tasks inverse_scaling`)."""
    from llmassay.tasks.registry import TaskIndex

    return TaskIndex.scan([DATA_DIR]).tags


def load_task(
    name_or_path: str, num_fewshot: int | None = None, seed: int = 0, mc_format: str | None = None, *,
    trust_task_code: bool = False, data_dir: str | Path | None = None, lm_eval_fewshot: bool = False,
) -> Task:
    """A bundled task name, or a path to a .yaml, .jsonl or .csv file.

    `mc_format` ("cloze" or "lettered", see MC_FORMATS) chooses a plain file's
    multiple-choice prompt; `trust_task_code` lets `!function` tags import Python from the
    task's directory; `data_dir` (else $LLMASSAY_DATA_DIR) holds local copies of hub
    datasets as `<dataset_path>/<dataset_name or default>/<split>.jsonl`, so lm-eval's
    configs load unchanged; `lm_eval_fewshot` draws random shots from lm-eval's own
    seed-1234 stream, so prompts are the ones lm-eval builds."""
    if mc_format is not None and mc_format not in MC_FORMATS:
        raise TaskError(f"--mc-format '{mc_format}': unknown (known: {', '.join(MC_FORMATS)})")
    bundled = bundled_tasks()
    if name_or_path in bundled:
        path = bundled[name_or_path]
    else:
        try:
            path = Path(name_or_path).expanduser()
            exists = path.exists()
        except (OSError, ValueError, RuntimeError) as exc:  # a name too long, '~nosuchuser', ...
            raise TaskError(f"task '{name_or_path}': cannot access ({_reason(exc)})") from None
        if not exists:
            raise TaskError(f"task '{name_or_path}': not a bundled task ({', '.join(bundled)}) and no such file")
    suffix = path.suffix.lower()
    source = DataSource(path, data_dir)
    is_yaml = suffix in (".yaml", ".yml") or path.name.endswith("_yaml")
    if is_yaml and mc_format is not None:
        raise TaskError(f"--mc-format applies to plain .jsonl/.csv files; task '{name_or_path}' has its own "
                        "prompt (doc_to_text in its YAML)")
    if is_yaml:
        config, lines = _read_yaml(path)
        for key in ("test_split", "validation_split", "training_split", "fewshot_split"):
            if config.get(key) is not None and not isinstance(config[key], str):
                raise _field_error(path, lines)(key, f"must be a string, not {type(config[key]).__name__}")
        try:
            config = resolve_functions(config, trust_task_code)
        except TaskConfigError as exc:
            raise TaskError(str(exc)) from None
        warn_unsupported(path, config, lines)
        _check_header(path, config, lines)
        docs = source.docs(config, lines, eval_split(config))
    elif suffix in (".jsonl", ".json", ".csv"):
        docs = _read_records(path)
        config, lines = _plain_config(path, docs, mc_format or "cloze"), {}
    else:
        raise TaskError(f"{path}: unsupported task file type '{suffix}' (use .yaml, .jsonl or .csv)")
    return _build_task(path, config, lines, docs, num_fewshot, seed, source, lm_eval_fewshot)


# -- reading files --------------------------------------------------------------------
def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The config with `include:`s merged (lm-eval's rule) and where each key was set."""
    try:
        return read_config(path)
    except TaskConfigError as exc:
        raise TaskError(str(exc)) from None


# A plain file's multiple-choice prompt. "cloze" scores each choice's text after
# "Answer:" and never shows the options (lm-eval's cloze style, e.g. ARC-easy); "lettered"
# lists them as "A. …" and scores the letters, as lm-eval's MMLU does.
MC_FORMATS = {
    "cloze": ("Question: {{question}}\nAnswer:", "choices", "answer"),
    "lettered": ("{{question}}\n{% for c in choices %}{{ 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[loop.index0] }}. {{c}}\n"
                 "{% endfor %}Answer:", "{{ 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[:choices|length]|list }}",
                 # an answer given as a choice's text names that choice, not a letter
                 "{{ choices.index(answer) if answer in choices else answer }}"),
}


def _plain_config(path: Path, docs: list[_Doc], mc_format: str = "cloze") -> dict[str, Any]:
    """Column conventions for files without a YAML: question/choices/answer → multiple
    choice (prompt per `mc_format`), input/target → generation. The first record decides."""
    if not docs:
        raise TaskError(f"{path}: no records")
    first = docs[0]
    keys = set(first.data)
    if {"question", "choices", "answer"} <= keys or {"question", "A", "B", "answer"} <= keys:
        text, choice, target = MC_FORMATS[mc_format] if "choices" in keys else MC_FORMATS["cloze"]
        return {
            "task": path.stem,
            "output_type": "multiple_choice",
            "doc_to_text": text,
            "doc_to_choice": choice if "choices" in keys else None,
            "doc_to_target": target,
        }
    if {"input", "target"} <= keys:
        return {
            "task": path.stem,
            "output_type": "generate_until",
            "doc_to_text": "input",
            "doc_to_target": "target",
            "generation_kwargs": {"until": ["\n\n"], "max_gen_toks": 64},
        }
    raise TaskError(
        f"{first.where}: unknown columns {sorted(keys)}; expected question/choices/answer or input/target"
    )


def _read_records(path: Path) -> list[_Doc]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TaskError(f"{path}: cannot read data ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TaskError(f"{path}:{line}: not valid UTF-8") from None
    docs: list[_Doc] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        try:
            for row in reader:
                line = reader.line_num
                if None in row or any(v is None for v in row.values()):
                    raise TaskError(f"{path}:{line}: row has a different number of fields than the header")
                docs.append(_Doc(_csv_row(dict(row)), f"{path}:{line}"))
        except csv.Error as exc:  # a field over csv.field_size_limit(), ...
            raise TaskError(f"{path}:{reader.line_num + 1}: invalid CSV ({exc})") from None
        return docs
    for number, line_text in enumerate(text.splitlines(), start=1):
        if not line_text.strip():
            continue
        try:
            record = json.loads(line_text)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}:{number}: invalid JSON ({exc.msg}, column {exc.colno})") from None
        except (ValueError, RecursionError) as exc:  # an int over 4300 digits, deep nesting
            raise TaskError(f"{path}:{number}: invalid JSON ({_reason(exc)})") from None
        if not isinstance(record, dict):
            raise TaskError(f"{path}:{number}: each line must be a JSON object")
        docs.append(_Doc(record, f"{path}:{number}"))
    return docs


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """CSV cells are strings: decode JSON lists (choices) and A/B/C/D option columns."""
    if "choices" in row and row["choices"].startswith("["):
        try:
            row["choices"] = json.loads(row["choices"])
        except (ValueError, RecursionError):
            pass
    letters = [k for k in ("A", "B", "C", "D", "E") if k in row]
    if "choices" not in row and len(letters) >= 2:
        row["choices"] = [row[k] for k in letters]
    return row


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# -- building the task ----------------------------------------------------------------
def _field_error(path: Path, lines: dict[str, str]) -> Any:
    def fail(key: str, message: str) -> TaskError:
        where = lines.get(key, str(path))
        return TaskError(f"{where}: field '{key}': {message}")

    return fail


def _split_key(config: dict[str, Any], split: str) -> str:
    """The YAML key that names `split` (test_split when none does)."""
    return next((k for k in ("test_split", "validation_split", "fewshot_split", "training_split")
                 if config.get(k) == split), "test_split")


def _check_header(path: Path, config: dict[str, Any], lines: dict[str, str]) -> None:
    """Fields that must be right before any data is read."""
    fail = _field_error(path, lines)
    name = config.get("task", path.stem)
    if not isinstance(name, str) or not name:
        raise fail("task", "must be a non-empty string")
    if "group" in config and "task" in config and isinstance(config["task"], list):
        raise fail("group", "group configs (a 'task:' list) are not supported yet; load each task file")
    for key in SCORE_CHANGING_KEYS:
        if config.get(key) is not None:
            raise fail(key, "is not supported, and ignoring it would change the scores")
    if config.get("process_results") is not None and not callable(config["process_results"]):
        raise fail("process_results", "must be a !function (run with --trust-task-code)")
    output_type = config.get("output_type", "generate_until")  # lm-eval's default
    if output_type in UNSUPPORTED_OUTPUT_TYPES:
        raise fail("output_type", f"'{output_type}' is not supported yet (use {', '.join(OUTPUT_TYPES)})")
    if output_type not in OUTPUT_TYPES:
        raise fail("output_type", f"'{output_type}' is not one of {', '.join(OUTPUT_TYPES)}")
    for key in ("doc_to_text", "doc_to_target"):
        if key not in config:
            raise TaskError(f"{path}: missing required field '{key}' (in this file and its 'include:' files)")
    if output_type == "multiple_choice" and "doc_to_choice" not in config:
        raise TaskError(f"{path}: missing required field 'doc_to_choice' (needed for multiple_choice)")


def _build_task(
    path: Path,
    config: dict[str, Any],
    lines: dict[str, str],
    docs: list[_Doc],
    num_fewshot: int | None,
    seed: int,
    source: DataSource | None = None,
    lm_eval_fewshot: bool = False,
) -> Task:
    fail = _field_error(path, lines)
    name, output_type = config.get("task", path.stem), config.get("output_type", "generate_until")
    if not docs:
        raise TaskError(f"{path}: the dataset has no documents")
    shots = config.get("num_fewshot", 0) if num_fewshot is None else num_fewshot
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 0:
        raise fail("num_fewshot", "must be a non-negative integer")
    fewshot_docs = _fewshot_docs(config, lines, docs, source, fail) if shots else docs
    available = len(fewshot_docs) - (1 if fewshot_docs is docs else 0)  # an item is never its own shot
    if shots > available:
        raise fail("num_fewshot", f"{shots} shots requested but only {available} documents to draw from")
    sampler = _fewshot_sampler(config, fail)
    target_delimiter = _string_field(config, "target_delimiter", " ", fail)
    fewshot_delimiter = _string_field(config, "fewshot_delimiter", "\n\n", fail)
    description_template = _string_field(config, "description", "", fail)
    gen_prefix = _string_field(config, "gen_prefix", "", fail)
    group_field = config.get("fewshot_group")
    if group_field is not None and not isinstance(group_field, str):
        raise fail("fewshot_group", "must be the name of a document field")
    gen_kwargs = config.get("generation_kwargs") or {}
    if not isinstance(gen_kwargs, dict):
        raise fail("generation_kwargs", "must be a mapping (until, max_gen_toks)")
    until = gen_kwargs.get("until", [fewshot_delimiter])  # lm-eval's default: the few-shot delimiter
    if isinstance(until, str):
        until = [until]
    if not isinstance(until, list) or not all(isinstance(u, str) for u in until):
        raise fail("generation_kwargs", "'until' must be a string or a list of strings")
    max_gen = gen_kwargs.get("max_gen_toks", 256)
    if not isinstance(max_gen, int) or isinstance(max_gen, bool) or max_gen <= 0:
        raise fail("generation_kwargs", "'max_gen_toks' must be a positive integer")
    repeats = config.get("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise fail("repeats", "must be a positive integer")
    process = config.get("process_results")
    metrics = _custom_metric_names(config, fail) if process is not None else _metric_names(config, output_type, fail)
    scoring = GenerationScoring.from_config(config, fail) if output_type == "generate_until" else None
    if scoring is not None and process is not None:
        scoring.process_results, scoring.metrics = process, tuple(metrics)
    if scoring is not None:
        metrics = scoring.metric_names()  # one result per filter: exact_match,strict-match ...

    builder = PromptBuilder(
        renderer=_Renderer(config, output_type, fail),
        description=description_template,
        fewshot_docs=fewshot_docs,
        shots=shots,
        seed=seed,
        sampler=sampler,
        target_delimiter=target_delimiter,
        fewshot_delimiter=fewshot_delimiter,
        fail=fail,
        gen_prefix=gen_prefix,
        same_split=fewshot_docs is docs,
        group_field=group_field,
    )
    if lm_eval_fewshot and shots and sampler == "default":
        builder.draw_lm_eval_stream(docs, exclude_self=excludes_eval_doc(config))
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    for index, doc in enumerate(docs):
        sid = str(doc.data.get("id", index))
        if sid in seen:
            raise TaskError(f"{doc.where}: duplicate id '{sid}' (first at {seen[sid]})")
        seen[sid] = doc.where
        builder.docs_by_id[sid] = doc
        samples.append(builder.build(sid, doc.data))
    builder.warn_short_groups(name)
    schemas = _json_schemas(path, config, docs, [s.id for s in samples], fail)
    content_hash = stable_hash(
        [[s.id, s.prompt, s.choices, s.target] for s in samples]
        + [output_type, target_delimiter, until, max_gen]
        + ([schemas] if schemas else [])
        + ([builder.targets] if builder.targets else [])
        + ([builder.continuations] if builder.continuations else [])
        + ([scoring.record()] if scoring is not None and scoring.lm_eval else [])
        + ([{"repeats": repeats}] if repeats > 1 and output_type == "generate_until" else [])
    )
    return Task(
        name=name,
        output_type=output_type,
        samples=samples,
        source=str(path),
        content_hash=content_hash,
        metrics=metrics,
        num_fewshot=shots,
        target_delimiter=target_delimiter,
        generation_kwargs={"until": until, "max_gen_toks": max_gen},
        builder=builder,
        json_schemas=schemas,
        targets=builder.targets,
        continuations=builder.continuations,
        scoring=scoring,
        process_results=process,
        config=config,
        aggregations=_weighted_aggregations(config, metrics, fail),
        repeats=repeats if output_type == "generate_until" else 1,
    )


def _fewshot_docs(
    config: dict[str, Any], lines: dict[str, str], docs: list[_Doc], source: DataSource | None, fail: Any
) -> list[_Doc]:
    """lm-eval's few-shot pool: `fewshot_config.samples`, else the few-shot split (which is
    the evaluated documents themselves when the split and its files are the same)."""
    fewshot = config["fewshot_config"] if isinstance(config.get("fewshot_config"), dict) else {}
    split = fewshot_split(config)
    if fewshot.get("samples") is not None and config.get("fewshot_split") is None and fewshot.get("split") is None:
        samples = fewshot["samples"]
        samples = samples() if callable(samples) else samples
        if not isinstance(samples, list) or not all(isinstance(d, dict) for d in samples):
            raise fail("fewshot_config", "samples must be a list of documents (mappings)")
        return [_Doc(d, f"fewshot_config.samples[{i}]") for i, d in enumerate(samples)]
    if source is None or split == eval_split(config) or source.same_files(config, split, eval_split(config)):
        return docs
    return source.docs(config, lines, split, role="few-shot")


def _json_schemas(path: Path, config: dict[str, Any], docs: list[_Doc], ids: list[str], fail: Any) -> dict[str, Any]:
    """`json_schema:` an inline mapping, a `.json` file beside the YAML, or the name of a
    document field holding either (one schema per item). Checked against the metaschema."""
    spec = config.get("json_schema")
    if spec is None:
        return {}
    files: dict[str, dict[str, Any]] = {}

    def resolve(value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, str):
            if value not in files:
                files[value] = _schema_file(path.parent / value, where, fail)
            value = files[value]
        if not isinstance(value, dict):
            raise fail("json_schema", f"a schema must be a mapping or a .json file name{where}")
        _check_schema(value, where, fail)
        return value

    if isinstance(spec, dict) or (isinstance(spec, str) and spec.lower().endswith(".json")):
        schema = resolve(spec, "")
        return {sid: schema for sid in ids}
    if not isinstance(spec, str):
        raise fail("json_schema", "must be a mapping, a .json file name or a document field name")
    out = {}
    for sid, doc in zip(ids, docs):
        if spec not in doc.data:
            raise fail("json_schema", f"document field '{spec}' missing on {doc.where}")
        out[sid] = resolve(doc.data[spec], f" on {doc.where}")
    return out


def _schema_file(file: Path, where: str, fail: Any) -> dict[str, Any]:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail("json_schema", f"cannot read schema file {file} ({_reason(exc)}){where}") from None
    except (ValueError, RecursionError) as exc:
        raise fail("json_schema", f"schema file {file} is not valid JSON ({_reason(exc)}){where}") from None


def _check_schema(schema: dict[str, Any], where: str, fail: Any) -> None:
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise fail("json_schema", f"not a valid JSON schema ({exc.message}){where}") from None


@dataclass
class PromptBuilder:
    """Renders one document into a Sample: description, few-shot examples, the item, as
    lm-eval's `fewshot_context` joins them (`gen_prefix` and delimiters included)."""

    renderer: _Renderer
    description: str
    fewshot_docs: list[_Doc]
    shots: int
    seed: int
    sampler: str
    target_delimiter: str
    fewshot_delimiter: str
    fail: Any
    gen_prefix: str = ""
    same_split: bool = True  # the shots come from the evaluated documents: an item is never its own shot
    group_field: str | None = None  # llmassay's `fewshot_group`: shots share this field's value (MMLU subject)
    docs_by_id: dict[str, _Doc] = field(default_factory=dict)
    targets: dict[str, list[str]] = field(default_factory=dict)
    continuations: dict[str, str] = field(default_factory=dict)  # sample id → continuation after each context
    fixed_shots: dict[int, list[_Doc]] = field(default_factory=dict)  # id(doc) → lm-eval's stream draw
    short: dict[str, int] = field(default_factory=dict)  # sample id → shots it got, where its group had fewer

    def draw_lm_eval_stream(self, docs: list[_Doc], exclude_self: bool) -> None:
        """lm-eval's default sampler: one `Random(1234)` drawn in document order, n + 1
        then the item removed (by equality) when shots come from the test split."""
        rng = random.Random(1234)
        pool = self.fewshot_docs
        for doc in docs:
            if exclude_self:
                drawn = [d for d in rng.sample(pool, self.shots + 1) if d.data != doc.data][: self.shots]
                if len(drawn) < self.shots:
                    drawn = rng.sample([d for d in pool if d.data != doc.data], self.shots)
            else:
                drawn = rng.sample(pool, self.shots)
            self.fixed_shots[id(doc)] = drawn

    def build(
        self, sid: str, data: dict[str, Any], fewshot_seed: str | None = None, shot_order_seed: str | None = None
    ) -> Sample:
        original = self.docs_by_id[sid]
        doc = original if data is original.data else _Doc(data, original.where)
        text, choices, target = self.renderer.render(doc)
        if isinstance(text, int):  # per-choice contexts: the prompt is what they share
            self.continuations[sid] = str(target)
            text, target = "", text
        if isinstance(target, list):
            self.targets[sid] = target
            target = target[0]
        prefix = self.renderer.template("description", self.description, doc) if self.description else ""
        if self.shots:
            drawn = self._draw(sid, original, fewshot_seed)
            if shot_order_seed is not None:
                random.Random(shot_order_seed).shuffle(drawn)
            prefix += "".join(self._shot(shot) for shot in drawn)
        prompt = prefix + text
        if self.gen_prefix:
            gen_prefix = self.renderer.template("gen_prefix", self.gen_prefix, doc)
            prompt += (self.target_delimiter if _needs_delimiter(text, gen_prefix) else "") + gen_prefix
        return Sample(id=sid, prompt=prompt, choices=choices, target=target, doc=data)

    def _draw(self, sid: str, original: _Doc, fewshot_seed: str | None) -> list[_Doc]:
        pool = self.fewshot_docs
        if self.group_field is not None:
            key = original.data.get(self.group_field)
            pool = [d for d in pool if d.data.get(self.group_field) == key]
        others = [d for d in pool if d is not original] if self.same_split else pool
        if self.group_field is not None and len(others) < self.shots:
            self.short[sid] = len(others)  # said once per task by warn_short_groups, never silent
            return list(others)
        needed = self.shots + 1 if self.same_split else self.shots
        if len(pool) < needed:
            raise self.fail(
                "num_fewshot", f"{self.shots} shots requested but only {len(others)} documents to draw from"
            )
        if fewshot_seed is None and id(original) in self.fixed_shots:
            return list(self.fixed_shots[id(original)])
        if self.sampler == "first_n" and fewshot_seed is None:
            # lm-eval's FirstNSampler: the first documents in file order, the item itself left out.
            return others[: self.shots]
        # As lm-eval's default: draw one extra and drop the document itself if it was drawn.
        # A perturbation that asks for other shots (fewshot_seed) draws at random here too.
        rng = random.Random(fewshot_seed or f"{self.seed}:{sid}")
        if not self.same_split:
            return rng.sample(pool, self.shots)
        return [d for d in rng.sample(pool, self.shots + 1) if d is not original][: self.shots]

    def _shot(self, shot: _Doc) -> str:
        """One answered example, as lm-eval's `build_qa_turn` writes it."""
        s_text, s_choices, s_target = self.renderer.render(shot)
        if isinstance(s_text, int):  # lm-eval: the gold context, then the continuation (render gives both)
            s_text, s_choices = (s_choices or [])[s_text], None
        if isinstance(s_target, list):
            s_target = s_target[0]
        answer = s_choices[s_target] if s_choices is not None and isinstance(s_target, int) else str(s_target)
        if not self.gen_prefix:
            return s_text + self.target_delimiter + answer + self.fewshot_delimiter
        gen_prefix = self.renderer.template("gen_prefix", self.gen_prefix, shot)
        joined = gen_prefix + (" " if _needs_delimiter(gen_prefix, answer) else "") + answer
        return s_text + (self.target_delimiter if _needs_delimiter(s_text, gen_prefix) else "") + joined + self.fewshot_delimiter

    def warn_short_groups(self, task_name: str) -> None:
        if self.short:
            counts = sorted(set(self.short.values()))
            warnings.warn(
                f"{task_name}: {self.shots} shots requested, but {len(self.short)} items have only "
                f"{'/'.join(map(str, counts))} other documents with the same '{self.group_field}' and get those",
                stacklevel=3,
            )

    def description_text(self, data: dict[str, Any], sid: str) -> str:
        if not self.description:
            return ""
        return self.renderer.template("description", self.description, _Doc(data, self.docs_by_id[sid].where))


def _needs_delimiter(prefix: str, suffix: str) -> bool:
    """lm-eval's `requires_delimiter`: neither side has whitespace at the join."""
    return bool(prefix) and bool(suffix) and not (prefix[-1].isspace() or suffix[0].isspace())


FEWSHOT_SAMPLERS = ("default", "first_n")


def _fewshot_sampler(config: dict[str, Any], fail: Any) -> str:
    """lm-eval's `fewshot_config.sampler`: `default` (random shots per item, seeded) or
    `first_n` (the same first shots for every item, so their block is a prefix every prompt
    shares and is read once)."""
    fewshot_config = config.get("fewshot_config") or {}
    if not isinstance(fewshot_config, dict):
        raise fail("fewshot_config", "must be a mapping (sampler)")
    sampler = fewshot_config.get("sampler", "default")
    if sampler not in FEWSHOT_SAMPLERS:
        raise fail("fewshot_config", f"sampler '{sampler}' is not one of {', '.join(FEWSHOT_SAMPLERS)}")
    return sampler


def _string_field(config: dict[str, Any], key: str, default: str, fail: Any) -> str:
    value = config.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise fail(key, f"must be a string, not {type(value).__name__}")
    return value


def _custom_metric_names(config: dict[str, Any], fail: Any) -> list[str]:
    """With `process_results`, metric_list names what it returns; each is averaged over items."""
    names = []
    for entry in config.get("metric_list") or ():
        name = entry.get("metric") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            raise fail("metric_list", "with process_results, each metric must be a name")
        aggregation = _aggregation(entry, name)
        if aggregation != "mean" and aggregation not in WEIGHTED_AGGREGATIONS:
            raise fail("metric_list", f"aggregation {aggregation!r} of '{name}' is not supported with "
                                      f"process_results (mean, {', '.join(WEIGHTED_AGGREGATIONS)})")
        names.append(name)
    if not names:
        raise fail("metric_list", "process_results needs a metric_list naming the metrics it returns")
    return names


def _aggregation(entry: Any, name: str) -> str:
    """A metric_list entry's aggregation, else lm-eval's default for the metric."""
    given = entry.get("aggregation") if isinstance(entry, dict) else None
    return given if isinstance(given, str) else DEFAULT_AGGREGATION.get(name, "mean")


def _weighted_aggregations(config: dict[str, Any], metrics: list[str], fail: Any) -> dict[str, str]:
    """The metrics aggregated as lm-eval's ratios of sums (perplexities, bits per byte)."""
    entries = {(e.get("metric") if isinstance(e, dict) else e): e for e in config.get("metric_list") or ()}
    out = {m: _aggregation(entries.get(m), m) for m in metrics}
    for name, aggregation in out.items():
        if name in ROLLING_METRICS and aggregation not in WEIGHTED_AGGREGATIONS:
            raise fail("metric_list", f"aggregation {aggregation!r} of '{name}' is not supported "
                                      f"(use {', '.join(WEIGHTED_AGGREGATIONS)})")
    return {m: a for m, a in out.items() if a in WEIGHTED_AGGREGATIONS}


def _run_process_results(process: Any, sample: Sample, results: list[Any], metrics: list[str]) -> dict[str, Any]:
    try:
        values = process(sample.doc, results)
    except Exception as exc:  # the task's own code: one line naming the item
        raise TaskError(f"process_results failed on item '{sample.id}': {type(exc).__name__}: {exc}") from None
    if not isinstance(values, dict) or any(m not in values for m in metrics):
        raise TaskError(f"process_results gave {type(values).__name__} without {metrics} on item '{sample.id}'")
    return {m: values[m] for m in metrics}


def _metric_names(config: dict[str, Any], output_type: str, fail: Any) -> list[str]:
    known = {"multiple_choice": MC_METRICS, "loglikelihood": LOGLIKELIHOOD_METRICS,
             "loglikelihood_rolling": ROLLING_METRICS}.get(output_type, GEN_METRICS)
    entries = config.get("metric_list")
    if entries is None:
        return list(DEFAULT_MC_METRICS if output_type == "multiple_choice" else known)
    if not isinstance(entries, list):
        raise fail("metric_list", "must be a list")
    names = []
    for entry in entries:
        metric = entry.get("metric") if isinstance(entry, dict) else entry
        if output_type == "generate_until" and isinstance(metric, str) and callable(
                entry.get("aggregation") if isinstance(entry, dict) else None):
            names.append(metric)  # aggregated by the task's own (trusted) function
            continue
        if metric not in known:
            raise fail("metric_list", f"metric '{metric}' is not supported for {output_type} (use {', '.join(known)})")
        names.append(metric)
    return names


class DataSource:
    """Where a task's documents come from: `dataset_path: json|csv` with `data_files`
    (relative to the YAML, then to the working directory, as lm-eval resolves them), a
    hub dataset's local copy under the data directory, else the hub itself through
    `datasets` (`hub_data`); `process_docs` applied per split."""

    def __init__(self, path: Path, data_dir: str | Path | None = None) -> None:
        self.path = path
        root = data_dir if data_dir is not None else os.environ.get("LLMASSAY_DATA_DIR")
        self.data_dir = Path(root).expanduser() if root else None

    def files(self, config: dict[str, Any], lines: dict[str, str], split: str) -> list[Path] | None:
        """The local files holding `split`; None for a hub dataset with no local copy."""
        fail = _field_error(self.path, lines)
        dataset_path = config.get("dataset_path")
        if dataset_path not in ("json", "csv"):
            mirrored = self._mirrored(config, split)
            return None if mirrored is None else [mirrored]
        kwargs = config.get("dataset_kwargs") or {}
        files = kwargs.get("data_files") if isinstance(kwargs, dict) else None
        if files is None:
            raise fail("dataset_kwargs", "needs data_files (a path, a list of paths, or split → path)")
        if isinstance(files, dict):
            if split not in files:
                raise fail(_split_key(config, split),
                           f"split '{split}' is not in dataset_kwargs.data_files ({', '.join(map(str, files))})")
            files = files[split]
        if isinstance(files, str):
            files = [files]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise fail("dataset_kwargs", "data_files must be a string, a list of strings, or a mapping")
        return [self._data_file(name, fail) for name in files]

    def _data_file(self, name: str, fail: Any) -> Path:
        try:
            candidates = [Path(name)] if Path(name).is_absolute() else [self.path.parent / name, Path.cwd() / name]
            found = next((c for c in candidates if c.exists()), None)
        except (OSError, ValueError, RuntimeError) as exc:  # a name too long, a NUL byte, a symlink loop
            raise fail("dataset_kwargs", f"data file '{name}' cannot be accessed ({_reason(exc)})") from None
        if found is None:
            raise fail("dataset_kwargs", f"data file '{name}' not found (relative to {self.path.parent} or the working directory)")
        if not found.is_file():  # a directory, a FIFO that would block forever
            raise fail("dataset_kwargs", f"data file '{name}' is not a regular file")
        return found.resolve()

    def _mirrored(self, config: dict[str, Any], split: str) -> Path | None:
        dataset_path = config.get("dataset_path")
        name = config.get("dataset_name") or "default"
        if isinstance(dataset_path, str) and self.data_dir is not None:
            for suffix in (".jsonl", ".csv"):
                file = self.data_dir / dataset_path / str(name) / f"{split}{suffix}"
                if file.is_file():
                    return file
        return None

    def _hub_docs(self, config: dict[str, Any], lines: dict[str, str], split: str) -> list[_Doc]:
        """`split` through `datasets.load_dataset`, as lm-eval loads it; a failure names the
        field, what it needs, and the local alternatives."""
        fail = _field_error(self.path, lines)
        dataset_path, name = config.get("dataset_path"), config.get("dataset_name")
        kwargs = config.get("dataset_kwargs") or {}
        if not isinstance(dataset_path, str) or not dataset_path:
            raise fail("dataset_path", "must be 'json', 'csv' or a hub dataset name")
        if not isinstance(kwargs, dict):
            raise fail("dataset_kwargs", "must be a mapping")
        try:
            rows = load_split(dataset_path, None if name is None else str(name), split, kwargs)
        except HubDataError as exc:
            field = _split_key(config, split) if exc.field == "test_split" else exc.field
            looked = self.data_dir / dataset_path / str(name or "default") / f"{split}.jsonl" if self.data_dir else None
            local = ("; or use 'json' or 'csv' with dataset_kwargs.data_files, or --data-dir DIR holding "
                     "<dataset_path>/<dataset_name>/<split>.jsonl" + (f" (looked for {looked})" if looked else ""))
            if field != "dataset_path":
                raise fail(field, f"'{dataset_path}': {exc}") from None
            raise fail(field, f"'{dataset_path}' has no local copy and {exc}{local}") from None
        where = f"{dataset_path}/{name or 'default'}/{split}"
        return [_Doc(row, f"{where}[{i}]") for i, row in enumerate(rows)]

    def same_files(self, config: dict[str, Any], split_a: str, split_b: str) -> bool:
        try:
            files = self.files(config, {}, split_a)
            return files is not None and files == self.files(config, {}, split_b)
        except TaskError:
            return False

    def docs(self, config: dict[str, Any], lines: dict[str, str], split: str, role: str = "evaluated") -> list[_Doc]:
        files = self.files(config, lines, split)
        docs: list[_Doc] = self._hub_docs(config, lines, split) if files is None else []
        for file in files or ():
            docs.extend(_read_records(file))
        process = config.get("process_docs")
        if process is None:
            return docs
        if not callable(process):
            raise _field_error(self.path, lines)("process_docs", "must be a !function")
        try:
            processed = list(process(DocList(d.data for d in docs)))
        except Exception as exc:  # the task's own code: one line naming where it failed
            raise _field_error(self.path, lines)(
                "process_docs", f"failed on the {role} split '{split}': {type(exc).__name__}: {exc}"
            ) from None
        same = len(processed) == len(docs)
        return [_Doc(dict(d), docs[i].where if same else f"{split}[{i}] after process_docs")
                for i, d in enumerate(processed)]


class _Renderer:
    """Applies doc_to_text / doc_to_choice / doc_to_target to one document."""

    def __init__(self, config: dict[str, Any], output_type: str, fail: Any) -> None:
        self.config = config
        self.output_type = output_type
        self.fail = fail
        self._compiled: dict[str, jinja2.Template] = {}

    def template(self, key: str, source: str, doc: _Doc) -> str:
        try:
            if source not in self._compiled:
                self._compiled[source] = _JINJA.from_string(source)
            return self._compiled[source].render(**doc.data)
        except jinja2.TemplateSyntaxError as exc:
            raise self.fail(key, f"template syntax error: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise self.fail(key, f"template blocked by the sandbox on {doc.where}: {exc}") from None
        except jinja2.UndefinedError as exc:
            raise self.fail(key, f"{exc.message} on {doc.where}") from None
        except Exception as exc:  # a template is user data: any failure is a task error
            raise self.fail(key, f"template failed on {doc.where}: {type(exc).__name__}: {exc}") from None

    def _value(self, key: str, doc: _Doc) -> Any:
        spec = self.config[key]
        if callable(spec):  # a trusted `!function`
            try:
                return spec(doc.data)
            except Exception as exc:  # the task's own code: one line naming where it failed
                raise self.fail(key, f"function failed on {doc.where}: {type(exc).__name__}: {exc}") from None
        if isinstance(spec, str) and spec in doc.data:
            return doc.data[spec]
        if isinstance(spec, str):
            return self.template(key, spec, doc)
        return spec

    def render(self, doc: _Doc) -> tuple[str | int, list[str] | None, int | str | list[str]]:
        text = self._value("doc_to_text", doc)
        if isinstance(text, int) and not isinstance(text, bool) and self.config.get("doc_to_choice") is not None:
            # lm-eval's "multiple input" (winogrande's partial evaluation): the text is the
            # gold index, the choices are per-choice contexts, the target their shared continuation.
            if self.output_type != "multiple_choice":
                raise self.fail("doc_to_text", f"gave a number, not text, on {doc.where}")
            contexts = self._choices(doc)
            if not 0 <= text < len(contexts):
                raise self.fail("doc_to_text", f"{text} is not a valid context index on {doc.where}")
            return text, contexts, str(self._value("doc_to_target", doc))
        if not isinstance(text, str):
            raise self.fail("doc_to_text", f"gave {type(text).__name__}, not text, on {doc.where}")
        target = self._value("doc_to_target", doc)
        if isinstance(target, str) and not self._is_field("doc_to_target", doc):
            target = _lm_eval_target(target, self.config.get("doc_to_choice") is not None)
        if self.output_type != "multiple_choice":  # generate_until, loglikelihood: text targets
            if isinstance(target, dict):  # a gold record (json_schema tasks): kept as JSON text
                return text, None, json.dumps(target, ensure_ascii=False)
            if self.config.get("doc_to_choice") is not None and isinstance(target, int):
                return text, None, str(self._choices(doc)[target])
            if isinstance(target, list):  # lm-eval's list targets: any of them is right
                return text, None, [str(t) for t in target] or [""]
            return text, None, str(target)
        choices = self._choices(doc)
        if isinstance(target, list) and target and self.config.get("process_results") is not None:
            target = target[0]  # the task's own process_results reads the gold from the document
        return text, choices, self._target_index(target, choices, doc)

    def _is_field(self, key: str, doc: _Doc) -> bool:
        spec = self.config[key]
        return isinstance(spec, str) and spec in doc.data

    def _choices(self, doc: _Doc) -> list[str]:
        spec = self.config["doc_to_choice"]
        if spec is None:
            raise self.fail("doc_to_choice", f"no choices for {doc.where}")
        if isinstance(spec, list):
            choices: Any = [self.template("doc_to_choice", str(c), doc) for c in spec]
        elif isinstance(spec, dict):  # lm-eval: a mapping's values
            choices = [str(c) for c in spec.values()]
        else:
            choices = self._value("doc_to_choice", doc)
            if isinstance(choices, str):
                try:
                    choices = ast.literal_eval(choices)  # a rendered list literal, never eval()
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    raise self.fail("doc_to_choice", f"did not give a list on {doc.where}: {choices[:80]!r}") from None
        if not isinstance(choices, list) or len(choices) < 2:
            raise self.fail("doc_to_choice", f"needs a list of at least two choices on {doc.where}")
        return [str(c) for c in choices]

    def _target_index(self, target: Any, choices: list[str], doc: _Doc) -> int:
        if isinstance(target, bool):
            raise self.fail("doc_to_target", f"gave a boolean on {doc.where}")
        if isinstance(target, str):
            stripped = target.strip()
            if stripped in choices:
                target = choices.index(stripped)
            elif stripped.isdecimal() and len(stripped) < 100:  # not '²': isdigit(), but int() refuses it
                target = int(stripped)
            elif len(stripped) == 1 and stripped.upper() in "ABCDEFGHIJ":
                target = "ABCDEFGHIJ".index(stripped.upper())
        if not isinstance(target, int) or not 0 <= target < len(choices):
            raise self.fail("doc_to_target", f"{target!r} is not a valid choice index on {doc.where}")
        return target
