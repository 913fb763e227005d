"""Hostile input: fuzzed and malicious task files, sandbox escapes, bad CLI arguments.

`load_task` either succeeds or raises TaskError with one line naming the file; it never
raises anything else and never runs code (templates that reach for os.system must not
create their marker file). Through the CLI the same inputs end with exit code 2 and one
'error: ...' line on stderr, no traceback.
"""

from __future__ import annotations

import copy
import json
import os
import re
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_openai import FakeOpenAI
from llmassay.cli import main
from llmassay.tasks.loader import Task, TaskError, load_task
from reliability_helpers import one_line

pytestmark = pytest.mark.reliability

CATEGORY = "hostile input"
# LLMASSAY_FUZZ_EXAMPLES=5000 explores further (with fresh random examples each run).
EXAMPLES = int(os.environ.get("LLMASSAY_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(
    max_examples=EXAMPLES or 300,
    deadline=None,
    derandomize=EXAMPLES is None,  # the same examples every run: counts are reproducible, never flaky
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALID_DOCS = [{"id": f"d{i}", "q": f"What is {i} + {i}?", "y": str(2 * i), "opts": ["p", "q"], "label": i % 2}
              for i in range(4)]
BASE_CONFIG = {
    "task": "fuzz",
    "dataset_path": "json",
    "dataset_kwargs": {"data_files": "d.jsonl"},
    "test_split": "train",
    "output_type": "generate_until",
    "doc_to_text": "Question: {{q}}\nAnswer:",
    "doc_to_target": "{{y}}",
    "num_fewshot": 1,
    "generation_kwargs": {"until": ["\n"], "max_gen_toks": 8},
    "metric_list": [{"metric": "exact_match"}],
}
MC_CONFIG = {**BASE_CONFIG, "output_type": "multiple_choice", "doc_to_choice": "opts", "doc_to_target": "label",
             "metric_list": [{"metric": "acc"}]}
FIELDS = [*BASE_CONFIG, "doc_to_choice", "description", "target_delimiter", "fewshot_delimiter", "fewshot_split",
          "dataset_kwargs.data_files", "generation_kwargs.max_gen_toks", "generation_kwargs.until"]
# Values that have broken loaders before: wrong types, bools posing as ints, unhashable
# keys, non-ASCII digits, control characters, names too long for the file system.
INTERESTING = [
    True, False, None, 0, -1, 10**9, 1.5, float("nan"), float("inf"), "", " ", "\n", "a\nb", "x\x00y", "\x1b[31m",
    "\u2028", "²", "٣", "Ⅷ", "t" * 300, "~nosuchuser/x", "/", ".", "..", "d.jsonl", "{{", "{{ q }}", "{{ nope }}",
    "{{ opts }}", "{{ [1] }}", "{{ '{[1]: 2}' }}", "[1, 2", "7" * 50, "Z", "q", "label", [], [1], ["a"], [[1]], {},
    {"a": 1}, {1: "d.jsonl"}, {"test": "d.jsonl"}, {"train": ["d.jsonl", 5]}, ["d.jsonl", "d.jsonl"],
]


def write_docs(directory: Path, docs: list[dict] | None = None) -> None:
    (directory / "d.jsonl").write_text("".join(json.dumps(d, default=str) + "\n" for d in (docs or VALID_DOCS)))


def check_outcome(path: Path, names: tuple[str, ...] = ()) -> str:
    """Load the task; 'ok' or 'TaskError'. Anything else fails the case."""
    try:
        task = load_task(str(path))
    except TaskError as exc:
        message = one_line(str(exc))
        assert any(n in message for n in (path.name, *names)), f"the error does not name the file: {message}"
        return "TaskError"
    assert isinstance(task, Task) and task.samples
    assert all(isinstance(s.prompt, str) for s in task.samples)
    assert len(task.content_hash) == 64
    return "ok"


# -- sandbox escapes ------------------------------------------------------------------------
ESCAPES = [
    "{{ cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ joiner.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ namespace.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ lipsum.__globals__['os'].system('touch MARKER') }}",
    "{{ lipsum.__globals__.__builtins__.__import__('os').system('touch MARKER') }}",
    "{{ (lipsum|attr('__globals__'))['os'].system('touch MARKER') }}",
    "{{ cycler.__init__.__globals__.__builtins__.exec(\"open('MARKER', 'w')\") }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__()[0] }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c('touch MARKER', shell=True) }}{% endfor %}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '%s'|format(cycler.__init__.__globals__) }}",
    "{% set x = cycler.__init__.__globals__.os %}{{ x.system('touch MARKER') }}",
    "{{ q.__class__.__init__.__globals__ }}",
    "{{ q.format_map.__self__.__class__.__subclasses__() }}",
    "{{ config.__class__.__init__.__globals__['os'].system('touch MARKER') }}",
    "{{ request.application.__globals__.__builtins__.__import__('os').system('touch MARKER') }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os.system('touch MARKER') }}",
    "{% extends 'MARKER' %}",
    "{{ range.__call__.__self__ }}",
    "{{ dict(a=1).items().__class__.__base__.__subclasses__() }}",
]


def escape_task(directory: Path, field: str, template: str) -> Path:
    config = {**BASE_CONFIG, "num_fewshot": 0}
    if field == "doc_to_choice":
        config.update(output_type="multiple_choice", doc_to_choice=["p", template], doc_to_target="label",
                      metric_list=[{"metric": "acc"}])
    else:
        config[field] = template
    path = directory / "t.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


@pytest.mark.parametrize("field", ["doc_to_text", "doc_to_target", "description", "doc_to_choice"])
def test_templates_cannot_escape_the_sandbox(tmp_path, reliability, field):
    marker = tmp_path / "pwned"
    write_docs(tmp_path)
    results = []
    for number, escape in enumerate(ESCAPES, start=1):
        short = escape.replace("touch MARKER", "touch …").replace("|", "¦")
        with reliability.case(CATEGORY, f"sandbox escape {number} in {field} `{short[:70]}`", soft=True) as case:
            template = escape.replace("MARKER", str(marker))
            result = check_outcome(escape_task(tmp_path, field, template))
            case.name += f": {result}, no code ran"
            assert not marker.exists(), f"{template} ran code"
            results.append(result)
    reliability.assert_all_passed()
    assert results.count("TaskError") >= len(ESCAPES) - 2  # the harmless ones may render


@pytest.mark.parametrize(
    "tag,text",
    [
        ("!!python/object/apply:os.system", "task: x\ndoc_to_text: !!python/object/apply:os.system ['touch MARKER']\n"
                                            "doc_to_target: y\n"),
        ("!!python/name:os.system", "task: x\ndoc_to_text: !!python/name:os.system\ndoc_to_target: y\n"),
        ("!function", "task: x\nprocess_results: !function utils.process_results\ndoc_to_text: a\ndoc_to_target: y\n"),
    ],
    ids=["python-object-apply", "python-name", "function-tag"],
)
def test_yaml_tags_cannot_run_code(tmp_path, reliability, tag, text):
    marker = tmp_path / "pwned"
    with reliability.case(CATEGORY, f"YAML tag {tag}: TaskError, no code ran"):
        path = tmp_path / "t.yaml"
        path.write_text(text.replace("MARKER", str(marker)))
        with pytest.raises(TaskError) as info:
            load_task(str(path))
        assert "t.yaml" in one_line(str(info.value))
        assert not marker.exists()


# -- fuzzing --------------------------------------------------------------------------------
any_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(),
    st.text(max_size=30),
    st.text(alphabet=string.printable, max_size=3000),
)
any_value = st.recursive(any_scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)
values = st.one_of(st.sampled_from(INTERESTING), any_value)


@st.composite
def task_configs(draw) -> dict:
    config = copy.deepcopy(draw(st.sampled_from([BASE_CONFIG, MC_CONFIG])))
    for key in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4, unique=True)):
        parent, _, child = key.partition(".")
        target = config
        if child:
            if not isinstance(config.get(parent), dict):
                config[parent] = {}
            target, key = config[parent], child
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(draw(values))  # INTERESTING's objects must stay unchanged
    return config


