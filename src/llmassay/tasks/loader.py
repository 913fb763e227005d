"""Tasks from lm-eval-style YAML, plain JSONL or CSV, rendered into `Sample`s.

Every problem in a task file becomes one line naming the file, the line and the field
(`TaskError`), never a traceback. Templates run in Jinja2's sandbox: a task file is data,
and it must not be able to reach Python objects.
"""

from __future__ import annotations

import ast
import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from llmassay.hashing import stable_hash
from llmassay.types import LlmassayError, Sample

DATA_DIR = Path(__file__).parent / "data"
OUTPUT_TYPES = ("multiple_choice", "generate_until")
MC_METRICS = ("acc", "acc_norm", "acc_gen", "acc_bytes")
DEFAULT_MC_METRICS = ("acc", "acc_norm", "acc_gen")  # acc_bytes on request, as in lm-eval
GEN_METRICS = ("exact_match",)


class TaskError(LlmassayError):
    """A task file problem; the message names file, line and field."""


_JINJA = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


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
        known = MC_METRICS if self.output_type == "multiple_choice" else GEN_METRICS
        unknown = [n for n in names if n not in known]
        if unknown:
            raise TaskError(
                f"--metrics: {', '.join(unknown)} not available for {self.name} ({self.output_type}: {', '.join(known)})"
            )
        return Task(**{**self.__dict__, "metrics": list(names)})

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


def load_task(name_or_path: str, num_fewshot: int | None = None, seed: int = 0, mc_format: str | None = None) -> Task:
    """A bundled task name, or a path to a .yaml, .jsonl or .csv file. `mc_format`
    ("cloze" or "lettered", see MC_FORMATS) chooses a plain file's multiple-choice prompt."""
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
    if suffix in (".yaml", ".yml") and mc_format is not None:
        raise TaskError(f"--mc-format applies to plain .jsonl/.csv files; task '{name_or_path}' has its own "
                        "prompt (doc_to_text in its YAML)")
    if suffix in (".yaml", ".yml"):
        config, lines = _read_yaml(path)
        _check_header(path, config, lines)
        docs = _dataset_docs(path, config, lines)
    elif suffix in (".jsonl", ".json", ".csv"):
        docs = _read_records(path)
        config, lines = _plain_config(path, docs, mc_format or "cloze"), {}
    else:
        raise TaskError(f"{path}: unsupported task file type '{suffix}' (use .yaml, .jsonl or .csv)")
    return _build_task(path, config, lines, docs, num_fewshot, seed)


