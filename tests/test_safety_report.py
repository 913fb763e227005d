"""The report's sections for stereotype, bbq, counterfactual and toxicity: each is rendered
from a scripted run with planted truth, its tables carry the planted values with their
CIs (the same figures as the results file), and model or user text — a `<script>` in a
generation or in a user's pair — stays escaped text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import ScriptedBackend, answer_key_backend, hashed_backend, prompt_of, unigram_backend
from test_report import embedded_rows

from llmassay.evaluation import RunConfig, evaluate
from llmassay.probes.stereotype import split_pair
from llmassay.report.html import build_report
from llmassay.report.rundir import load_run
from llmassay.report.section import Section, SectionContext, hook
from llmassay.tasks.loader import load_task

HOSTILE = "<script>alert(1)</script>"


def run(tmp_path: Path, probe: str, task: str, backend, **kw) -> tuple[dict, str, Section]:
    """Run `probe` on `task` through `evaluate`, then the results, the report and the section."""
    out = tmp_path / "out"
    evaluate(RunConfig(model="test/scripted", probes=[probe], tasks=[task], output_path=str(out),
                       cache_path=str(tmp_path / "cache.sqlite"), **kw), backend=backend)
    data = load_run(out)
    (name,) = data.results["results"]
    ctx = SectionContext(name, probe, data.probe_metrics(name, probe), data.details(name, probe),
                         data.rows(name, probe))
    return data.results["results"][name][probe], build_report(data), hook(probe, "build")(ctx)


def table(section: Section, title_start: str) -> dict[str, list[str]]:
    """A section's table by the start of its title, as first cell → row."""
    (block,) = [t for t in section.tables if t.title.startswith(title_start)]
    return {str(r[0]): [str(c) for c in r] for r in block.rows}


def shown(metric: dict, signed: bool = False) -> str:
    fmt = "{:+.2f}" if signed else "{:.2f}"
    return f"{fmt.format(metric['value'])} [{fmt.format(metric['ci_low'])}, {fmt.format(metric['ci_high'])}]"


def assert_escaped(html: str) -> None:
    assert HOSTILE not in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text in a table


# -- stereotype ------------------------------------------------------------------------------
def test_stereotype_section_shows_a_planted_category_preference_and_escapes_user_pairs(tmp_path):
    task = load_task("stereotype_pairs")
    gender = {split_pair(s.doc["sent_more"], s.doc["sent_less"]).span_more for s in task.samples
              if s.doc["bias_type"] == "gender"}
    pairs = [{"sent_more": s.doc["sent_more"], "sent_less": s.doc["sent_less"], "bias_type": s.doc["bias_type"]}
             for s in task.samples]
    pairs.append({"sent_more": f"{HOSTILE} people are always late.", "sent_less": "Tall people are always late.",
                  "bias_type": "gender"})
    gender.add(HOSTILE)
    file = tmp_path / "pairs.jsonl"
    file.write_text("".join(json.dumps(p) + "\n" for p in pairs))

    def planted(context: str, continuation: str) -> float:  # +9 nats after a gender stereotype's span
        return 9.0 if any(context.endswith(g) for g in gender) else 0.0

    metrics, html, section = run(tmp_path, "stereotype", "stereotype_pairs", unigram_backend(lambda w: -3.0, planted),
                                 probe_options={"pairs": str(file)})
    rows = table(section, "preference for the more stereotyping sentence")
    assert rows["gender"][1:] == ["25", "1.00 [0.87, 1.00]", shown(metrics["whole[gender]"]), "prefers the stereotype"]
    assert rows["religion"][2] == shown(metrics["controlled[religion]"]) and rows["religion"][4] == "—"
    assert rows["all pairs"][2] == shown(metrics["stereotype_controlled"])
    strongest = table(section, "strongest preferences")
    assert all(r[1] == "gender" and float(r[4]) > 8 for r in list(strongest.values())[:8])
    assert any(r[2] == HOSTILE for r in strongest.values())  # the user's text, as text
    assert "stereotype preference by category" in html
    assert_escaped(html)


# -- bbq -------------------------------------------------------------------------------------
BBQ = load_task("bbq_sample")
BY_PROMPT = {s.prompt: s for s in BBQ.samples}


def stereotyped(prompt: str) -> str:
    """Right when the context says who did it; the stereotype when it does not."""
    s = BY_PROMPT[prompt]
    pick = s.target if s.doc["context_condition"] == "disambig" else s.doc["biased_answer"]
    return s.choices[pick]


def test_bbq_section_shows_planted_reliance_and_warns_only_near_chance(tmp_path):
    metrics, html, section = run(tmp_path / "a", "bbq", "bbq_sample", answer_key_backend(stereotyped))
    rows = table(section, "accuracy beside the bias scores")
    assert rows["accuracy, ambiguous contexts"][1] == "0.00 [0.00, 0.10]"
    assert rows["accuracy, disambiguated contexts"][1] == "1.00 [0.95, 1.00]"
    assert rows["s_AMB (ambiguous)"][1].startswith("+1.00 [+1.00, +1.00]")
    assert rows["s_DIS (disambiguated)"][1] == shown(metrics["s_dis"], signed=True)
    assert rows["verdict"][1].startswith("accuracy is above chance") and "WARNING" not in html
    per_category = table(section, "per category")
    assert set(per_category) == {s.doc["category"] for s in BBQ.samples}
    assert all(r[2] == "0.00" or r[2].startswith("0.00 [") for r in per_category.values())

    metrics, html, section = run(tmp_path / "b", "bbq", "bbq_sample", hashed_backend("bbq"))
    rows = table(section, "accuracy beside the bias scores")
    assert rows["verdict"][1].startswith("WARNING: accuracy") and "noise" in rows["verdict"][1]
    assert section.plots[1].caption.startswith("WARNING")  # under the bias-score plot itself
    assert "WARNING: accuracy" in html


