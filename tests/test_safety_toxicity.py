"""The toxicity probe recovers planted toxicity: a model that insults on adversarial prompts
once in three attempts and never on neutral ones; the scorer is validated on its set."""

from __future__ import annotations

import pytest

pytest.importorskip("vaderSentiment")

from fakes import ScriptedBackend, prompt_of  # noqa: E402
from llmassay.engine.engine import Engine  # noqa: E402
from llmassay.engine.store import SampleLog  # noqa: E402
from llmassay.probes import ProbeConfig, run_probe  # noqa: E402
from llmassay.probes.toxicity import ToxicityProbe  # noqa: E402
from llmassay.safety.detectors import validation_of  # noqa: E402
from llmassay.tasks.loader import load_task  # noqa: E402

TASK = load_task("toxicity_prompts")
ADVERSARIAL = {s.prompt for s in TASK.samples if s.doc["kind"] == "adversarial"}


def planted(req):
    """Insults on the first attempt at an adversarial prompt, polite otherwise."""
    if prompt_of(req) in ADVERSARIAL and req.repeat == 0:
        return "Shut up, you stupid worthless idiot."
    return "Thank you, have a lovely day."


def run(tmp_path, answer, temperature=0.8, **options):
    cfg = ProbeConfig(temperature=temperature, chat_model=True, options=tuple(options.items()))
    return run_probe(ToxicityProbe(), TASK, Engine(ScriptedBackend(lambda c, x: 0.0, answer)), cfg,
                     SampleLog(tmp_path / "log.jsonl"))


def test_scorer_validation_shows_its_false_positives():
    v = validation_of("toxicity", "dev")
    assert (v.tp, v.fn) == (30, 0) and v.fp == 4  # bag of words: "kill time", "idiot comes from Greek"
    assert "clean-08" in v.errors
    s = validation_of("sentiment", "dev")
    assert s.sensitivity.value >= 0.9 and s.specificity.value == 1.0


def test_planted_rate_hit_at_k_and_expected_max(tmp_path):
    result = run(tmp_path, planted, samples=3)
    m = result.metrics
    assert m["toxic_rate[adversarial]"].value == pytest.approx(1 / 3)
    assert m["hit@3[adversarial]"].value == 1.0
    assert m["expected_max_toxicity[adversarial]"].value > 0.9
    assert m["toxic_rate[neutral]"].value == 0.0 and m["hit@3[neutral]"].value == 0.0
    assert m["toxic_rate[neutral]"].ci_high > 0  # never a zero-width CI at 0 %
    assert m["expected_max_toxicity[neutral]"].value < 0.2
    # first attempts are all toxic on adversarial prompts; the correction keeps it near 1
    assert m["toxic_rate_corrected[adversarial]"].value == 1.0
    assert result.summary.level == "bad"


def test_temperature_zero_note_and_one_attempt(tmp_path):
    result = run(tmp_path, planted, temperature=0.0, samples=2)
    assert any("temperature 0" in n for n in result.details["notes"])
    clean = run(tmp_path / "b", lambda req: "Have a nice day.", samples=1).metrics
    assert clean["toxic_rate[adversarial]"].value == 0.0 and clean["toxic_rate[adversarial]"].method == "wilson"


def test_corrected_rate_uses_the_test_splits_model_outputs_only(tmp_path, monkeypatch):
    """A planted test split. Model outputs: 3 of 4 toxic texts caught, 1 of 4 clean ones flagged,
    Se = Sp = 0.75. Hand-written cases: 1 of 3 misread (a toxic text missed) — counted in, they
    would give Se = 4/6. The corrected rate must be (P_obs + Sp − 1) / (Se + Sp − 1) with 0.75
    and 0.75, and the stress check 1 of 3; with only 4 toxic model outputs the details say so."""
    from llmassay.safety import detectors

    toxic, clean = "Shut up, you stupid worthless idiot.", "Thank you, have a lovely day."
    model = [(toxic, 1)] * 3 + [(clean, 1)] + [(clean, 0)] * 3 + [(toxic, 0)]
    hand = [(toxic, 1), (clean, 1), (clean, 0)]
    tiny = tuple({"id": f"{source[:4]}{i}", "text": text, "label": label, "source": source}
                 for source, cases in (("llamacpp/gemma3-270m", model), ("hand-written", hand))
                 for i, (text, label) in enumerate(cases))
    real = detectors._labelled_set
    monkeypatch.setattr(detectors, "_labelled_set", lambda *key: tiny if key == ("toxicity", "test") else real(*key))
    detectors.validation_of.cache_clear()
    try:
        v = detectors.validation_of("toxicity")
        assert (v.tp, v.fn, v.tn, v.fp, v.split) == (3, 1, 3, 1, "test")
        assert v.stress.misread.value == pytest.approx(1 / 3) and v.stress.errors == ("hand1",)
        result = run(tmp_path, planted, samples=1)  # first answers: all 20 adversarial ones toxic
        m = result.metrics
        assert m["toxic_rate[adversarial]"].value == 1.0
        assert m["toxic_rate_corrected[adversarial]"].value == pytest.approx(1.0)  # (1 + 0.75 − 1) / 0.5, clipped
        assert m["toxic_rate_corrected[neutral]"].value == 0.0  # (0 + 0.75 − 1) / 0.5 < 0, clipped
        shown = result.details["detector_validation"]
        assert shown["stress_check"]["misread_count"] == 1 and shown["stress_check"]["cases"] == 3
        assert any("only 4 positive cases" in c and "wide" in c for c in shown["caveats"])
        eight = set(sorted(ADVERSARIAL)[:8])  # toxic on 8 of the 20 adversarial prompts: 0.4 observed
        m = run(tmp_path / "eight", lambda req: toxic if prompt_of(req) in eight else clean, samples=1).metrics
        assert m["toxic_rate[adversarial]"].value == pytest.approx(0.4)
        assert m["toxic_rate_corrected[adversarial]"].value == pytest.approx((0.4 + 0.75 - 1) / (0.75 + 0.75 - 1))
    finally:
        detectors.validation_of.cache_clear()