# -- reading files --------------------------------------------------------------------
def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise TaskError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        config = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = (exc.problem or str(exc)).strip()
        if "!function" in text and "could not determine a constructor" in str(exc):
            problem = "'!function' tags run Python code and are not supported; use Jinja2 templates"
        raise TaskError(f"{path}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise TaskError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except (ValueError, RecursionError) as exc:  # an int over 4300 digits, a bad !!timestamp, deep nesting
        raise TaskError(f"{path}: invalid YAML: {_reason(exc)}") from None
    if not isinstance(config, dict):
        raise TaskError(f"{path}:1: a task file must be a mapping of keys (task, doc_to_text, ...)")
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            lines[str(key_node.value)] = key_node.start_mark.line + 1
    return config, lines


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


def _csv_row(row: dict[str, str]) -> dict[str, Any]:
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
def _field_error(path: Path, lines: dict[str, int]) -> Any:
    def fail(key: str, message: str) -> TaskError:
        where = f"{path}:{lines[key]}" if key in lines else str(path)
        return TaskError(f"{where}: field '{key}': {message}")

    return fail


def _check_header(path: Path, config: dict[str, Any], lines: dict[str, int]) -> None:
    """Fields that must be right before any data is read."""
    fail = _field_error(path, lines)
    name = config.get("task", path.stem)
    if not isinstance(name, str) or not name:
        raise fail("task", "must be a non-empty string")
    output_type = config.get("output_type", "multiple_choice")
    if output_type not in OUTPUT_TYPES:
        raise fail("output_type", f"'{output_type}' is not one of {', '.join(OUTPUT_TYPES)}")
    for key in ("doc_to_text", "doc_to_target"):
        if key not in config:
            raise TaskError(f"{path}: missing required field '{key}'")
    if output_type == "multiple_choice" and "doc_to_choice" not in config:
        raise TaskError(f"{path}: missing required field 'doc_to_choice' (needed for multiple_choice)")


def _build_task(
    path: Path,
    config: dict[str, Any],
    lines: dict[str, int],
    docs: list[_Doc],
    num_fewshot: int | None,
    seed: int,
) -> Task:
    fail = _field_error(path, lines)
    name, output_type = config.get("task", path.stem), config.get("output_type", "multiple_choice")
    if not docs:
        raise TaskError(f"{path}: the dataset has no documents")
    fewshot_docs = docs
    if config.get("fewshot_split") and config.get("fewshot_split") != config.get("test_split"):
        fewshot_docs = _dataset_docs(path, config, lines, split_key="fewshot_split")
    shots = config.get("num_fewshot", 0) if num_fewshot is None else num_fewshot
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 0:
        raise fail("num_fewshot", "must be a non-negative integer")
    sampler = _fewshot_sampler(config, fail)
    target_delimiter = _string_field(config, "target_delimiter", " ", fail)
    fewshot_delimiter = _string_field(config, "fewshot_delimiter", "\n\n", fail)
    description_template = _string_field(config, "description", "", fail)
    gen_kwargs = config.get("generation_kwargs") or {}
    if not isinstance(gen_kwargs, dict):
        raise fail("generation_kwargs", "must be a mapping (until, max_gen_toks)")
    until = gen_kwargs.get("until", ["\n\n"])
    if isinstance(until, str):
        until = [until]
    if not isinstance(until, list) or not all(isinstance(u, str) for u in until):
        raise fail("generation_kwargs", "'until' must be a string or a list of strings")
    max_gen = gen_kwargs.get("max_gen_toks", 256)
    if not isinstance(max_gen, int) or isinstance(max_gen, bool) or max_gen <= 0:
        raise fail("generation_kwargs", "'max_gen_toks' must be a positive integer")
    metrics = _metric_names(config, output_type, fail)

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
    )
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    for index, doc in enumerate(docs):
        sid = str(doc.data.get("id", index))
        if sid in seen:
            raise TaskError(f"{doc.where}: duplicate id '{sid}' (first at {seen[sid]})")
        seen[sid] = doc.where
        builder.docs_by_id[sid] = doc
        samples.append(builder.build(sid, doc.data))
    schemas = _json_schemas(path, config, docs, [s.id for s in samples], fail)
    content_hash = stable_hash(
        [[s.id, s.prompt, s.choices, s.target] for s in samples]
        + [output_type, target_delimiter, until, max_gen]
        + ([schemas] if schemas else [])
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
    )


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
    """Renders one document into a Sample: description, few-shot examples, the item."""

    renderer: _Renderer
    description: str
    fewshot_docs: list[_Doc]
    shots: int
    seed: int
    sampler: str
    target_delimiter: str
    fewshot_delimiter: str
    fail: Any
    docs_by_id: dict[str, _Doc] = field(default_factory=dict)

    def build(
        self, sid: str, data: dict[str, Any], fewshot_seed: str | None = None, shot_order_seed: str | None = None
    ) -> Sample:
        original = self.docs_by_id[sid]
        doc = original if data is original.data else _Doc(data, original.where)
        text, choices, target = self.renderer.render(doc)
        prefix = self.renderer.template("description", self.description, doc) if self.description else ""
        if self.shots:
            if len(self.fewshot_docs) < self.shots + 1:
                raise self.fail(
                    "num_fewshot", f"{self.shots} shots requested but only {len(self.fewshot_docs)} documents to draw from"
                )
            if self.sampler == "first_n" and fewshot_seed is None:
                # lm-eval's FirstNSampler: the first documents in file order, the item itself left out.
                drawn = [d for d in self.fewshot_docs if d is not original][: self.shots]
            else:
                # As lm-eval's default: draw one extra and drop the document itself if it was drawn.
                # A perturbation that asks for other shots (fewshot_seed) draws at random here too.
                rng = random.Random(fewshot_seed or f"{self.seed}:{sid}")
                drawn = [d for d in rng.sample(self.fewshot_docs, self.shots + 1) if d is not original][: self.shots]
            if shot_order_seed is not None:
                random.Random(shot_order_seed).shuffle(drawn)
            parts = []
            for shot in drawn:
                s_text, s_choices, s_target = self.renderer.render(shot)
                answer = s_choices[s_target] if s_choices is not None else str(s_target)
                parts.append(s_text + self.target_delimiter + answer)
            prefix += self.fewshot_delimiter.join(parts) + self.fewshot_delimiter
        return Sample(id=sid, prompt=prefix + text, choices=choices, target=target, doc=data)

    def description_text(self, data: dict[str, Any], sid: str) -> str:
        if not self.description:
            return ""
        return self.renderer.template("description", self.description, _Doc(data, self.docs_by_id[sid].where))


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


