"""Under-trained tokens: in a GGUF written here with planted untrained rows, the indicator
must flag the invalid-UTF-8 byte tokens and the planted rows, never the frequent tokens,
and repeat-prompt confirmation must sort candidates by the planted repeat probability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmassay.tokens.gguf_vocab import INVALID_UTF8, read_vocab
from llmassay.tokens.glitch import candidates, compute_indicator, find_glitch_tokens, frequent_tokens, verdict
from llmassay.types import LlmassayError

N_NORMAL, N_UNUSED, N_GLITCH, DIM = 1800, 40, 10, 16


def write_gguf(path: Path, style: str = "llama", tied: bool = True, unused: bool = True) -> dict[str, list[int]]:
    """A vocabulary of byte tokens, normal words, planted under-trained words (`glitchN`) and
    (optionally) `<unusedN>` tokens. Trained rows: a shared offset plus a random direction
    of norm ≈ 4; untrained rows (invalid bytes, glitches, unused): the offset plus one common
    small vector and tiny noise, as rows that only ever received the same softmax push."""
    import gguf
    from gguf.vocab import bytes_to_unicode

    rng = np.random.default_rng(0)
    spell = bytes_to_unicode() if style == "gpt2" else {b: f"<0x{b:02X}>" for b in range(256)}
    tokens = ["<pad>", "<eos>"] + [spell[b] for b in range(256)] + [f"word{i}" for i in range(N_NORMAL)]
    tokens += [f"glitch{i}" for i in range(N_GLITCH)]
    if unused:
        tokens += [f"<unused{i}>" for i in range(N_UNUSED)]
    types = [3, 3] + [6 if style == "llama" else 1] * 256 + [1] * (N_NORMAL + N_GLITCH) + [3] * (N_UNUSED if unused else 0)
    index = {t: i for i, t in enumerate(tokens)}
    untrained = [index[spell[b]] for b in INVALID_UTF8] + [index[f"glitch{i}"] for i in range(N_GLITCH)]
    if unused:
        untrained += [index[f"<unused{i}>"] for i in range(N_UNUSED)]
    offset = rng.normal(size=DIM) * 3
    emb = offset + rng.normal(size=(len(tokens), DIM)).astype(np.float32)
    common = rng.normal(size=DIM) * 0.5
    emb[untrained] = offset * 0.2 + common + rng.normal(size=(len(untrained), DIM)) * 0.01
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model(style)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_tensor("token_embd.weight", emb.astype(np.float32))
    if not tied:
        writer.add_tensor("output.weight", rng.normal(size=(len(tokens), DIM)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    frequent = [index[f"word{i}"] for i in range(20)]
    return {"invalid": untrained[:len(INVALID_UTF8)], "glitch": untrained[len(INVALID_UTF8):len(INVALID_UTF8) + N_GLITCH],
            "frequent": frequent}


class PlantedProber:
    """Repeats every token with probability 0.6 except the planted under-trained ones (1e-5)."""

    templates = ("repeat: <token>",)

    def __init__(self, untrained: set[int]) -> None:
        self.untrained = untrained
        self.asked: list[int] = []

    def max_probs(self, token_ids: list[int]) -> list[float]:
        self.asked += token_ids
        return [1e-5 if t in self.untrained else 0.6 for t in token_ids]


@pytest.mark.parametrize("style", ["llama", "gpt2"])
def test_tied_indicator_flags_planted_rows_against_declared_unused(tmp_path, style: str) -> None:
    planted = write_gguf(tmp_path / "m.gguf", style)
    vocab = read_vocab(tmp_path / "m.gguf")
    assert vocab.tied and sorted(vocab.invalid_utf8_tokens()) == sorted(planted["invalid"])
    ind = compute_indicator(vocab)
    assert "declared unused tokens (40)" == ind.reference
    cand = set(candidates(ind))
    assert len(cand) == int(np.ceil(0.02 * ind.eligible.sum()))
    assert set(planted["invalid"]) <= cand and set(planted["glitch"]) <= cand
    assert not cand & set(planted["frequent"])
    assert not cand & set(ind.reference_ids)  # the reference is not a finding


def test_without_declared_unused_the_invalid_bytes_are_the_reference_left_one_out(tmp_path) -> None:
    planted = write_gguf(tmp_path / "m.gguf", unused=False)
    ind = compute_indicator(read_vocab(tmp_path / "m.gguf"))
    assert ind.reference.startswith("byte tokens invalid in UTF-8 (13, leave-one-out)")
    cand = set(candidates(ind))
    assert set(planted["invalid"]) <= cand and set(planted["glitch"]) <= cand
    assert not cand & set(planted["frequent"])


def test_an_indicator_that_flags_frequent_tokens_is_called_out(tmp_path) -> None:
    planted = write_gguf(tmp_path / "m.gguf")
    glitches = planted["glitch"]
    report = find_glitch_tokens(read_vocab(tmp_path / "m.gguf"), None, max_confirm=5, n_controls=0, frequent=glitches)
    assert report.planted["frequent_flagged"] == N_GLITCH and report.planted["frequent_not_flagged"] is False
    assert all(f.verdict == "unchecked" for f in report.checked)


def test_untied_embeddings_use_the_norm(tmp_path) -> None:
    planted = write_gguf(tmp_path / "m.gguf", tied=False)
    vocab = read_vocab(tmp_path / "m.gguf")
    ind = compute_indicator(vocab)
    assert not vocab.tied and ind.name.startswith("embedding norm")
    cand = set(candidates(ind))
    assert set(planted["glitch"]) <= cand and not cand & set(planted["frequent"])


def test_confirmation_recovers_the_planted_repeat_probabilities(tmp_path) -> None:
    planted = write_gguf(tmp_path / "m.gguf")
    prober = PlantedProber(set(planted["invalid"]) | set(planted["glitch"]))
    report = find_glitch_tokens(read_vocab(tmp_path / "m.gguf"), prober, max_confirm=50, n_controls=10,
                                frequent=planted["frequent"])
    strong = {f.id for f in report.confirmed("strong")}
    assert strong == set(planted["invalid"]) | set(planted["glitch"])
    assert all(f.verdict == "not confirmed" for f in report.checked if f.id not in strong)
    assert len(report.controls) == 10 and all(f.verdict == "not confirmed" for f in report.controls)
    assert report.planted["invalid_utf8_flagged"] == 13 and report.planted["frequent_flagged"] == 0
    assert report.planted["invalid_utf8_verdicts"] == {"strong": 13} and report.planted["frequent_not_flagged"]
    assert [f.rank for f in report.checked] == sorted(f.rank for f in report.checked)
    json.dumps(report.as_dict())  # the CLI writes it as JSON
    again = find_glitch_tokens(read_vocab(tmp_path / "m.gguf"), PlantedProber(set()), max_confirm=50, n_controls=10)
    assert [f.id for f in again.controls] == [f.id for f in report.controls]  # seeded


def test_verdict_thresholds_and_frequent_tokens() -> None:
    assert [verdict(p) for p in (0.0009, 0.001, 0.09, 0.1)] == ["strong", "weak", "weak", "not confirmed"]
    assert frequent_tokens(lambda s: [len(w) for w in s.split()], ["a bb a", "ccc a"], n=2) == [1, 2]


def test_a_file_that_is_not_gguf_is_a_one_line_error(tmp_path) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"not a gguf file at all")
    with pytest.raises(LlmassayError, match="not a readable GGUF file"):
        read_vocab(path)


@pytest.mark.slow
def test_gemma_invalid_bytes_are_flagged_and_confirmed(tmp_path) -> None:
    """Planted truth on the real model: Gemma's 13 byte tokens that valid UTF-8 never produces
    fall in its top 2 % against the <unusedN> reference, no frequent token does, and the top
    candidate and an invalid byte fail to repeat while a frequent token repeats. (Most of the
    time goes to parsing the 262k-token vocabulary; only three tokens are put to the model.)"""
    from llmassay.models import resolve_model_path
    from llmassay.tokens.repeat import LlamaCppProber

    path = resolve_model_path("gemma3-270m")
    vocab = read_vocab(path)
    prober = LlamaCppProber(str(path))
    frequent = frequent_tokens(lambda s: prober.llm.tokenize(s.encode(), add_bos=False, special=False),
                               ["All human beings are born free and equal in dignity and rights. " * 3])
    report = find_glitch_tokens(vocab, None, max_confirm=1, n_controls=0, frequent=frequent)
    assert report.planted["invalid_utf8_flagged"] == 13 and report.planted["frequent_not_flagged"]
    top, invalid, common = prober.max_probs([report.checked[0].id, vocab.invalid_utf8_tokens()[0], frequent[0]])
    assert top < 0.001 and invalid < 0.001 and common > 0.1
