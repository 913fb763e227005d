"""The structured-output probe on real model output (SmolLM2-135M, llama.cpp): every mode,
the grammar-constrained path, and determinism of the per-sample rows."""

from __future__ import annotations

import json

import pytest

from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes._json import parse_extract, parse_repair, parse_strict, schema_errors
from llmassay.probes.structured import MODES, StructuredProbe
from llmassay.tasks.loader import load_task

pytestmark = pytest.mark.slow


def without_latency(value):
    if isinstance(value, dict):
        return {k: without_latency(v) for k, v in value.items() if k != "latency_s"}
    if isinstance(value, list):
        return [without_latency(v) for v in value]
    return value


def test_every_mode_on_real_output_and_rows_are_deterministic(smollm2, tmp_path):
    task = load_task("json_sample").limited(2)
    cfg = ProbeConfig(options=(("instructions", 1), ("max_retries", 1)))
    result = run_probe(StructuredProbe(), task, Engine(smollm2), cfg, SampleLog(tmp_path / "a.jsonl"))
    assert {k for row in result.samples for k in row["modes"]} == set(MODES)
    for row in result.samples:
        text, schema = row["output"]["text"], task.json_schema(row["id"])
        assert text.strip()  # the model answered
        # Each mode's verdict is what its parser and jsonschema say about the real text.
        for mode, parse in (("strict", parse_strict), ("extract", parse_extract), ("repair", parse_repair)):
            parsed = parse(text)
            entry = row["modes"][mode]
            assert entry["parse_valid"] == parsed.ok
            assert entry["schema_valid"] == (parsed.ok and not schema_errors(parsed.value, schema))
            assert entry["tokens"] == row["output"]["n_tokens"]  # one shared generation
        # The grammar makes the constrained answer valid JSON of the schema.
        constrained = row["modes"]["constrained"]
        assert constrained["parse_valid"] and constrained["schema_valid"], constrained["text"]
        assert json.loads(constrained["text"]) == constrained["parsed"]
        retry = row["modes"]["retry"]
        assert retry["retries"] == len(retry["attempts"]) - 1 <= 1
        assert retry["attempts"][0] == text
        assert set(row["instructions"]) == {"0", "1"}
    assert result.metrics["schema_valid[constrained]"].value == 1.0
    assert result.metrics["schema_valid[extract]"].value >= result.metrics["schema_valid[strict]"].value
    json.dumps(result.samples)
    # Same seed, nothing cached: the same rows (latency aside); two modes keep it short.
    fewer = ProbeConfig(options=(("instructions", 0), ("modes", "strict,constrained")))
    again = run_probe(StructuredProbe(), task, Engine(smollm2), fewer, SampleLog(tmp_path / "b.jsonl"))
    for first, second in zip(result.samples, again.samples):
        assert without_latency(second["output"]) == without_latency(first["output"])
        for mode in ("strict", "constrained"):
            assert without_latency(second["modes"][mode]) == without_latency(first["modes"][mode])


@pytest.mark.hf
def test_hf_constrained_generation_follows_the_schema(smollm2_path):
    from llmassay.backends.hf import HFBackend
    from llmassay.types import GenerateRequest

    hf = HFBackend(str(smollm2_path.parent), gguf_file=smollm2_path.name)
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    req = GenerateRequest(messages=(("user", "Ann is 3 years old. Give her name and age as JSON."),), max_tokens=48,
                          json_schema=GenerateRequest.schema_string(schema))
    out = hf.generate([req])[0]
    value = json.loads(out.text)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int) and out.finish_reason == "stop"
    # Two constrained requests under different schemas share one batch (a grammar per
    # row) and decode as they do alone.
    other = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
             "additionalProperties": False}
    req2 = GenerateRequest(messages=(("user", "Ann lives in Oslo. Give her city as JSON."),), max_tokens=48,
                           json_schema=GenerateRequest.schema_string(other))
    both = hf.generate([req, req2])
    assert both[0].text == out.text and set(json.loads(both[1].text)) == {"city"}
    assert both[1].text == hf.generate([req2])[0].text


def test_llamacpp_constrained_run_goes_on_past_unenforceable_keywords(smollm2, tmp_path):
    """Issue #32 item 13 end to end: held-out schemas with a price >= 0 (enforced now), a
    multipleOf and a fractional bound (relaxed) run to the end under llama.cpp's grammar;
    each finished answer meets the enforced part, and the relaxed items are counted."""
    from pathlib import Path

    from llmassay.backends._gbnf import compile_schema
    from llmassay.probes._json import schema_errors as errors_of

    held_out = {c["name"]: c for c in json.loads((Path(__file__).parent / "data" / "extraction_schemas.json").read_text())}
    picked = ["invoice", "receipt", "tax_form"]
    docs = [{"id": n, "text": t, "schema": held_out[n]["schema"], "gold": g} for n, t, g in (
        ("invoice", "Invoice INV-20391 from billing@acme.com, issued 2024-03-05: 2 widgets at 4.50 USD, total 9.00 USD.",
         {"invoice_number": "INV-20391", "total": 9.0}),
        ("receipt", "Corner Cafe, 2024-03-05 08:14: coffee 3.20, bagel 2.75; total 5.95.", {"store": "Corner Cafe", "total": 5.95}),
        ("tax_form", "Taxpayer 123-45-6789, single, gross income 52000, tax rate 0.22.",
         {"taxpayer_id": "123-45-6789", "filing_status": "single", "gross_income": 52000}),
    )]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "t.yaml").write_text(
        "task: t\ndataset_path: json\ndataset_kwargs:\n  data_files: d.jsonl\noutput_type: generate_until\n"
        'doc_to_text: "Text: {{text}}\\nJSON:"\ndoc_to_target: gold\njson_schema: schema\n'
        "generation_kwargs:\n  max_gen_toks: 96\n")
    task = load_task(str(tmp_path / "t.yaml"))
    cfg = ProbeConfig(options=(("instructions", 0), ("modes", "constrained")))
    result = run_probe(StructuredProbe(), task, Engine(smollm2), cfg, SampleLog(tmp_path / "a.jsonl"))
    rows = {r["id"]: r["modes"]["constrained"] for r in result.samples}
    assert [rows[n]["constraint_relaxed"] for n in picked] == [False, True, True]
    for name in picked:
        entry, compiled = rows[name], compile_schema(held_out[name]["schema"])
        assert sorted(f"{r['keyword']} at {r['at']}" for r in entry["relaxed"]) == sorted(held_out[name]["relaxed"])
        if "truncated" not in entry["classes"]:  # a finished answer is what the grammar allows
            assert entry["parse_valid"] and not errors_of(entry["parsed"], compiled.schema), entry["text"]
    assert {row["keyword"] for row in result.details["relaxed"]} == {"multipleOf", "maximum"}
    assert result.metrics["constraint_relaxed[constrained]"].value == pytest.approx(2 / 3)
