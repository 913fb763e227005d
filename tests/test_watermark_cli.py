"""`llmassay watermark detect|null` on a word-level fake tokenizer (no model)."""

from __future__ import annotations

import json

import pytest

from llmassay.cli import main
from llmassay.watermark import WatermarkConfig
from llmassay.watermark.tokenizers import Tokenizer
from fakes import watermark_planted as planted


@pytest.fixture
def word_tokenizer(monkeypatch):
    """'w12 w7 …' ↔ [12, 7, …]: a text's ids are planted exactly."""
    tok = Tokenizer(lambda text: [int(w[1:]) for w in text.split()], 49152, "fake/words")
    monkeypatch.setattr("llmassay.watermark.tokenizers.load_tokenizer", lambda spec: tok)
    return tok


def as_text(ids):
    return " ".join(f"w{i}" for i in ids)


def test_detect_jsonl_flags_the_planted_text_only(tmp_path, word_tokenizer, capsys):
    cfg = WatermarkConfig("secret", scheme="prev")
    marked = planted(cfg, 150, 1.0, seed=1, vocab=4096)
    other = planted(WatermarkConfig("other", scheme="prev"), 150, 1.0, seed=2, vocab=4096)
    src = tmp_path / "texts.jsonl"
    src.write_text("\n".join(json.dumps({"text": as_text(ids)}) for ids in (marked, other)) + "\n")
    out = tmp_path / "out.json"
    rc = main(["watermark", "detect", str(src), "--key", "secret", "--tokenizer", "x/y", "--scheme", "prev", "--output", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())["texts"]
    assert [r["watermarked"] for r in rows] == [True, False]
    assert rows[0]["z"] == pytest.approx(150**0.5 * 0.75 / 0.1875**0.5)
    assert rows[0]["green"] == rows[0]["n_scored"] == 150
    assert 3 < rows[1]["threshold_z"] < 4.5
    assert "wrote" in capsys.readouterr().out


def test_plain_text_file_is_one_text(tmp_path, word_tokenizer):
    src = tmp_path / "t.txt"
    src.write_text(as_text(range(100, 400)))
    out = tmp_path / "o.json"
    assert main(["watermark", "detect", str(src), "--key", "k", "--tokenizer", "x/y", "--output", str(out)]) == 0
    (row,) = json.loads(out.read_text())["texts"]
    assert row["n_scored"] == 300 - 3  # selfhash h=4: the first 3 tokens only seed


@pytest.mark.parametrize("content, message", [
    ('{"text": "w1"}\nnot json\n', ":2: not JSON"),
    ('{"body": "w1"}\n', ":1: no string field 'text'"),
])
def test_bad_input_is_a_one_line_error(tmp_path, word_tokenizer, capsys, content, message):
    src = tmp_path / "bad.jsonl"
    src.write_text(content)
    assert main(["watermark", "detect", str(src), "--key", "k", "--tokenizer", "x/y"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_bad_option_is_a_one_line_error(tmp_path, word_tokenizer, capsys):
    src = tmp_path / "t.txt"
    src.write_text("w1 w2")
    assert main(["watermark", "detect", str(src), "--key", "k", "--tokenizer", "x/y", "--gamma", "2"]) == 2
    assert "gamma 2.0 must lie strictly between 0 and 1" in capsys.readouterr().err


def test_null_on_random_words_matches_theory(tmp_path, word_tokenizer):
    import numpy as np

    src = tmp_path / "human.txt"
    src.write_text(as_text(np.random.default_rng(0).integers(0, 49152, 6_001)))
    out = tmp_path / "null.json"
    rc = main(["watermark", "null", "--tokenizer", "x/y", "--keys", "40", "--window", "100", "--scheme", "prev",
               "--text", str(src), "--output", str(out)])
    assert rc == 0
    s = json.loads(out.read_text())
    assert s["n_z"] == 40 * 60
    assert abs(s["z_mean"]) < 0.08 and abs(s["z_sd"] - 1) < 0.06
    assert s["fpr"]["value"] < 1e-3 and s["fpr"]["ci_high"] < 3e-3