@st.composite
def data_docs(draw) -> list[dict]:
    docs = copy.deepcopy(VALID_DOCS)
    for doc in draw(st.lists(st.sampled_from(range(len(docs))), max_size=3)):
        docs[doc][draw(st.sampled_from(["id", "q", "y", "opts", "label", "other"]))] = copy.deepcopy(draw(values))
    return docs


def dump(config: dict) -> str:
    return yaml.safe_dump(config, allow_unicode=True, default_flow_style=None)


@FUZZ
@given(config=task_configs(), docs=data_docs())
def test_fuzzed_task_configs_load_or_fail_with_one_line(tmp_path, reliability, config, docs):
    with reliability.case(CATEGORY, "fuzzed task config (wrong types, missing fields, odd values)") as case:
        write_docs(tmp_path, docs)
        path = tmp_path / "t.yaml"
        try:
            path.write_text(dump(config))
        except ValueError:  # a float/int yaml cannot dump: not a case
            case.name += ": not writable as YAML"
            return
        case.name += f": {check_outcome(path, ('d.jsonl',))}"


@FUZZ
@given(text=st.text(max_size=400))
def test_arbitrary_text_as_yaml(tmp_path, reliability, text):
    with reliability.case(CATEGORY, "arbitrary text as a task YAML") as case:
        write_docs(tmp_path)
        path = tmp_path / "t.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        case.name += f": {check_outcome(path, ('d.jsonl',))}"


