"""`llmassay factcheck`, `kb edit`, `kb stats` and `index build`: verdicts on answers with known
true and false facts, one-line errors on malformed input, the files each command writes."""

from __future__ import annotations

import json

import pytest

from llmassay.cli import main

ANSWERS = [
    {"id": "pe", "question": "Write a short profile of Peru.",
     "answer": "Peru is a country in South America. Its capital is Quito. The population of Peru is about 32 million."},
    {"id": "fr", "country": "FR", "answer": json.dumps({"capital": "Paris", "currencies": ["Euro", "Yen"]})},
    {"id": "jp", "question": "What is the capital of Japan?", "answer": "The capital of Japan is Tokyo."},
    {"id": "none", "answer": "I would rather not say."},
]


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_factcheck_writes_per_fact_verdicts_and_a_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["factcheck", "--answers", write(tmp_path / "a.jsonl", ANSWERS), "--output-path", str(out)]) == 0
    rows = {r["id"]: r for r in map(json.loads, (out / "factcheck.jsonl").read_text().splitlines())}
    assert [(f["field"], f["verdict"], f["evidence"]) for f in rows["pe"]["facts"]] == [
        ("continent", "supported", "PE.continent"), ("capital", "contradicted", "PE.capital"),
        ("population", "supported", "PE.population")]
    assert rows["fr"]["path"] == "structured" and rows["fr"]["counts"] == {"supported": 2, "contradicted": 1,
                                                                           "not_in_kb": 0}
    assert rows["jp"]["counts"]["supported"] == 1 and rows["none"]["country"] is None
    summary = json.loads((out / "summary.json").read_text())
    # Per-answer precision 2/3, 2/3, 1 over the three answers with facts; one has none.
    assert summary["fact_precision"]["value"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert summary["no_checkable_fact"]["value"] == pytest.approx(1 / 4)
    assert "fact_precision" in capsys.readouterr().out


@pytest.mark.parametrize("line, message", [
    ("{not json", "a.jsonl:2: not JSON"),
    ('["x"]', "a.jsonl:2: each line must be a JSON object"),
    ('{"id": 2}', "a.jsonl:2: missing field 'answer'"),
    ('{"id": 2, "answer": 3}', "a.jsonl:2: field 'answer' must be a string"),
    ('{"id": 1, "answer": "x"}', "a.jsonl:2: duplicate id '1'"),
    ('{"id": 2, "answer": "x", "country": "Atlantis"}', "a.jsonl:2: field 'country': unknown country"),
])
def test_factcheck_malformed_lines_are_one_line_errors(tmp_path, capsys, line, message):
    path = write(tmp_path / "a.jsonl", ['{"id": 1, "answer": "Paris is nice."}', line])
    assert main(["factcheck", "--answers", path, "--output-path", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_kb_edit_then_index_build_carry_the_edits(tmp_path, capsys):
    from llmassay.factuality.retrieval import open_index

    assert main(["kb", "edit", "--facts", "PE.capital,FR.capital", "--out", str(tmp_path / "kb")]) == 0
    kb = json.loads((tmp_path / "kb" / "kb.json").read_text())
    assert kb["edits"]["PE.capital"]["original"] == "Lima" and kb["edits"]["PE.capital"]["edited"] != "Lima"
    assert main(["index", "build", "--kb", str(tmp_path / "kb"), "--out", str(tmp_path / "idx")]) == 0
    index = open_index(str(tmp_path / "idx"))
    edited = kb["edits"]["PE.capital"]["edited"]
    assert index.kb.passages["PE.capital"].text == f"The capital of Peru is {edited}."
    assert index.search("What is the capital of Peru?", 3)[0] == "PE.capital"
    assert main(["kb", "edit", "--facts", "PE.anthem", "--out", str(tmp_path / "k2")]) == 2
    assert "field 'anthem' is not one of" in capsys.readouterr().err


def test_kb_stats_reports_disagreement_and_verifier_quality(tmp_path):
    out = tmp_path / "stats.json"
    assert main(["kb", "stats", "--json", str(out)]) == 0
    stats = json.loads(out.read_text())
    assert stats["disagreement"]["capital"]["disagree"] > 0
    assert all(t["precision"] >= 0.95 and t["recall"] >= 0.95 for t in stats["verifier"]["structured"].values())


SHORT = [
    {"id": "pe-right", "question": "What is the capital of Peru?", "answer": "Lima"},
    {"id": "pe-wrong", "question": "What is the capital of Peru?", "answer": "Quito."},
    {"id": "pe-hedge", "question": "What is the capital of Peru?", "answer": "Lima or Cusco"},
    {"id": "fr-lang", "question": "What is an official language of France?", "answer": "French"},
    {"id": "jp-code", "question": "What is the international calling code of Japan?", "answer": "+81"},
    {"id": "jp-field", "country": "Japan", "field": "continent", "answer": "Europe"},
    {"id": "es-idk", "question": "What is the currency of Spain?", "answer": "I don't know."},
    {"id": "no-field", "question": "Tell me about Peru.", "answer": "Lima"},
    {"id": "full", "question": "What is the capital of Peru?", "answer": "The capital of Peru is Lima."},
]


def test_factcheck_reads_short_answers_against_their_question(tmp_path):
    """Planted right and wrong short answers: each is one fact of the field the question asks
    about (or `field` names), judged as the probe judges its short questions."""
    out = tmp_path / "out"
    assert main(["factcheck", "--answers", write(tmp_path / "a.jsonl", SHORT), "--output-path", str(out)]) == 0
    rows = {r["id"]: r for r in map(json.loads, (out / "factcheck.jsonl").read_text().splitlines())}
    verdicts = {k: [(f["field"], f["verdict"], f["evidence"]) for f in r["facts"]] for k, r in rows.items()}
    assert verdicts["pe-right"] == [("capital", "supported", "PE.capital")] and rows["pe-right"]["path"] == "short"
    assert verdicts["pe-wrong"] == [("capital", "contradicted", "PE.capital")]
    assert verdicts["pe-hedge"] == [("capital", "contradicted", "PE.capital")]  # two cities named: a hedge
    assert verdicts["fr-lang"] == [("languages", "supported", "FR.languages")]
    assert verdicts["jp-code"] == [("calling_code", "supported", "JP.calling_code")]
    assert verdicts["jp-field"] == [("continent", "contradicted", "JP.continent")]
    assert verdicts["es-idk"] == [] and rows["es-idk"]["unverified"] == []  # an abstention
    assert verdicts["no-field"] == [] and rows["no-field"]["unverified"] == ["Lima"]  # no field asked: unread
    assert verdicts["full"] == [("capital", "supported", "PE.capital")] and rows["full"]["path"] == "free"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fact_precision"]["value"] == pytest.approx(4 / 7)  # 7 answers with a read fact
    assert summary["abstention"]["value"] == pytest.approx(1 / 9)


def test_factcheck_field_must_be_a_kb_field(tmp_path, capsys):
    path = write(tmp_path / "a.jsonl", [{"id": 1, "answer": "Lima", "country": "PE", "field": "anthem"}])
    assert main(["factcheck", "--answers", path, "--output-path", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "a.jsonl:1: field 'field': 'anthem' is not one of capital, continent" in err and "\n" not in err
