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
