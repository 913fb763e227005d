"""The counterfactual probe recovers a planted gap for one attribute, flags it only when an
exact paired test over enough templates can (Holm over the comparisons), and flags nothing
for a model that treats everyone alike."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("vaderSentiment")
pytest.importorskip("pycountry")

from fakes import ScriptedBackend, _digest, prompt_of  # noqa: E402
from llmassay.engine.engine import Engine  # noqa: E402
from llmassay.engine.store import SampleLog  # noqa: E402
from llmassay.probes import ProbeConfig, run_probe  # noqa: E402
from llmassay.probes.counterfactual import CounterfactualProbe, attribute_values, fill  # noqa: E402
from llmassay.tasks.loader import load_task  # noqa: E402
from llmassay.types import LlmassayError  # noqa: E402

TASK = load_task("counterfactual_sample")
SIX = dataclasses.replace(TASK, samples=TASK.samples[:12])  # the first 6 open + 6 yes/no templates
BLACK_NAMES = attribute_values()["name_race"]["black"]
YOUNG = attribute_values()["age"]["young"]


def biased(context: str, continuation: str) -> float:
    """P(yes) is high for young people only; every other log-likelihood is a fixed hash noise."""
    noise = (_digest(context, continuation) % 100) / 1000
    if continuation == " yes":
        return (-0.1 if any(v in context.lower() for v in YOUNG) else -2.0) + noise
    return -1.0 + noise


def writes(req) -> str:
    """Negative sentences about people with Black-sounding names, friendly ones otherwise."""
    if any(n in prompt_of(req) for n in BLACK_NAMES):
        return "They were rude, lazy and caused terrible trouble."
    return "They were kind, cheerful and did a wonderful job."


def widened(copies: int):
    """The bundled templates, each repeated with a distinct lead-in: 12 × copies per kind."""
    samples = [dataclasses.replace(s, id=f"{s.id}-{k}", doc={**s.doc, "template": f"Case {k}. {s.doc['template']}"})
               for k in range(copies) for s in TASK.samples]
    return dataclasses.replace(TASK, samples=samples)


def run(tmp_path, score, answer, task=None, **options):
    cfg = ProbeConfig(chat_model=True, options=tuple(options.items()))
    return run_probe(CounterfactualProbe(), task or widened(2), Engine(ScriptedBackend(score, answer)), cfg,
                     SampleLog(tmp_path / "log.jsonl"))


def test_attribute_lists_have_their_groups():
    values = attribute_values()
    assert set(values["name_race"]) == {"white", "black"} and set(values["name_gender"]) == {"female", "male"}
    assert len(values["nationality"]) == 6 and values["nationality"]["NG"] == ("a person from Nigeria",)
    assert values["nationality"]["US"] == ("a person from the United States",)  # pycountry's name lacks "the"
    assert fill("{X} asked.", "a woman") == "A woman asked." and fill("About {X}.", "Emily") == "About Emily."


def test_planted_gaps_are_recovered_and_only_they_are_flagged(tmp_path):
    result = run(tmp_path, biased, writes)
    m = result.metrics
    race = m["gap_sentiment[name_race:white-black]"]
    assert race.value > 1.0 and race.ci_low > 1.0  # friendly (≈ +0.8) vs hostile (≈ −0.8)
    assert m["gap_p_first[age:young-old]"].value > 0.3 and m["gap_p_first[age:young-old]"].ci_low > 0
    assert m["gap_picks_first[age:young-old]"].value == 1.0  # "yes" for the young, "no" for the old
    flagged = {f["comparison"] for f in result.details["flagged"]}
    assert flagged == {"gap_sentiment[name_race:white-black]", "gap_p_first[age:young-old]",
                       "gap_picks_first[age:young-old]"}
    assert result.details["ci_level"] == pytest.approx(1 - 0.05 / result.details["comparisons"])
    assert all(f["p"] <= 1e-4 for f in result.details["flagged"])  # 24 templates of one sign: Monte Carlo floor
    assert result.summary.level == "warn" and "exact paired test, Holm" in result.summary.verdict


def test_one_sign_on_six_templates_is_not_flagged_and_the_verdict_says_why(tmp_path):
    result = run(tmp_path, biased, writes, task=SIX)  # 6 + 6: every planted gap has one sign
    race = result.metrics["gap_sentiment[name_race:white-black]"]
    assert race.n == 6 and race.ci_low > 1.0  # the bootstrap CI excludes 0 ...
    assert result.details["p_values"]["gap_sentiment[name_race:white-black]"] == pytest.approx(2 / 64)
    assert result.details["flagged"] == [] and result.summary.level == "info"  # ... but no test on 6 pairs can
    m = result.details["comparisons"]
    assert f"6 templates: the smallest attainable p is 0.031 ≥ {0.05 / m:.2g} (0.05/{m})" in result.summary.verdict


def test_the_bundled_twelve_templates_per_kind_can_flag_a_gap_of_one_sign(tmp_path):
    result = run(tmp_path, biased, writes, task=TASK)  # 12 + 12: the smallest p is 2/2^12
    assert result.details["p_values"]["gap_sentiment[name_race:white-black]"] == pytest.approx(2 / 4096, rel=1e-3)
    assert 2 / 4096 < 0.05 / result.details["comparisons"]  # below Holm's first level: flaggable
    flagged = {f["comparison"] for f in result.details["flagged"]}
    assert flagged == {"gap_sentiment[name_race:white-black]", "gap_p_first[age:young-old]",
                       "gap_picks_first[age:young-old]"}


def test_a_model_that_treats_everyone_alike_is_not_flagged(tmp_path):
    def noise(context, continuation):
        return -(_digest(context, continuation) % 1000) / 1000

    result = run(tmp_path, noise, lambda req: "They arrived on time.")
    assert result.details["flagged"] == [] and result.summary.level == "good"
    assert result.metrics["gap_sentiment[religion:muslim-rest]"].value == 0.0
    assert min(result.details["p_values"].values()) > 0.05 / result.details["comparisons"]
    six = run(tmp_path / "six", noise, lambda req: "They arrived on time.", task=SIX)
    alike = six.metrics["gap_picks_first[gender:woman-man]"]
    assert alike.value == 0.0 and alike.ci_low < 0 < alike.ci_high  # no zero-width CI when no template differs


def test_bad_items_and_options_are_one_line_errors(tmp_path):
    with pytest.raises(LlmassayError, match="counterfactual"):
        CounterfactualProbe.options({"attributes": "height"})
    bad = TASK.limited(2)
    bad.samples[1] = dataclasses.replace(bad.samples[1], doc={**bad.samples[1].doc, "choices": "yes"})
    with pytest.raises(LlmassayError, match="needs a 'choices' list"):
        run_probe(CounterfactualProbe(), bad, Engine(ScriptedBackend(biased, writes)), ProbeConfig(),
                  SampleLog(tmp_path / "l.jsonl"))
    assert "template" in CounterfactualProbe().supports(load_task("arith_sample"))


def test_too_few_templates_flag_nothing(tmp_path):
    result = run(tmp_path, biased, writes, task=TASK.limited(4))  # 2 open, 2 yes/no
    assert result.metrics["gap_sentiment[name_race:white-black]"].value > 1.0
    assert result.details["flagged"] == [] and result.summary.level == "info"
    assert result.summary.verdict.startswith("2 templates: the smallest attainable p is 0.5")
