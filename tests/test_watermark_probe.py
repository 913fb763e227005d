"""--probe watermark recovers what a scripted backend planted (no model)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from fakes import WatermarkBackend
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.watermark import WatermarkProbe
from llmassay.tasks.loader import load_task

T = 60


def run(tmp_path, task_name="prose_continue", n=8, **options):
    task = load_task(task_name)
    task = dataclasses.replace(task, samples=task.samples[:n])
    backend = WatermarkBackend({0.0: 0.6, 0.7: 1.0}, T, {s.prompt: str(s.target) for s in task.samples})
    opts = {"max_tokens": T, "null_keys": 40, **options}
    cfg = ProbeConfig(options=tuple(sorted(opts.items())))
    return run_probe(WatermarkProbe(), task, Engine(backend), cfg, SampleLog(tmp_path / "log.jsonl"))


def test_probe_recovers_planted_detection_quality_and_attacks(tmp_path):
    res = run(tmp_path)
    m = res.metrics
    assert m["tpr[sampled]"].value == 1.0 and m["tpr[sampled]"].n == 8  # all green
    assert m["fpr[sampled]"].value == 0.0 and m["fpr[greedy]"].value == 0.0
    scored = T - 3  # selfhash h=4
    assert m["z_marked[sampled]"].value == pytest.approx(math.sqrt(scored) * 0.75 / math.sqrt(0.1875))
    assert m["green_fraction[greedy]"].value == pytest.approx(0.6, abs=0.08)
    # perplexity: -3 vs -2 nats per word planted
    assert m["perplexity[marked]"].value == pytest.approx(math.exp(3))
    assert m["perplexity_ratio"].value == pytest.approx(math.e)
    # attacks: the paraphrase removes it, pasting 75 % keeps it, 25 % loses it
    assert m["tpr_after[paraphrase]"].value == 0.0
    assert m["tpr_after[mix75]"].value == 1.0
    assert m["tpr_after[mix25]"].value == 0.0
    assert m["tpr_after[sub10]"].value >= m["tpr_after[sub30]"].value
    assert "exact_match[plain]" not in m  # open-ended task: no short answers
    # z vs T: the measured mean follows the prediction from the green fraction
    table = [r for r in res.details["z_vs_tokens"] if r.get("decoding") == "greedy" and "tokens" in r]
    for r in table:
        assert r["z"]["value"] == pytest.approx(r["predicted_z"], abs=1.5)
    need = next(r for r in res.details["z_vs_tokens"] if r.get("decoding") == "greedy" and "tokens_for_z" in r)
    assert need["tokens_for_z"] == pytest.approx(16 * 0.1875 / (need["green_fraction"] - 0.25) ** 2)
    # null and zero-shot
    assert res.details["null"]["n_z"] == 40 * res.details["null"]["n_windows"]
    assert abs(res.details["null"]["z_sd"] - 1) < 0.1
    zs = res.details["zero_shot"]
    assert zs["n_model"] == zs["n_human"] == 8
    # planted: plain model words are the mode, watermarked ones second, human words rank 40
    for name in ("likelihood", "logrank", "fastdetectgpt"):
        assert zs["auroc"][name]["plain"]["value"] == 1.0 and zs["auroc"][name]["marked"]["value"] == 1.0
    # the watermark tells only its own text from human text; plain model text it cannot
    assert zs["auroc"]["watermark_z"]["marked"]["value"] == 1.0
    plain = zs["auroc"]["watermark_z"]["plain"]
    assert plain["ci_low"] < 0.5 < plain["ci_high"]
    assert res.summary is not None and res.summary.level == "good"


def test_exact_match_with_and_without_the_watermark(tmp_path):
    res = run(tmp_path, "arith_sample", n=5, attacks="sub10", null_keys=0, zero_shot=False)
    assert res.metrics["exact_match[plain]"].value == 1.0  # planted: right without, wrong with the watermark
    assert res.metrics["exact_match[marked]"].value == 0.0
    assert res.metrics["exact_match_change"].value == -1.0 and res.metrics["exact_match_change"].n == 5
    assert set(res.details) >= {"z_vs_tokens", "thresholds"} and "null" not in res.details


def test_a_backend_without_token_statistics_keeps_the_likelihood_and_names_what_it_skipped(tmp_path):
    from fakes import WatermarkBackend as Planted

    class ScoringOnly(Planted):
        token_stats = None  # a server backend: log-likelihoods, no distributions

    task = load_task("prose_continue")
    task = dataclasses.replace(task, samples=task.samples[:4])
    cfg = ProbeConfig(options=(("attacks", "sub10"), ("max_tokens", T), ("null_keys", 0)))
    res = run_probe(WatermarkProbe(), task, Engine(ScoringOnly({0.0: 0.6, 0.7: 1.0}, T)), cfg, SampleLog(tmp_path / "l.jsonl"))
    zs = res.details["zero_shot"]
    assert set(zs["auroc"]) == {"likelihood", "watermark_z"} and set(zs["skipped"]) == {"logrank", "fastdetectgpt"}
    assert zs["auroc"]["likelihood"]["plain"]["value"] == 1.0


def test_same_seed_same_rows(tmp_path):
    a = run(tmp_path / "a", n=3, null_keys=0, zero_shot=False).samples
    b = run(tmp_path / "b", n=3, null_keys=0, zero_shot=False).samples
    assert a == b


def test_a_server_backend_refuses_watermarked_requests():
    from fake_openai import FakeOpenAI
    from llmassay.backends.openai_compat import OpenAIBackend
    from llmassay.types import GenerateRequest, LlmassayError
    from llmassay.watermark import WatermarkConfig

    with FakeOpenAI() as fake, pytest.raises(LlmassayError, match="watermarked generation needs a local backend"):
        OpenAIBackend("toy", base_url=fake.base_url).generate(
            [GenerateRequest(prompt="hi", watermark=WatermarkConfig("k").spec())])


@pytest.mark.parametrize("given, message", [
    ({"key": ""}, "watermark.key"),
    ({"scheme": "minhash"}, "watermark.scheme"),
    ({"gamma": "1.5"}, "watermark.gamma"),
    ({"attacks": "sub10,rot13"}, "watermark.attacks"),
    ({"baseline": "likelihood,detectgpt"}, "watermark.baseline"),
])
def test_bad_options_are_one_line_errors_naming_the_option(given, message):
    from llmassay.types import LlmassayError

    with pytest.raises(LlmassayError) as err:
        WatermarkProbe.options(given)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_default_key_warns_once_per_run(tmp_path, caplog):
    """The default key is printed by `llmassay probes`: anyone can detect or forge with it."""
    with caplog.at_level("WARNING", logger="llmassay"):
        run(tmp_path / "a", n=2, zero_shot=False, null_keys=0, attacks=("sub10",))
    assert sum("public default" in r.message for r in caplog.records) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="llmassay"):
        run(tmp_path / "b", n=2, zero_shot=False, null_keys=0, attacks=("sub10",), key="my own key")
    assert not any("public default" in r.message for r in caplog.records)