@FUZZ
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".yaml", ".jsonl", ".csv"]))
def test_arbitrary_bytes_as_task_or_data_file(tmp_path, reliability, data, suffix):
    with reliability.case(CATEGORY, f"arbitrary bytes (invalid UTF-8 included) as a {suffix} file") as case:
        write_docs(tmp_path)
        path = tmp_path / f"t{suffix}"
        path.write_bytes(data)
        case.name += f": {check_outcome(path, ('d.jsonl',))}"


@FUZZ
@given(lines=st.lists(st.one_of(
    any_value.map(lambda v: json.dumps(v, allow_nan=True)),
    st.text(max_size=40),
    st.sampled_from(['{"input": "a", "target": "b"}', '{"question": "q", "choices": ["a", "b"], "answer": 3}',
                     '{"question": "q", "choices": "not a list", "answer": 0}', "[" * 5000, '{"a": ' + "1" * 5000 + "}"]),
), min_size=1, max_size=5))
def test_fuzzed_jsonl_records(tmp_path, reliability, lines):
    with reliability.case(CATEGORY, "fuzzed JSONL records") as case:
        path = tmp_path / "t.jsonl"
        path.write_text("\n".join(lines) + "\n")
        case.name += f": {check_outcome(path)}"


FRAGMENTS = [
    "{{", "}}", "{%", "%}", "{#", "#}", "q", "y", "opts", ".", "|", "(", ")", "[", "]", "'", '"', ",", "=", " ",
    "__class__", "__globals__", "__init__", "__mro__", "__subclasses__()", "__builtins__", "__import__('os')",
    "os.system('touch MARKER')", "cycler", "joiner", "lipsum", "namespace", "self", "attr('__class__')",
    "for x in range(3)", "endfor", "if", "else", "endif", "set z = 1", "raise", "1/0", "10**10", "format",
    "join", "list", "int", "length", "map", "select", "reject", "default", "e", "safe", "truncate(-1)",
    "wordwrap(0)", "indent", "batch(0)", "slice(0)", "random", "groupby", "sum", "abs", "round", "\n",
]


@FUZZ
@given(pieces=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14),
       field=st.sampled_from(["doc_to_text", "doc_to_target", "description"]))
def test_fuzzed_templates_raise_task_errors_and_run_no_code(tmp_path, reliability, pieces, field):
    with reliability.case(CATEGORY, f"fuzzed Jinja2 template in {field}") as case:
        marker = tmp_path / "pwned"
        write_docs(tmp_path)
        template = "".join(pieces).replace("MARKER", str(marker))
        case.name += f": {check_outcome(escape_task(tmp_path, field, template))}, no code ran"
        assert not marker.exists()


@pytest.mark.parametrize(
    "name,content,expect",
    [
        ("5 MB question", json.dumps({"input": "x" * 5_000_000, "target": "y"}) + "\n", "ok"),
        ("100,000 records", "".join(json.dumps({"input": f"q{i}", "target": str(i)}) + "\n" for i in range(100_000)),
         "ok"),
        ("10,000-character field name", json.dumps({"input": "q", "target": "t", "k" * 10_000: 1}) + "\n", "ok"),
        ("CSV field over the csv module's limit", "input,target\n" + "x" * 200_000 + ",y\n", "TaskError"),
        ("JSON nested 100,000 deep", '{"input": "q", "target": ' + "[" * 100_000 + "}\n", "TaskError"),
        ("JSON int of 5,000 digits", '{"input": "q", "target": ' + "7" * 5000 + "}\n", "TaskError"),
        ("YAML int of 5,000 digits", "task: x\nnum_fewshot: " + "7" * 5000 + "\n", "TaskError"),
        ("YAML nested 5,000 deep", "task: " + "[" * 5000 + "\n", "TaskError"),
    ],
)
def test_huge_fields(tmp_path, reliability, name, content, expect):
    with reliability.case(CATEGORY, f"huge input: {name}: {expect}"):
        path = tmp_path / ("t.csv" if name.startswith("CSV") else "t.yaml" if name.startswith("YAML") else "t.jsonl")
        path.write_text(content)
        assert check_outcome(path) == expect


