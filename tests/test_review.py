"""The review app without a browser (Starlette's test client): the token, the same-origin
rule, labels that persist in SQLite, blind mode's A/B shuffle, the queue order, and
agreement statistics against values computed by hand."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("fastapi", reason="the review app is in the [judge] extra")
from fastapi.testclient import TestClient

from judge_runs import HOSTILE, two_runs
from llmassay.cli import main
from llmassay.review.agreement import agreement, cohen_kappa
from llmassay.review.app import create_app, swapped
from llmassay.review.queue import load_queue
from llmassay.review.store import LabelStore, read_labels

TOKEN = "t0k3n"
ORIGIN = "http://testserver"


@pytest.fixture(scope="module")
def judged_once(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("judged")
    a, b = two_runs(tmp)
    assert main(["judge", str(a), str(b), "--judge-model", "oracle", "--output-path", str(tmp / "j"),
                 "--calibration-limit", "4", "--repeats", "0"]) == 0
    return tmp


@pytest.fixture
def judged(judged_once, tmp_path):
    """A fresh copy per test: labels written by one test are not seen by another."""
    shutil.copytree(judged_once, tmp_path, dirs_exist_ok=True)
    return tmp_path / "j"


def _client(run_dir, reviewer="ann", blind=False):
    return TestClient(create_app(run_dir, reviewer, TOKEN, blind))


def _post(client, key, label, token=TOKEN, origin=ORIGIN):
    headers = {"x-review-token": token, **({"origin": origin} if origin else {})}
    return client.post("/api/label", json={"key": key, "label": label, "note": "n"}, headers=headers)


def test_token_and_same_origin_are_required(judged):
    client = _client(judged)
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    assert client.get(f"/?token={TOKEN}").status_code == 200
    assert client.get("/api/items").status_code == 403
    key = client.get(f"/api/items?token={TOKEN}").json()["items"][0]["key"]
    assert _post(client, key, "A", origin="http://evil.example").status_code == 403
    assert _post(client, key, "A", origin=None).status_code == 403
    assert client.post(f"/api/label?token={TOKEN}", json={"key": key, "label": "A"},
                       headers={"origin": ORIGIN}).status_code == 403  # token in the URL only: refused for writes
    assert _post(client, key, "A").status_code == 200
    assert _post(client, key, "maybe").status_code == 400


def test_labels_persist_and_export(judged):
    client = _client(judged)
    items = client.get(f"/api/items?token={TOKEN}").json()["items"]
    assert _post(client, items[0]["key"], "B").status_code == 200
    again = _client(judged).get(f"/api/items?token={TOKEN}").json()["items"]  # a new app: from SQLite
    assert again[0]["label"] == "B"
    exported = [json.loads(line) for line in client.get(f"/api/export?token={TOKEN}").text.splitlines()]
    assert exported[0]["item"] == items[0]["key"] and exported[0]["label"] == "b" and exported[0]["reviewer"] == "ann"
    assert read_labels(judged) == {"ann": {items[0]["key"]: "b"}}
    assert LabelStore(judged).db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_queue_puts_disagreement_first_and_keeps_hostile_text_as_data(judged, tmp_path):
    path = judged / "judge_pairs.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[3]["outcome"], rows[1]["outcome"] = "inconsistent", "b"  # q1: A is right (metric), the judge says B
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    queue = load_queue(judged)
    assert [it.key for it in queue[:3]] == ["arith/q3", "arith/q1", "arith/q0"]
    assert queue[0].reason == "judge inconsistent across orders" and queue[1].reason == "judge and metric disagree"
    assert queue[1].judge == "b" and queue[1].metric == "a"
    single = load_queue(tmp_path / "run_b")
    assert single[0].kind == "single" and single[-1].outputs == (HOSTILE,) and single[-1].metric == "incorrect"
    items = _client(judged).get(f"/api/items?token={TOKEN}").json()["items"]
    assert HOSTILE in [o for it in items for o in it["outputs"]]  # sent as JSON data; the page uses textContent


def test_blind_mode_hides_the_judge_and_maps_shuffled_labels_back(judged):
    client = _client(judged, reviewer="bob", blind=True)
    items = client.get(f"/api/items?token={TOKEN}").json()["items"]
    assert all("judge" not in it and it["reason"] == "" for it in items)
    flipped = [it for it in items if swapped("bob", it["key"])]
    kept = [it for it in items if not swapped("bob", it["key"])]
    assert flipped and kept  # both orders occur among six items
    queue = {it.key: it for it in load_queue(judged)}
    assert flipped[0]["outputs"] == list(reversed(queue[flipped[0]["key"]].outputs))
    _post(client, flipped[0]["key"], "A")
    _post(client, kept[0]["key"], "A")
    stored = read_labels(judged)["bob"]
    assert stored[flipped[0]["key"]] == "b" and stored[kept[0]["key"]] == "a"


def test_agreement_statistics():
    same = cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"])
    assert same["kappa"] == 1.0 and same["observed_agreement"] == 1.0
    # 2x2 table [[2, 1], [1, 2]]: po = 4/6, pe = 1/2, kappa = (2/3 - 1/2) / (1/2) = 1/3
    k = cohen_kappa(["a", "a", "a", "b", "b", "b"], ["a", "a", "b", "a", "b", "b"])
    assert k["kappa"] == pytest.approx(1 / 3) and k["ci_low"] < 1 / 3 < k["ci_high"] and k["ci_low"] >= -1
    out = agreement({"ann": {"1": "a", "2": "b", "3": "a"}, "bob": {"1": "a", "2": "b"},
                     "cy": {"1": "a", "2": "b", "3": "a"}}, judge={"1": "a", "2": "a", "3": "a"})
    names = [tuple(p["raters"]) for p in out["cohen_kappa"]]
    assert ("ann", "judge") in names and ("ann", "bob") in names
    assert out["krippendorff_alpha"]["alpha"] == pytest.approx(1.0)  # humans agree wherever both labelled


def test_two_reviewers_give_kappa_through_the_app(judged):
    ann, bob = _client(judged, "ann"), _client(judged, "bob")
    keys = [it["key"] for it in ann.get(f"/api/items?token={TOKEN}").json()["items"]][:4]
    for key, la, lb in zip(keys, ["A", "B", "A", "tie"], ["A", "B", "B", "tie"]):
        _post(ann, key, la)
        _post(bob, key, lb)
    stats = ann.get(f"/api/agreement?token={TOKEN}").json()
    human = next(p for p in stats["cohen_kappa"] if p["raters"] == ["ann", "bob"])
    assert human["n"] == 4 and human["observed_agreement"] == 0.75


def test_an_acknowledged_label_survives_kill_9(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import llmassay

    code = ("import os, signal, sys; from llmassay.review.store import LabelStore; s = LabelStore(sys.argv[1]); "
            "s.put('t/1', 'ann', 'a', 'kept'); print('ok', flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    env = {**os.environ, "PYTHONPATH": str(Path(llmassay.__file__).parents[1])}  # this checkout's package
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == -9 and done.stdout == "ok\n"
    assert read_labels(tmp_path) == {"ann": {"t/1": "a"}}