def _metric_names(config: dict[str, Any], output_type: str, fail: Any) -> list[str]:
    known = MC_METRICS if output_type == "multiple_choice" else GEN_METRICS
    entries = config.get("metric_list")
    if entries is None:
        return list(DEFAULT_MC_METRICS if output_type == "multiple_choice" else known)
    if not isinstance(entries, list):
        raise fail("metric_list", "must be a list")
    names = []
    for entry in entries:
        metric = entry.get("metric") if isinstance(entry, dict) else entry
        if metric not in known:
            raise fail("metric_list", f"metric '{metric}' is not supported for {output_type} (use {', '.join(known)})")
        names.append(metric)
    return names


def _dataset_docs(
    path: Path, config: dict[str, Any], lines: dict[str, int], split_key: str = "test_split"
) -> list[_Doc]:
    fail = _field_error(path, lines)
    dataset_path = config.get("dataset_path")
    if dataset_path not in ("json", "csv"):
        raise fail(
            "dataset_path",
            f"'{dataset_path}' cannot be read offline; use 'json' or 'csv' with dataset_kwargs.data_files",
        )
    kwargs = config.get("dataset_kwargs") or {}
    files = kwargs.get("data_files") if isinstance(kwargs, dict) else None
    if files is None:
        raise fail("dataset_kwargs", "needs data_files (a path, a list of paths, or split → path)")
    split = config.get(split_key) or "train"
    if not isinstance(split, str):
        raise fail(split_key, f"must be a string, not {type(split).__name__}")
    if isinstance(files, dict):
        if split not in files:
            raise fail(split_key, f"split '{split}' is not in dataset_kwargs.data_files ({', '.join(map(str, files))})")
        files = files[split]
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise fail("dataset_kwargs", "data_files must be a string, a list of strings, or a mapping")
    docs: list[_Doc] = []
    for name in files:
        try:
            data_path = (path.parent / name).resolve() if not Path(name).is_absolute() else Path(name)
            exists = data_path.exists()
        except (OSError, ValueError, RuntimeError) as exc:  # a name too long, a NUL byte, a symlink loop
            raise fail("dataset_kwargs", f"data file '{name}' cannot be accessed ({_reason(exc)})") from None
        if not exists:
            raise fail("dataset_kwargs", f"data file '{name}' not found (relative to {path.parent})")
        if not data_path.is_file():  # a directory, a FIFO that would block forever
            raise fail("dataset_kwargs", f"data file '{name}' is not a regular file")
        docs.extend(_read_records(data_path))
    return docs


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
        if isinstance(spec, str) and spec in doc.data:
            return doc.data[spec]
        if isinstance(spec, str):
            return self.template(key, spec, doc)
        return spec

    def render(self, doc: _Doc) -> tuple[str, list[str] | None, int | str]:
        text = self._value("doc_to_text", doc)
        if not isinstance(text, str):
            raise self.fail("doc_to_text", f"gave {type(text).__name__}, not text, on {doc.where}")
        target = self._value("doc_to_target", doc)
        if self.output_type == "generate_until":
            if isinstance(target, list):
                target = target[0] if target else ""
            if isinstance(target, dict):  # a gold record (json_schema tasks): kept as JSON text
                return text, None, json.dumps(target, ensure_ascii=False)
            return text, None, str(target)
        choices = self._choices(doc)
        return text, choices, self._target_index(target, choices, doc)

    def _choices(self, doc: _Doc) -> list[str]:
        spec = self.config["doc_to_choice"]
        if spec is None:
            raise self.fail("doc_to_choice", f"no choices for {doc.where}")
        if isinstance(spec, list):
            choices: Any = [self.template("doc_to_choice", str(c), doc) for c in spec]
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