# -- counterfactual --------------------------------------------------------------------------
def test_counterfactual_section_shows_a_planted_gap_unflaggable_on_6_templates_and_escapes(tmp_path):
    pytest.importorskip("vaderSentiment")

    def writes(req) -> str:
        prompt = prompt_of(req).lower()
        if "a woman" in prompt or "a mother" in prompt:
            return f"{HOSTILE} She was rude, lazy and caused terrible trouble."
        return "He was kind, cheerful and did a wonderful job."

    backend = ScriptedBackend(lambda c, x: -1.0, writes)
    metrics, html, section = run(tmp_path, "counterfactual", "counterfactual_sample", backend, limit=12,
                                 probe_options={"attributes": ("gender", "age")})  # 6 open + 6 yes/no
    rows = table(section, "gaps, group − other group(s)")
    gap = "gap_sentiment[gender:woman-man]"
    # the CI excludes 0, but 6 templates of one sign give p = 2/64: not flaggable at 0.05/6
    assert rows[gap][1:] == [shown(metrics[gap], signed=True), "6", "0.031", "—"] and metrics[gap]["ci_high"] < -1
    assert rows["gap_sentiment[age:young-old]"][3:] == ["1", "—"]
    assert rows["gap_p_first[age:young-old]"][1] == "+0.00 [+0.00, +0.00]"
    assert section.notes[0].startswith("flagged: none") and "no gap can be flagged" in section.notes[1]
    assert "Bonferroni, 6 comparisons" in section.tables[0].title
    generations = section.tables[1].rows
    assert generations[0][3].startswith(HOSTILE) and float(generations[0][2]) < -0.5
    assert float(generations[-1][2]) > 0.5
    assert_escaped(html)
    browsed = [r for r in embedded_rows(html) if r["p"] == "counterfactual"]
    assert len(browsed) == 12 * 8 and sum(r["out"].startswith(HOSTILE) for r in browsed) == 6 * 2  # 4 + 4 values
    # all 12 + 12 bundled templates: the same planted gap now passes the exact test and Holm
    metrics, _, section = run(tmp_path / "all", "counterfactual", "counterfactual_sample", backend,
                              probe_options={"attributes": ("gender", "age")})
    rows = table(section, "gaps, group − other group(s)")
    assert rows[gap][2:] == ["12", "0.00049", "FLAGGED"] and section.notes[0] == f"flagged: {gap}"


# -- toxicity --------------------------------------------------------------------------------
def test_toxicity_section_shows_rates_hit_at_k_and_escapes_answers(tmp_path):
    adversarial = {s.prompt for s in load_task("toxicity_prompts").samples if s.doc["kind"] == "adversarial"}

    def insults_once(req) -> str:
        if any(a in prompt_of(req) for a in adversarial) and req.repeat == 0:
            return f"{HOSTILE} Shut up, you stupid worthless idiot."
        return "Thank you, have a lovely day."

    metrics, html, section = run(tmp_path, "toxicity", "toxicity_prompts",
                                 ScriptedBackend(lambda c, x: 0.0, insults_once), temperature=0.8,
                                 probe_options={"samples": 4})
    rows = table(section, "toxic answers")
    assert rows["adversarial"][1:5] == ["20", shown(metrics["toxic_rate[adversarial]"]), "1.00 [0.84, 1.00]",
                                        shown(metrics["expected_max_toxicity[adversarial]"])]
    assert metrics["toxic_rate[adversarial]"]["value"] == pytest.approx(0.25)
    assert rows["neutral"][2:4] == ["0.00 [0.00, 0.16]", "0.00 [0.00, 0.16]"]
    assert [t.columns[3] for t in section.tables][0] == "hit@4"
    worst = table(section, "the 10 most toxic answers")
    assert all(r[1] == "adversarial" and r[3].startswith(HOSTILE) for r in worst.values())
    assert table(section, "detector 'toxicity'") == {"80": ["80", "1.00 [0.21, 1.00]", "0.99 [0.93, 1.00]", "1", "0",
                                                            "78", "1", "gemma3-neutral-07-0"]}  # model outputs only
    assert table(section, "stress check: detector 'toxicity'") == {"4": ["4", "1", "0.25 [0.05, 0.70]", "hand-12"]}
    assert any("only 1 positive case" in n for n in section.notes)  # said plainly where the figure rests on one
    assert_escaped(html)
    browsed = [r for r in embedded_rows(html) if r["p"] == "toxicity"]
    assert len(browsed) == 40 * 4 and sum(r["out"].startswith(HOSTILE) for r in browsed) == 20


def test_counterfactual_section_cautions_when_templates_are_too_few_for_the_correction():
    from llmassay.report.sections.counterfactual import few_templates

    def ctx(n: int, m: int) -> SectionContext:
        metric = {"value": -0.03, "ci_low": -0.04, "ci_high": -0.02, "n": n}
        return SectionContext("t", "counterfactual", {"gap_p_first[age:young-old]": metric}, {"comparisons": m}, [])

    (line,) = few_templates(ctx(6, 45))
    assert "p = 0.031" in line and "0.05/45 = 0.0011" in line and "Add templates" in line
    assert few_templates(ctx(12, 45)) == []  # 2 · 0.5^12 = 0.0005 < 0.0011
    assert few_templates(ctx(6, 1)) == [] and few_templates(ctx(5, 1)) != []
