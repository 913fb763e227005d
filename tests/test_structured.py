"""The structured-output probe without a model: parsers, the failure taxonomy (one test per
class, on hand-written broken outputs), field accuracy, the task's json_schema field, the
bundled json_sample set, and every mode end to end on scripted outputs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from fake_openai import FakeOpenAI
from llmassay.backends._gbnf import schema_to_gbnf
from llmassay.backends.openai_compat import OpenAIBackend
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import PROBES, ProbeConfig, run_probe
from llmassay.probes._json import (
    TAXONOMY,
    field_accuracy,
    parse_extract,
    parse_repair,
    parse_strict,
    schema_classes,
    schema_errors,
    text_classes,
)
from llmassay.probes.structured import StructuredOptions, StructuredProbe, outline
from llmassay.report.section import SectionContext
from llmassay.report.sections import structured as structured_section
from llmassay.report.table import details_tables
from llmassay.tasks.loader import TaskError, load_task
from llmassay.types import GenerateRequest, Generation, LlmassayError

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "color": {"type": "string", "enum": ["red", "blue"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def classes(text: str, finish_reason: str = "stop", parser=parse_strict) -> list[str]:
    """Text classes plus the schema classes of what `parser` reads."""
    parsed = parser(text)
    errors = schema_errors(parsed.value, SCHEMA) if parsed.ok else []
    return sorted(set(text_classes(text, finish_reason)) | set(schema_classes(errors)))


# -- parsers --------------------------------------------------------------------------
def test_strict_parses_only_a_whole_json_text():
    assert parse_strict('{"name": "Ann", "age": 3}').value == {"name": "Ann", "age": 3}
    assert not parse_strict('Sure: {"name": "Ann"}').ok
    assert not parse_strict('{"x": NaN}').ok  # not JSON, although Python's json accepts it
    assert parse_strict("{'a': 1}").error.startswith("Expecting property name enclosed in double quotes")


def test_extract_takes_the_first_json_value_out_of_fences_and_prose():
    text = 'Here you go:\n```json\n{"name": "Ann", "age": 3}\n```\nHope that helps {"no": 1}'
    found = parse_extract(text)
    assert found.value == {"name": "Ann", "age": 3}
    assert text[found.span[0] : found.span[1]] == '{"name": "Ann", "age": 3}'
    assert parse_extract('{broken [1, 2] {"a": 1}').value == [1, 2]  # the first value that decodes
    assert not parse_extract("no json here").ok


def test_repair_fixes_quotes_commas_and_truncation():
    assert parse_repair("{'name': 'Ann', 'age': 3,}").value == {"name": "Ann", "age": 3}
    assert parse_repair('{"name": "Ann", "age": 3').value == {"name": "Ann", "age": 3}
    assert parse_repair('```json\n{"name": "Ann"}\n```').value == {"name": "Ann"}
    assert not parse_repair("I cannot help with that.").ok


# -- the taxonomy: one hand-written output per class ---------------------------------
def test_taxonomy_empty():
    assert classes("  \n") == ["empty"]


def test_taxonomy_no_json():
    assert classes("The person is Ann, aged three.") == ["no_json"]


def test_taxonomy_truncated():
    assert classes('{"name": "Ann", "age": 3, "tags": ["a", "b', "length") == ["truncated"]
    assert classes('{"name": "Ann", "age"') == ["truncated"]  # cut by a stop string: ends mid-value


def test_truncated_outer_value_is_not_mistaken_for_its_inner_objects():
    text = '{"name": "Ann", "items": [{"product": "pen", "quantity": 1}, {"product": "pen", "quantity": '
    assert not parse_extract(text).ok  # the inner objects are not the answer
    assert classes(text, "length") == ["truncated"]
    assert parse_extract('Note {see below}: {"name": "Ann", "age": 3}').value == {"name": "Ann", "age": 3}


def test_taxonomy_prose():
    assert classes('The answer is {"name": "Ann", "age": 3} as requested.') == ["prose"]


def test_taxonomy_code_fence():
    assert classes('```json\n{"name": "Ann", "age": 3}\n```') == ["code_fence"]


def test_taxonomy_single_quotes_and_trailing_commas():
    assert classes("{'name': 'Ann', 'age': 3}") == ["quotes_commas"]
    assert classes('{"name": "Ann", "age": 3,}') == ["quotes_commas"]


def test_taxonomy_other_syntax():
    assert classes('{"name": "Ann" "age": 3}') == ["other_syntax"]


def test_taxonomy_missing_required():
    assert classes('{"name": "Ann"}') == ["missing_required"]


def test_taxonomy_wrong_type():
    assert classes('{"name": "Ann", "age": "three"}') == ["wrong_type"]


def test_taxonomy_extra_keys():
    assert classes('{"name": "Ann", "age": 3, "city": "Rome"}') == ["extra_keys"]


def test_taxonomy_bad_value():
    assert classes('{"name": "Ann", "age": 3, "color": "green"}') == ["bad_value"]


def test_taxonomy_other_schema():
    assert classes('{"name": "Ann", "age": 3, "tags": []}') == ["other_schema"]


def test_taxonomy_classes_combine_and_are_all_known():
    found = classes("Sure!\n```\n{'name': 'Ann'}\n```", parser=parse_repair)
    assert found == ["code_fence", "missing_required", "prose", "quotes_commas"]
    assert set(found) <= set(TAXONOMY)


# -- field accuracy -------------------------------------------------------------------
def test_field_accuracy_counts_gold_leaves_after_normalisation():
    gold = {"name": "Ann Lee", "age": 30, "tags": ["a", "b"], "ok": True}
    assert field_accuracy(gold, gold) == 1.0
    assert field_accuracy({"name": " ann lee.", "age": 30.0, "tags": ["A", "x"], "ok": True, "extra": 1}, gold) == 0.8
    assert field_accuracy({"name": "Ann Lee", "age": "30"}, gold) == 0.4  # "30" and 30 are the same number
    assert field_accuracy({"ok": "True"}, gold) == 0.2  # values, not types: schema validity checks types
    assert field_accuracy({"ok": False, "tags": "a"}, gold) == 0.0
    assert field_accuracy([], gold) == 0.0


# -- task files -----------------------------------------------------------------------
def test_json_sample_has_60_items_whose_gold_validates():
    task = load_task("json_sample")
    assert len(task.samples) == 60
    kinds = {}
    for sample in task.samples:
        schema = task.json_schema(sample.id)
        gold = json.loads(sample.target)
        jsonschema.validators.validator_for(schema)(schema).validate(gold)
        kinds[schema["title"]] = kinds.get(schema["title"], 0) + 1
        assert sample.prompt.startswith("Text: ") and sample.prompt.endswith("\nJSON:")
    assert kinds == {"person": 8, "event": 8, "product": 8, "address": 7, "order": 7, "review": 8, "team": 7, "book": 7}
    types = {json.dumps(s["type"]) for sch in task.json_schemas.values() for s in sch["properties"].values()}
    assert {'"string"', '"integer"', '"number"', '"boolean"', '"array"'} <= types
    assert (Path(task.source).parent / "ATTRIBUTION.md").read_text().count("CC0") >= 1


def write_task(tmp_path: Path, json_schema: str, records: list[dict] | None = None) -> Path:
    records = records or [{"id": "a", "text": "Ann is 3.", "gold": {"name": "Ann", "age": 3}}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    yaml_path = tmp_path / "t.yaml"
    yaml_path.write_text(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files: d.jsonl\noutput_type: generate_until\n"
        f"doc_to_text: \"Text: {{{{text}}}}\\nJSON:\"\ndoc_to_target: gold\n{json_schema}\n"
    )
    return yaml_path


def test_json_schema_inline_file_or_field(tmp_path):
    inline = load_task(str(write_task(tmp_path, "json_schema: {type: object, required: [name]}")))
    assert inline.json_schema("a") == {"type": "object", "required": ["name"]}
    assert json.loads(inline.samples[0].target) == {"name": "Ann", "age": 3}
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    assert load_task(str(write_task(tmp_path, "json_schema: s.json"))).json_schema("a") == SCHEMA
    rec = [{"id": "a", "sch": "s.json", "text": "x", "gold": {}}, {"id": "b", "sch": {"type": "array"}, "text": "y", "gold": []}]
    per_item = load_task(str(write_task(tmp_path, "json_schema: sch", rec)))
    assert per_item.json_schema("a") == SCHEMA and per_item.json_schema("b") == {"type": "array"}
    no_schema = load_task(str(write_task(tmp_path, "")))
    with pytest.raises(TaskError, match="has no 'json_schema' for item 'a'"):
        no_schema.json_schema("a")


@pytest.mark.parametrize(
    "line, pattern",
    [
        ("json_schema: {type: objekt}", r"t\.yaml:8: field 'json_schema': .*not a valid JSON schema \('objekt' is not valid"),
        ("json_schema: missing.json", r"t\.yaml:8: field 'json_schema': .*cannot read schema file .*missing\.json"),
        ("json_schema: nofield", r"t\.yaml:8: field 'json_schema': document field 'nofield' missing on .*d\.jsonl:1"),
        ("json_schema: 3", r"t\.yaml:8: field 'json_schema': must be a mapping"),
    ],
)
def test_bad_json_schema_is_one_line_naming_file_line_field(tmp_path, line, pattern):
    with pytest.raises(TaskError, match=pattern) as info:
        load_task(str(write_task(tmp_path, line)))
    assert "\n" not in str(info.value)


def test_schema_file_that_is_not_json(tmp_path):
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(TaskError, match=r"t\.yaml:8: field 'json_schema': .*bad\.json is not valid JSON"):
        load_task(str(write_task(tmp_path, "json_schema: bad.json")))


# -- options --------------------------------------------------------------------------
def test_options_are_checked():
    opts = StructuredOptions.from_config(ProbeConfig(options=(("modes", "retry,strict"), ("max_retries", 1))))
    assert opts.modes == ("retry", "strict") and opts.max_retries == 1 and opts.prompt_format == "chat"
    for options, pattern in [
        ((("modes", "strict,magic"),), r"^-P structured\.modes: magic; choose from strict, extract"),
        ((("max_retries", -1),), r"^-P structured\.max_retries: -1 must be >= 0$"),
        ((("max_retries", "two"),), r"^-P structured\.max_retries: 'two' is not an integer$"),
        ((("instructions", 9),), r"^-P structured\.instructions: 9 is not an integer from 0 to 5$"),
        ((("prompt_format", "xml"),), r"^-P structured\.prompt_format: xml; choose from chat, raw$"),
        ((("mode", "strict"),), r"^-P structured\.mode: probe 'structured' has no option 'mode' \(its options: modes,"),
    ]:
        with pytest.raises(LlmassayError, match=pattern):
            StructuredOptions.from_config(ProbeConfig(options=options))


# -- every mode end to end on scripted outputs ----------------------------------------
class Scripted:
    """Answers by the request's shape: a free answer per item, a follow-up answer after
    feedback, and a constrained answer when a schema is sent. Records what it was asked."""

    name = "scripted"

    def __init__(self, free: dict[str, str], fixed: dict[str, str], constrained: dict[str, str]) -> None:
        self.free, self.fixed, self.constrained = free, fixed, constrained
        self.asked: list[GenerateRequest] = []

    def generate(self, reqs):
        out = []
        for r in reqs:
            self.asked.append(r)
            first = r.messages[0][1] if r.messages else r.prompt
            key = first.rsplit("Text: ", 1)[1].split("\n")[0]  # the item, after the one-shot demo
            if r.json_schema is not None:
                text = self.constrained[key]
            elif (r.messages and len(r.messages) > 1) or (r.prompt and "Reply with only" in r.prompt):
                text = self.fixed[key]
            else:
                text = self.free[key]
            out.append(Generation(text, 10, len(text), "length" if text.endswith("[") else "stop", 0.5))
        return out

    def loglikelihood(self, reqs):
        raise AssertionError("not used")

    def tokenize(self, text):
        return list(text)

    def fingerprint(self):
        return {"backend": "scripted"}


RECORDS = [
    {"id": "ann", "text": "Ann", "gold": {"name": "Ann", "age": 3}},
    {"id": "bob", "text": "Bob", "gold": {"name": "Bob", "age": 40}},
    {"id": "cat", "text": "Cat", "gold": {"name": "Cat", "age": 7}},
    {"id": "dan", "text": "Dan", "gold": {"name": "Dan", "age": 5}},
]
FREE = {
    "Ann": '{"name": "Ann", "age": 3}',  # valid everywhere
    "Bob": '```json\n{"name": "Bob", "age": 40}\n```',  # fenced: strict fails, extract and repair pass
    "Cat": "{'name': 'Cat', 'age': 7,}",  # quotes and commas: only repair passes
    "Dan": '{"name": "Dan", "age": "five"}',  # wrong type: every parser reads it, no schema passes
}
FIXED = {"Cat": '{"name": "Cat", "age": 7}', "Dan": '{"name": "Dan", "age": 5}'}
CONSTRAINED = {k: json.dumps(r["gold"]) for k, r in zip(FREE, RECORDS)} | {"Dan": '{"name": "Dan", "age": 6}'}


def run_scripted(tmp_path: Path, **options):
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    task = load_task(str(write_task(tmp_path, "json_schema: s.json", RECORDS)))
    backend = Scripted(FREE, FIXED, CONSTRAINED)
    cfg = ProbeConfig(options=tuple(sorted({"instructions": 0, **options}.items())))
    result = run_probe(StructuredProbe(), task, Engine(backend), cfg, SampleLog(tmp_path / "log.jsonl"))
    return result, backend


def test_every_mode_on_scripted_outputs(tmp_path):
    result, backend = run_scripted(tmp_path, max_retries=2)
    m = {k: v.value for k, v in result.metrics.items()}
    assert (m["parse_valid[strict]"], m["schema_valid[strict]"]) == (0.5, 0.25)  # Ann, Dan parse; Ann valid
    assert (m["parse_valid[extract]"], m["schema_valid[extract]"]) == (0.75, 0.5)
    assert (m["parse_valid[repair]"], m["schema_valid[repair]"]) == (1.0, 0.75)
    assert (m["parse_valid[retry]"], m["schema_valid[retry]"], m["retries[retry]"]) == (1.0, 1.0, 0.5)
    assert (m["schema_valid[constrained]"], m["field_acc[constrained]"]) == (1.0, 0.875)  # Dan: age 6, not 5
    assert m["schema_valid_gain_vs_strict[repair]"] == 0.5 and m["schema_valid_gain_vs_strict[retry]"] == 0.75
    assert "schema_valid_gain_vs_strict[strict]" not in m
    assert m["field_acc[strict]"] == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    assert m["field_acc[repair]"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    # Cost: strict/extract/repair share one generation; retry adds one follow-up for Cat and Dan.
    assert m["tokens[strict]"] == m["tokens[repair]"] == pytest.approx(sum(map(len, FREE.values())) / 4)
    assert m["tokens[retry]"] == pytest.approx((sum(map(len, FREE.values())) + sum(map(len, FIXED.values()))) / 4)
    assert m["latency_s[retry]"] == pytest.approx(0.75) and m["latency_s[strict]"] == pytest.approx(0.5)
    assert result.metrics["schema_valid[strict]"].ci_low < 0.25 < result.metrics["schema_valid[strict]"].ci_high
    # 4 free + 2 follow-ups + 4 constrained: the three free-text modes asked once.
    assert len(backend.asked) == 10
    followup = next(r for r in backend.asked if r.messages and len(r.messages) == 3 and "Text: Dan" in r.messages[0][1])
    assert followup.messages[1] == ("assistant", FREE["Dan"])
    assert followup.messages[2][1] == (
        "Your JSON does not match the schema: age: 'five' is not of type 'integer'. "
        "Reply with only the corrected JSON object."
    )
    constrained = [r for r in backend.asked if r.json_schema]
    assert {json.loads(r.json_schema)["required"][1] for r in constrained} == {"age"}
    # Failure taxonomy: classes of all outputs and of each mode's failures.
    tax = {row["class"]: row for row in result.details["taxonomy"]}
    assert tax["code_fence"]["outputs"] == 1 and tax["code_fence"]["failed[strict]"] == 1
    assert tax["code_fence"]["failed[extract]"] == 0
    assert tax["quotes_commas"]["failed[extract]"] == 1 and tax["quotes_commas"]["failed[repair]"] == 0
    assert tax["wrong_type"]["failed[repair]"] == 1 and tax["wrong_type"]["failed[retry]"] == 0
    assert [row["mode"] for row in result.details["modes"]] == ["strict", "extract", "repair", "retry", "constrained"]
    rows = result.samples
    assert rows[3]["modes"]["retry"]["attempts"] == [FREE["Dan"], FIXED["Dan"]]
    json.dumps(rows)  # JSON-able


def test_retry_stops_at_max_retries_and_raw_prompts_carry_the_feedback(tmp_path):
    result, backend = run_scripted(tmp_path, modes="retry", max_retries=0, prompt_format="raw")
    assert result.metrics["schema_valid[retry]"].value == 0.5 and result.metrics["retries[retry]"].value == 0
    assert set(result.samples[0]["modes"]) == {"retry"}
    (tmp_path / "b").mkdir()
    result, backend = run_scripted(tmp_path / "b", modes="retry", max_retries=3, prompt_format="raw")
    followups = [r for r in backend.asked if "Reply with only" in r.prompt]
    assert len(followups) == 2 and all(r.messages is None for r in backend.asked)  # fixed after one retry each
    cat = next(r for r in followups if "\n\nText: Cat\n" in r.prompt)
    assert cat.prompt.endswith(FREE["Cat"] + "\n\nYour answer is not valid JSON (Expecting property name enclosed "
                               "in double quotes at line 1 column 2). Reply with only the corrected JSON object.\nJSON:")


def test_instruction_wordings_are_scored_and_tabled(tmp_path):
    (tmp_path / "b").mkdir()
    result, backend = run_scripted(tmp_path / "b", modes="strict,extract", instructions=2)
    assert [r["wording"] for r in result.details["instructions"]] == ["0", "1", "2"]
    assert result.metrics["instruction_parse_valid[1]"].value == 0.5  # the scripted model ignores wording
    assert result.metrics["instruction_schema_valid[2]"].value == 0.5
    assert result.metrics["instruction_spread"].value == 0.0
    prompts = {r.messages[0][1].split("\n")[0] for r in backend.asked}
    assert len(prompts) == 3
    for row in result.samples:  # each alternate wording's prompt is kept beside its answer
        kept = [row["prompt"], row["instructions"]["1"]["prompt"], row["instructions"]["2"]["prompt"]]
        assert len({str(p) for p in kept}) == 3 and "prompt" not in row["instructions"]["0"]
    results = {"details": {"t": {"structured": result.details}}}
    titles = [t.title for t in details_tables(results)]
    assert titles == ["t · structured · modes", "t · structured · taxonomy", "t · structured · instructions"]


def test_constrained_through_an_openai_compatible_server(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    task = load_task(str(write_task(tmp_path, "json_schema: s.json", RECORDS[:1])))
    cfg = ProbeConfig(options=(("instructions", 0), ("modes", "constrained")))
    with FakeOpenAI() as fake:
        fake.chat_content = '{"name": "Ann", "age": 3}'
        engine = Engine(OpenAIBackend("toy", base_url=fake.base_url))
        result = run_probe(StructuredProbe(), task, engine, cfg, SampleLog(tmp_path / "log.jsonl"))
        sent = fake.requests[-1]["body"]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA, "strict": True}}
    assert result.metrics["schema_valid[constrained]"].value == 1.0
    # A raw prompt cannot carry response_format: one clear line, naming the way out.
    raw = ProbeConfig(options=(("instructions", 0), ("modes", "constrained"), ("prompt_format", "raw")))
    with FakeOpenAI() as fake, pytest.raises(LlmassayError) as info:
        engine = Engine(OpenAIBackend("toy", base_url=fake.base_url))
        run_probe(StructuredProbe(), task, engine, raw, SampleLog(tmp_path / "log2.jsonl"))
    assert "json_schema needs a chat request" in str(info.value) and "--modes" in str(info.value)


def test_openai_falls_back_to_json_object_then_says_clearly_when_unsupported(tmp_path):
    req = GenerateRequest(messages=(("user", "Ann is 3"),), json_schema=GenerateRequest.schema_string(SCHEMA))
    with FakeOpenAI() as fake:
        fake.response_formats = ("json_object",)  # as llama-cpp-python's server
        fake.chat_content = '{"name": "Ann", "age": 3}'
        backend = OpenAIBackend("toy", base_url=fake.base_url, concurrency=1)
        assert backend.generate([req, req])[1].text == fake.chat_content
        sent = [r["body"]["response_format"]["type"] for r in fake.requests]
        assert sent == ["json_schema", "json_object", "json_object"]  # the refusal is remembered
        assert fake.requests[1]["body"]["response_format"]["schema"] == SCHEMA
    with FakeOpenAI() as fake:
        fake.response_formats = ()
        with pytest.raises(LlmassayError) as info:
            OpenAIBackend("toy", base_url=fake.base_url).generate([req])
    assert str(info.value) == (
        f"openai: {fake.base_url} does not support schema-constrained output (response_format "
        "json_schema: HTTP 422: Unprocessable Entity; json_object: HTTP 422: Unprocessable Entity)"
    )


def test_a_task_without_gold_records_is_refused(tmp_path):
    path = write_task(tmp_path, "json_schema: {type: object}", [{"id": "a", "text": "x", "gold": "not json"}])
    with pytest.raises(LlmassayError, match="item 'a': doc_to_target must give the gold JSON record"):
        run_probe(StructuredProbe(), load_task(str(path)), Engine(Scripted({}, {}, {})), ProbeConfig(),
                  SampleLog(tmp_path / "log.jsonl"))


def test_prompt_shows_the_schema_outline_and_a_same_schema_demo(tmp_path):
    result, backend = run_scripted(tmp_path, modes="strict")
    first = backend.asked[0].messages[0][1]
    assert first == (
        "Extract the information in the text as a JSON object with these fields (? = optional):\n"
        '{"name": string, "age": integer, "color"?: "red" | "blue", "tags"?: [string, ...]}\n'
        "Answer with the JSON object only.\n\n"
        'Text: Bob\nJSON: {"name": "Bob", "age": 40}\n\n'  # the first other item with the same schema
        "Text: Ann\nJSON:"
    )
    assert result.samples[0]["prompt"] == first
    task = load_task("json_sample")
    event = task.json_schema("event_1")
    assert outline(event).startswith('{"title": string, "date": string (YYYY-MM-DD), "location": string')


def test_the_probe_is_registered():
    assert PROBES["structured"] is StructuredProbe


def test_cli_passes_the_structured_options(monkeypatch):
    import llmassay.cli as cli
    import llmassay.evaluation

    seen = {}

    def fake_evaluate(cfg):
        seen["cfg"] = cfg
        raise LlmassayError("stop here")

    monkeypatch.setattr(llmassay.evaluation, "evaluate", fake_evaluate)
    argv = ["run", "--model", "llamacpp/smollm2-135m", "--tasks", "json_sample", "--probe", "structured",
            "--modes", "strict,constrained", "--max-retries", "3", "--instructions", "0", "--prompt-format", "raw"]
    assert cli.main(argv) == 2
    # the old flags are shortcuts of -P structured.<key>
    assert seen["cfg"].probe_options == {
        "structured.modes": "strict,constrained", "structured.max_retries": "3", "structured.instructions": "0",
        "structured.prompt_format": "raw",
    }
    assert cli.main([*argv[:7], "-P", "structured.max_retries=3", "-P", "structured.modes=strict"]) == 2
    assert seen["cfg"].probe_options == {"structured.max_retries": "3", "structured.modes": "strict"}


# -- format checking and one rule for "valid JSON", end to end -------------------------
DATED = {
    "type": "object",
    "properties": {"email": {"type": "string", "format": "email"}, "born": {"type": "string", "format": "date"}},
    "required": ["email", "born"],
}
DATED_RECORDS = [
    {"id": k, "text": k, "gold": {"email": f"{k.lower()}@example.com", "born": "1990-05-01"}}
    for k in ("Ann", "Bob", "Cat", "Dan")
]
DATED_FREE = {
    "Ann": '{"email": "ann@example.com", "born": "1990-05-01"}',  # valid
    "Bob": '{"email": "bob at example.com", "born": "1990-05-01"}',  # not an email
    "Cat": '{"email": "cat@example.com", "born": "1990-13-40"}',  # not a date
    "Dan": "null",  # JSON, but no record
}


def test_formats_are_enforced_and_a_bare_null_is_invalid_in_every_mode(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps(DATED))
    task = load_task(str(write_task(tmp_path, "json_schema: s.json", DATED_RECORDS)))
    cfg = ProbeConfig(options=(("instructions", 0), ("modes", "strict,extract,repair")))
    result = run_probe(StructuredProbe(), task, Engine(Scripted(DATED_FREE, {}, {})), cfg, SampleLog(tmp_path / "l.jsonl"))
    m = {k: v.value for k, v in result.metrics.items()}
    for mode in ("strict", "extract", "repair"):
        assert (m[f"parse_valid[{mode}]"], m[f"schema_valid[{mode}]"]) == (0.75, 0.25), mode
    rows = {r["id"]: r["modes"]["strict"] for r in result.samples}
    assert rows["Bob"]["classes"] == ["bad_value"] and rows["Bob"]["schema_errors"][0].startswith("email: ")
    assert rows["Cat"]["classes"] == ["bad_value"] and rows["Cat"]["schema_errors"][0].startswith("born: ")
    assert rows["Dan"]["parse_error"] == "a bare JSON null, not an object or array"
    assert rows["Dan"]["classes"] == ["no_json"]
    taxonomy = {e["class"]: e for e in result.details["taxonomy"]}
    assert taxonomy["bad_value"]["failed[strict]"] == 2


def test_a_schema_the_backend_refuses_names_the_item(tmp_path):
    """The backend names the schema (by title); the probe says which item carries it."""
    titled = {**SCHEMA, "title": "person"}
    (tmp_path / "s.json").write_text(json.dumps(titled))
    task = load_task(str(write_task(tmp_path, "json_schema: s.json", RECORDS[:2])))

    class Refuses(Scripted):
        def generate(self, reqs):
            if any(r.json_schema for r in reqs):
                raise LlmassayError(f"{GenerateRequest.schema_label(reqs[0].json_schema)}: refused by the server")
            return super().generate(reqs)

    cfg = ProbeConfig(options=(("instructions", 0), ("modes", "constrained")))
    with pytest.raises(LlmassayError) as info:
        run_probe(StructuredProbe(), task, Engine(Refuses(FREE, FIXED, CONSTRAINED)), cfg, SampleLog(tmp_path / "l.jsonl"))
    assert str(info.value) == (f"{task.source}: item 'ann': JSON schema 'person': refused by the server "
                               "(constrained mode; leave it out with --modes)")


# -- a keyword no grammar enforces relaxes the item, it does not end the run ----------------
PRICED = {
    "title": "line",
    "type": "object",
    "properties": {"name": {"type": "string"}, "price": {"type": "number", "minimum": 0, "multipleOf": 0.5},
                   "sku": {"type": "string", "pattern": "^(?=S)S[0-9]+$"}},
    "required": ["name", "price"],
    "additionalProperties": False,
}
PRICED_RECORDS = [
    {"id": "ann", "text": "Ann", "sch": "priced.json", "gold": {"name": "Ann", "price": 2.5}},
    {"id": "bob", "text": "Bob", "sch": "priced.json", "gold": {"name": "Bob", "price": 3}},
    {"id": "cat", "text": "Cat", "sch": "s.json", "gold": {"name": "Cat", "age": 7}},
]
PRICED_ANSWERS = {
    "Ann": '{"name": "Ann", "price": 2.5}',
    "Bob": '{"name": "Bob", "price": 3.2}',  # not a multiple of 0.5: what the grammar could not stop
    "Cat": '{"name": "Cat", "age": 7}',
}


def test_a_relaxed_keyword_counts_the_item_constraint_relaxed_and_the_run_goes_on(tmp_path):
    (tmp_path / "priced.json").write_text(json.dumps(PRICED))
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    task = load_task(str(write_task(tmp_path, "json_schema: sch", PRICED_RECORDS)))
    class Grammared(Scripted):
        """Compiles each schema it is sent as the llama.cpp backend does (which refuses a
        keyword it would have to relax): before the fix the run ended here."""

        def generate(self, reqs):
            for r in reqs:
                if r.json_schema is not None:
                    schema_to_gbnf(r.json_schema)
            return super().generate(reqs)

    backend = Grammared(PRICED_ANSWERS, {}, PRICED_ANSWERS)
    cfg = ProbeConfig(options=(("instructions", 0), ("modes", "strict,constrained")))
    result = run_probe(StructuredProbe(), task, Engine(backend), cfg, SampleLog(tmp_path / "l.jsonl"))
    rows = {r["id"]: r["modes"]["constrained"] for r in result.samples}
    # Every item was decoded and judged; the relaxed ones against the full schema.
    assert [rows[k]["constraint_relaxed"] for k in ("ann", "bob", "cat")] == [True, True, False]
    assert rows["ann"]["schema_valid"] and not rows["bob"]["schema_valid"] and rows["cat"]["schema_valid"]
    assert rows["bob"]["schema_errors"] == ["price: 3.2 is not a multiple of 0.5"]
    assert [(r["keyword"], r["at"]) for r in rows["ann"]["relaxed"]] == [("multipleOf", "price"), ("pattern", "sku")]
    # The decoding schema leaves out what the grammar cannot enforce and keeps the rest.
    sent = {json.loads(r.json_schema).get("title"): json.loads(r.json_schema) for r in backend.asked if r.json_schema}
    assert sent["line"]["properties"]["price"] == {"type": "number", "minimum": 0}
    assert sent["line"]["properties"]["sku"] == {"type": "string"}
    assert [r.json_schema for r in backend.asked if r.json_schema and "age" in r.json_schema] == [
        GenerateRequest.schema_string(SCHEMA)]  # nothing relaxed: the full schema, as before
    m = result.metrics
    assert m["constraint_relaxed[constrained]"].value == pytest.approx(2 / 3)
    assert m["schema_valid[constrained]"].value == pytest.approx(2 / 3) and m["schema_valid[constrained]"].n == 3
    table = {row["mode"]: row for row in result.details["modes"]}
    assert table["constrained"]["constraint_relaxed"]["value"] == pytest.approx(2 / 3)
    # One line per keyword: which items, where, why, and how many still validated.
    assert result.details["relaxed"] == [
        {"keyword": "multipleOf", "items": 2, "schema_valid": 1, "at": "price",
         "why": "a divisibility rule, which a grammar does not express", "item ids": "ann, bob"},
        {"keyword": "pattern", "items": 2, "schema_valid": 1, "at": "sku",
         "why": "lookaround or group flag at 1 of /^(?=S)S[0-9]+$/", "item ids": "ann, bob"},
    ]
    assert "relaxed" in result.details["tables"]
    assert "(2 of 3 items under a relaxed grammar)" in result.summary.verdict
    ctx = SectionContext("t", "structured", {}, result.details, result.samples)
    scores = {(r.id, r.variant): r.scores for r in structured_section.browser_rows(ctx)}
    assert 'relaxed: [{"keyword": "multipleOf"' in scores[("bob", "constrained")]
    assert "relaxed" not in scores[("cat", "constrained")]