HEAD = "task: x\ndataset_path: json\ndataset_kwargs: {data_files: d.jsonl}\n"
GEN = HEAD + "output_type: generate_until\ndoc_to_text: '{{q}}'\ndoc_to_target: '{{y}}'\n"
MC = HEAD + "output_type: multiple_choice\ndoc_to_text: '{{q}}'\n"
# Task files that once escaped as another exception, or were silently accepted.
REGRESSIONS = [
    ("test_split is a list", GEN.replace("{data_files: d.jsonl}", "{data_files: {test: d.jsonl}}")
     + "test_split: [test]\n", r"t\.yaml:\d+: field 'test_split': must be a string, not list"),
    ("data file name of 300 characters", GEN.replace("d.jsonl", "d" * 300),
     r"field 'dataset_kwargs': data file 'd+' cannot be accessed \(File name too long\)"),
    ("data file name with a NUL byte", GEN.replace("d.jsonl", '"d\\0.jsonl"'), r"field 'dataset_kwargs': data file"),
    ("data file is a directory", GEN.replace("d.jsonl", "'.'"), r"field 'dataset_kwargs': data file '\.' is not a regular"),
    ("data file name with a newline (one line kept)", GEN.replace("d.jsonl", '"d\\n.jsonl"'),
     r"data file 'd\\n\.jsonl' not found"),
    ("data_files keyed by a number", GEN.replace("{data_files: d.jsonl}", "{data_files: {1: d.jsonl}}"),
     r"field 'test_split': split 'train' is not in dataset_kwargs\.data_files \(1\)"),
    ("target '²' (isdigit, but not an int)", MC + "doc_to_choice: [a, b]\ndoc_to_target: '²'\n",
     r"field 'doc_to_target': '²' is not a valid choice index"),
    ("num_fewshot: true", GEN + "num_fewshot: true\n", r"field 'num_fewshot': must be a non-negative integer"),
    ("max_gen_toks: true", GEN + "generation_kwargs: {max_gen_toks: true}\n", r"'max_gen_toks' must be a positive"),
    ("choices rendering an unhashable literal", MC + "doc_to_choice: \"{{ '{[1]: 2}' }}\"\ndoc_to_target: 0\n",
     r"field 'doc_to_choice': did not give a list"),
    ("self-referencing YAML anchor in until", GEN + "generation_kwargs: &g {until: [*g]}\n", r"'until' must be a string"),
    ("self-referencing YAML anchor in data_files", GEN.replace("{data_files: d.jsonl}", "&k {data_files: *k}"),
     r"field 'test_split': split 'train' is not in"),
    ("YAML timestamp out of range", GEN + "description: !!timestamp 2024-13-45\n", r"invalid YAML"),
]


@pytest.mark.parametrize("name,text,pattern", REGRESSIONS, ids=[r[0] for r in REGRESSIONS])
def test_hostile_task_file_regressions(tmp_path, reliability, name, text, pattern):
    with reliability.case(CATEGORY, f"task file with {name}: TaskError naming file and field"):
        write_docs(tmp_path)
        path = tmp_path / "t.yaml"
        path.write_text(text)
        with pytest.raises(TaskError) as info:
            load_task(str(path))
        message = one_line(str(info.value))
        assert "t.yaml" in message and re.search(pattern, message), message


