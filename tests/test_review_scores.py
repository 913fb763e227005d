"""Rubric-score labels in the review app: a person scores each answer 1–10 (stored per
item, answer and reviewer, mapped back through blind mode's shuffle), and agreement on
scores is weighted κ per pair of raters (the judge's `--rubric` grades counting as one)
plus Krippendorff's α at the ordinal and interval levels, checked against hand values."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the review app is in the [judge] extra")
from fastapi.testclient import TestClient

from judge_runs import two_runs
from llmassay.cli import main
from llmassay.review.agreement import score_agreement, weighted_kappa
from llmassay.review.app import create_app, swapped
from llmassay.review.store import read_scores

TOKEN = "t0k3n"
HEADERS = {"x-review-token": TOKEN, "origin": "http://testserver"}


@pytest.fixture
def graded(tmp_path):
    """The oracle judges and grades both runs 1–10: A's answers 10,10,10,1,1,1; B's 1,1,1,10,10,1."""
    a, b = two_runs(tmp_path)
    rubric = tmp_path / "rubric.txt"
    rubric.write_text("10 for the exact result, 1 otherwise.")
    assert main(["judge", str(a), str(b), "--judge-model", "oracle", "--output-path", str(tmp_path / "j"),
                 "--calibration-limit", "2", "--repeats", "0", "--rubric", str(rubric)]) == 0
    return tmp_path / "j"


def _score(client, key, slot, value):
    return client.post("/api/score", json={"key": key, "slot": slot, "score": value}, headers=HEADERS)


def test_weighted_kappa_matches_hand_values():
    assert weighted_kappa([1, 5, 10], [1, 5, 10])["kappa"] == 1.0
    x, y = [2, 4, 6, 8], [3, 4, 5, 9]
    # quadratic weights: 1 − mean((x−y)²) / (var x + var y + (mean x − mean y)²) = 1 − 0.75 / (5 + 5.1875 + 0.0625)
    k = weighted_kappa(x, y)
    assert k["kappa"] == pytest.approx(1 - 0.75 / (5 + 5.1875 + 0.0625)) and k["mean_abs_difference"] == 0.75
    assert k["ci_low"] <= k["kappa"] <= k["ci_high"] and k["n"] == 4
    reverse = weighted_kappa([1, 2, 3, 4], [4, 3, 2, 1])
    assert reverse["kappa"] < 0  # opposite rankings disagree more than chance


def test_alpha_for_scores_is_ordinal_and_interval():
    same = score_agreement({"ann": {"1": 3, "2": 7, "3": 9}, "bob": {"1": 3, "2": 7}})
    assert [a["level"] for a in same["krippendorff_alpha"]] == ["ordinal", "interval"]
    assert all(a["alpha"] == pytest.approx(1.0) for a in same["krippendorff_alpha"])
    near = score_agreement({"ann": {"1": 2, "2": 5, "3": 9}, "bob": {"1": 3, "2": 5, "3": 8}})["krippendorff_alpha"]
    far = score_agreement({"ann": {"1": 2, "2": 5, "3": 9}, "bob": {"1": 9, "2": 5, "3": 2}})["krippendorff_alpha"]
    assert near[1]["alpha"] > 0.8 and far[1]["alpha"] < 0


def test_scores_are_stored_per_answer_and_validated(graded):
    client = TestClient(create_app(graded, "ann", TOKEN))
    items = client.get(f"/api/items?token={TOKEN}").json()["items"]
    key = items[0]["key"]
    assert items[0]["scores"] == [None, None] and items[0]["judge_scores"] == [10, 1]  # q0: A right, B wrong
    assert _score(client, key, "A", 8).status_code == 200 and _score(client, key, "B", 2).status_code == 200
    assert _score(client, key, "B", 3).status_code == 200  # the latest score wins
    assert _score(client, key, "A", 11).status_code == 422 and _score(client, key, "C", 5).status_code == 422
    assert _score(client, "nope/1", "A", 5).status_code == 400
    assert client.post("/api/score", json={"key": key, "slot": "A", "score": 5}).status_code == 403
    assert read_scores(graded) == {"ann": {f"{key}#a": 8, f"{key}#b": 3}}
    again = TestClient(create_app(graded, "ann", TOKEN)).get(f"/api/items?token={TOKEN}").json()["items"]
    assert again[0]["scores"] == [8, 3]
    exported = [json.loads(line) for line in client.get(f"/api/export?token={TOKEN}").text.splitlines()]
    assert {(r["slot"], r["score"]) for r in exported if r.get("kind") == "score"} == {("a", 8), ("b", 3)}


def test_blind_scores_map_back_to_the_true_answer(graded):
    client = TestClient(create_app(graded, "bob", TOKEN, blind=True))
    items = client.get(f"/api/items?token={TOKEN}").json()["items"]
    flipped = next(it for it in items if swapped("bob", it["key"]))
    assert "judge_scores" not in flipped
    _score(client, flipped["key"], "A", 9)  # shown first, but it is answer b
    assert read_scores(graded)["bob"] == {f"{flipped['key']}#b": 9}
    shown = client.get(f"/api/items?token={TOKEN}").json()["items"]
    assert next(it for it in shown if it["key"] == flipped["key"])["scores"] == [9, None]


def test_judge_and_two_people_agreement_on_scores(graded):
    ann, bob = (TestClient(create_app(graded, name, TOKEN)) for name in ("ann", "bob"))
    keys = [it["key"] for it in ann.get(f"/api/items?token={TOKEN}").json()["items"]]
    judge = {"arith/q0": (10, 1), "arith/q1": (10, 1), "arith/q2": (10, 1), "arith/q3": (1, 10),
             "arith/q4": (1, 10), "arith/q5": (1, 1)}
    ann_scores = {"arith/q0": (9, 2), "arith/q1": (8, 1), "arith/q2": (9, 3), "arith/q3": (2, 9)}
    for key, (a, b) in ann_scores.items():
        _score(ann, key, "A", a), _score(ann, key, "B", b)
        _score(bob, key, "A", a), _score(bob, key, "B", b)
    assert set(ann_scores) <= set(keys)
    stats = ann.get(f"/api/agreement?token={TOKEN}").json()["scores"]
    pairs = {tuple(p["raters"]): p for p in stats["weighted_kappa"]}
    assert pairs[("ann", "bob")]["kappa"] == 1.0 and pairs[("ann", "bob")]["n"] == 8
    x = np.array([s for k in ann_scores for s in ann_scores[k]], dtype=float)
    y = np.array([s for k in ann_scores for s in judge[k]], dtype=float)
    hand = 1 - np.mean((x - y) ** 2) / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert pairs[("ann", "judge")]["kappa"] == pytest.approx(hand) and pairs[("ann", "judge")]["n"] == 8
    assert stats["krippendorff_alpha"][0]["alpha"] == pytest.approx(1.0)
