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


# -- keys off the command line, the probe's samples file (issue #38) ---------------------------
def _probe_samples(tmp_path, cfg):
    """A watermark probe's samples file: texts nested under `texts.*`, only the marked ones planted."""
    rows = []
    for i in range(2):
        marked = as_text(planted(cfg, 120, 1.0, seed=10 + i, vocab=4096))
        plain = as_text(planted(WatermarkConfig("unrelated", scheme="prev"), 120, 1.0, seed=20 + i, vocab=4096))
        rows.append({"id": f"p{i}", "texts": {"marked_sampled": marked, "plain_sampled": plain}, "z": {}})
    path = tmp_path / "samples_prose_continue_2026.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _flags(out):
    return [r["watermarked"] for r in json.loads(out.read_text())["texts"]]


def test_detect_reads_the_probes_samples_by_dotted_path_with_the_key_from_env(tmp_path, word_tokenizer, monkeypatch, capsys):
    src = _probe_samples(tmp_path, WatermarkConfig("s3cret-key", scheme="prev"))
    monkeypatch.setenv("WM_KEY", "s3cret-key")
    for field, expected in (("texts.marked_sampled", [True, True]), ("texts.plain_sampled", [False, False])):
        out = tmp_path / f"{field}.json"
        assert main(["watermark", "detect", str(src), "--key-env", "WM_KEY", "--tokenizer", "x/y", "--scheme", "prev",
                     "--text-field", field, "--output", str(out)]) == 0
        assert _flags(out) == expected and json.loads(out.read_text())["text_field"] == field
    captured = capsys.readouterr()
    assert "s3cret-key" not in captured.out + captured.err + (tmp_path / "texts.marked_sampled.json").read_text()
    assert "warning" not in captured.err
    assert main(["watermark", "detect", str(src), "--key-env", "WM_KEY", "--tokenizer", "x/y",
                 "--text-field", "texts.paraphrase"]) == 2
    assert "samples_prose_continue_2026.jsonl:1: no string field 'texts.paraphrase'" in capsys.readouterr().err


def test_key_from_a_file_and_the_errors_name_the_source_not_the_key(tmp_path, word_tokenizer, monkeypatch, capsys):
    src = _probe_samples(tmp_path, WatermarkConfig("from-file", scheme="prev"))
    (tmp_path / "key").write_text("from-file\n")
    out = tmp_path / "o.json"
    assert main(["watermark", "detect", str(src), "--key-file", str(tmp_path / "key"), "--tokenizer", "x/y",
                 "--scheme", "prev", "--text-field", "texts.marked_sampled", "--output", str(out)]) == 0
    assert _flags(out) == [True, True]
    capsys.readouterr()
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    for flags, message in ((["--key-env", "NO_SUCH_KEY"], "--key-env NO_SUCH_KEY: the variable is not set"),
                           (["--key-file", str(tmp_path / "absent")], "--key-file"),
                           (["--key-file", str(tmp_path / "empty")], "the file is empty")):
        (tmp_path / "empty").write_text("")
        assert main(["watermark", "detect", str(src), *flags, "--tokenizer", "x/y", "--text-field", "texts.marked_sampled"]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and err.count("\n") == 0
    with pytest.raises(SystemExit) as stop:  # no key at all: a usage error
        main(["watermark", "detect", str(src), "--tokenizer", "x/y"])
    assert stop.value.code == 2 and "--key-env" in capsys.readouterr().err


def test_key_on_argv_and_the_default_key_each_warn_in_one_line(tmp_path, word_tokenizer, monkeypatch, capsys):
    src = tmp_path / "t.txt"
    src.write_text(as_text(range(100, 200)))
    assert main(["watermark", "detect", str(src), "--key", "mine", "--tokenizer", "x/y", "--output", str(tmp_path / "a.json")]) == 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "--key is visible" in line and "--key-env" in line
    monkeypatch.setenv("WM_KEY", "llmassay")  # the probe's default, printed by `llmassay probes`
    assert main(["watermark", "detect", str(src), "--key-env", "WM_KEY", "--tokenizer", "x/y", "--output", str(tmp_path / "b.json")]) == 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "public default" in line and "forge" in line


def test_default_key_of_the_probe_is_the_one_warned_about():
    from llmassay.probes.watermark import WatermarkOptions
    from llmassay.watermark.keys import DEFAULT_KEY

    assert WatermarkOptions().key == DEFAULT_KEY


def test_field_at_reads_dotted_paths():
    from llmassay.cli.watermark import field_at

    record = {"texts": {"marked_sampled": "a"}, "a.b": "whole", "n": 3}
    assert field_at(record, "texts.marked_sampled") == "a" and field_at(record, "a.b") == "whole"
    assert field_at(record, "texts.missing") is None and field_at(record, "n.x") is None


@pytest.mark.slow
def test_generate_then_detect_on_smollm2(tmp_path, smollm2_path, monkeypatch, capsys):
    """`watermark generate` writes prompt/text JSONL from the real model; `detect` with the same
    key (tokenizer only) flags both texts, with another key neither."""
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in (
        "Write a short story about a village by a river.", "Describe a busy market in the morning.")))
    monkeypatch.setenv("WM_KEY", "generate-test")
    out = tmp_path / "marked.jsonl"
    assert main(["watermark", "generate", "--model", "llamacpp/smollm2-135m", "--model-args", "n_threads=1",
                 "--key-env", "WM_KEY", "--prompts", str(prompts), "--max-tokens", "60", "--seed", "1",
                 "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [json.loads(line)["prompt"] for line in prompts.read_text().splitlines()]
    assert all(len(r["text"].split()) > 10 for r in rows) and set(rows[0]) == {"prompt", "text"}
    assert "generate-test" not in out.read_text() + capsys.readouterr().out
    found = tmp_path / "found.json"
    assert main(["watermark", "detect", str(out), "--key-env", "WM_KEY", "--tokenizer", "llamacpp/smollm2-135m",
                 "--output", str(found)]) == 0
    assert _flags(found) == [True, True]
    monkeypatch.setenv("WM_KEY", "another-key")
    assert main(["watermark", "detect", str(out), "--key-env", "WM_KEY", "--tokenizer", "llamacpp/smollm2-135m",
                 "--output", str(found)]) == 0
    assert _flags(found) == [False, False]