# -- through the CLI ------------------------------------------------------------------------
def cli_error(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, f"exit code {code}"
    assert "Traceback" not in captured.err
    return one_line(captured.err.strip())


@settings(FUZZ, max_examples=EXAMPLES or 60)
@given(config=task_configs(), docs=data_docs())
def test_fuzzed_task_files_through_the_cli(tmp_path, capsys, reliability, config, docs):
    with reliability.case(CATEGORY, "fuzzed task file through the CLI: exit 2, one 'error:' line") as case:
        write_docs(tmp_path, docs)
        path = tmp_path / "t.yaml"
        try:
            path.write_text(dump(config))
        except ValueError:
            case.name += " (not writable as YAML)"
            return
        # An unknown backend fails after the task loaded, so valid tasks also end in exit 2.
        line = cli_error(capsys, ["run", "--model", "nosuch/x", "--tasks", str(path), "--output-path",
                                  str(tmp_path / "o")])
        assert line.startswith("error: ")
        assert "t.yaml" in line or "d.jsonl" in line or "unknown backend 'nosuch'" in line, line


@pytest.fixture(scope="module")
def fake_server():
    with FakeOpenAI() as server:
        yield server


# Appended to a valid command (openai/fake against the fake server, mmlu_sample, --limit 2);
# argparse keeps the last value of a repeated option.
BAD_ARGS = [
    ("--chunk-size 0", ["--chunk-size", "0"], "--chunk-size must be a positive integer"),
    ("--chunk-size -3", ["--chunk-size", "-3"], "--chunk-size must be a positive integer"),
    ("--limit 0", ["--limit", "0"], "--limit must be a positive integer"),
    ("--limit -1", ["--limit", "-1"], "--limit must be a positive integer"),
    ("--temperature nan", ["--temperature", "nan"], "--temperature must be a finite number >= 0"),
    ("--temperature -1", ["--temperature", "-1"], "--temperature must be a finite number >= 0"),
    ("--tasks ,", ["--tasks", ","], "--tasks: nothing given"),
    ("--probe ,", ["--probe", ","], "--probe: nothing given"),
    ("--probe nosuch", ["--probe", "nosuch"], "unknown probe 'nosuch'"),
    ("--perturbations nosuch", ["--probe", "brittleness", "--perturbations", "nosuch"], "unknown perturbation"),
    ("--scoring nosuch", ["--probe", "brittleness", "--scoring", "nosuch"], "-P brittleness.scoring: nosuch; choose from acc"),
    ("--metrics bleu", ["--metrics", "bleu"], "--metrics: bleu not available"),
    ("--num-fewshot -1", ["--num-fewshot", "-1"], "field 'num_fewshot': must be a non-negative integer"),
    ("--num-fewshot 100000", ["--num-fewshot", "100000"], "100000 shots requested"),
    ("--model-args garbage", ["--model-args", "garbage"], "'garbage' is not of the form key=value"),
    ("--model-args timeout=abc", ["--model-args", "timeout=abc"], "--model-args timeout=abc: openai expects a number for timeout"),
    ("--model-args nosuch=1", ["--model-args", "nosuch=1"], "openai: unknown model args: nosuch"),
    ("--tasks no_such_task", ["--tasks", "no_such_task"], "not a bundled task"),
    ("--tasks (300-character name)", ["--tasks", "t" * 300 + ".yaml"], "cannot access (File name too long)"),
    ("--tasks ~nosuchuser/t.yaml", ["--tasks", "~nosuchuser/t.yaml"], "cannot access"),
    ("--tasks a directory", ["--tasks", "/"], "unsupported task file type"),
    ("--model nosuch/x", ["--model", "nosuch/x"], "unknown backend 'nosuch'"),
    ("--model without a kind", ["--model", "smollm2"], "expected KIND/NAME"),
    ("--model-args n_ctx=abc (llamacpp)", ["--model", "llamacpp/smollm2-135m", "--model-args", "n_ctx=abc"],
     "--model-args n_ctx=abc: llamacpp expects an integer for n_ctx"),
    pytest.param("--model llamacpp/ a file that is not a GGUF", ["--model", "llamacpp/GARBAGE", "--model-args", ""],
                 "has a corrupt GGUF header (GGUF version", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,args,pattern", BAD_ARGS, ids=[getattr(b, "values", b)[0] for b in BAD_ARGS])
def test_bad_cli_arguments_are_one_line_errors(fake_server, tmp_path, capsys, reliability, name, args, pattern):
    with reliability.case(CATEGORY, f"CLI argument {name}: exit 2, one 'error:' line"):
        garbage = tmp_path / "garbage.gguf"
        garbage.write_bytes(b"GGUF? no: just bytes " * 10)
        # --model is repeatable (several models, one matrix): a case naming its own model replaces the default
        default = [] if "--model" in args else ["--model", "openai/fake", "--model-args",
                                                 f"base_url={fake_server.base_url},max_retries=0"]
        argv = ["run", *default, "--tasks", "mmlu_sample", "--limit", "2", "--output-path", str(tmp_path / "o"),
                *[a.replace("GARBAGE", str(garbage)) for a in args]]
        line = cli_error(capsys, argv)
        assert line.startswith("error: ") and pattern in line, line
