"""Dedup against brute force: exact Jaccard of word 5-gram sets on a planted corpus."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest

datasketch = pytest.importorskip("datasketch")

from llmassay.audit import CorpusSpec, DedupSettings, audit_dedup  # noqa: E402
from llmassay.audit.dedup import candidate_probability, choose_bands  # noqa: E402
from llmassay.audit.minhash import MinHashParams, SignatureBuilder, shingle_hashes  # noqa: E402
from llmassay.audit.normalise import normalise, word_hashes, words  # noqa: E402
from llmassay.cli import main  # noqa: E402
from llmassay.types import LlmassayError  # noqa: E402

VOCAB = [f"{a}{b}{c}" for a in "bcdfgklmnprst" for b in "aeiou" for c in "bdgklmnprstz"]


def _shingles(text: str, k: int = 5) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + k]) for i in range(max(1, len(w) - k + 1))}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b)


def _edit(tokens: list[str], rate: float, rng: random.Random) -> list[str]:
    out = []
    for t in tokens:
        r = rng.random()
        if r < rate / 3:
            continue  # delete
        if r < 2 * rate / 3:
            out.append(rng.choice(VOCAB))  # substitute
        elif r < rate:
            out += [t, rng.choice(VOCAB)]  # insert
        else:
            out.append(t)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    rng = random.Random(3)
    texts = [" ".join(rng.choice(VOCAB) for _ in range(rng.randint(60, 250))) for _ in range(400)]
    for i in range(120):  # copies of the first 120 documents, 0-10 % word edits, half with noise
        tokens = _edit(texts[i].split(), rng.uniform(0.0, 0.10), rng)
        text = " ".join(tokens)
        if i % 2:
            text = text.upper().replace(" ", ",  ", 5) + " !!!"
        texts.append(text)
    path = tmp_path_factory.mktemp("dedup") / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    shingles = [_shingles(t) for t in texts]
    truth = {}
    for i, j in itertools.combinations(range(len(texts)), 2):
        if len(shingles[i] & shingles[j]):
            truth[(i, j)] = _jaccard(shingles[i], shingles[j])
    return {"path": path, "texts": texts, "truth": truth}


def _found_pairs(audit) -> set[tuple[int, int]]:
    """Verified pairs plus exact duplicates, expanded to document pairs."""
    res = audit.result
    found = {tuple(sorted(p)) for p in res.pairs.tolist()}
    for cluster in res.clusters:
        found |= set(itertools.combinations(sorted(cluster), 2)) if len(cluster) == 2 else set()
    return found


def test_near_duplicate_recall_and_precision_against_brute_force(corpus: dict) -> None:
    audit = audit_dedup(CorpusSpec((str(corpus["path"]),)), DedupSettings(threshold=0.8))
    found = _found_pairs(audit)
    positives = {p for p, j in corpus["truth"].items() if j >= 0.8}
    assert len(positives) >= 30
    recall = len(positives & found) / len(positives)
    precision = sum(corpus["truth"].get(p, 0.0) >= 0.75 for p in found) / len(found)
    assert recall >= 0.95, recall
    assert precision == 1.0  # nothing below J = 0.75 passes the MinHash verification
    well_above = {p for p, j in corpus["truth"].items() if j >= 0.9}
    assert well_above <= found
    assert audit.result.bands * audit.result.rows <= 128


def test_exact_duplicates_after_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "c.txt"
    base = " ".join(VOCAB[:40])
    path.write_text(f"{base}\n{base.upper()}!!\n{base.replace(' ', ' ,  ')}\n{' '.join(VOCAB[100:160])}\n\n")
    out = tmp_path / "dedup.jsonl"
    audit = audit_dedup(CorpusSpec((str(path),)), DedupSettings(), output=out)
    assert audit.result.summary()["exact_duplicate_docs"] == 2
    assert audit.result.kept == 2 and audit.result.clusters == [[0, 1, 2]]
    kept = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert kept == [base, " ".join(VOCAB[100:160])]


def test_signatures_equal_datasketch_minhash() -> None:
    """Batch signatures (short, empty and long documents together) equal datasketch's
    MinHash fed the same shingle hashes one document at a time."""
    params = MinHashParams(num_perm=64, seed=5, shingle=3)
    texts = ["One, two three four five six seven!", "tiny", "", "a b", " ".join(VOCAB[:300])]
    normalised = [normalise(t) for t in texts]
    sigs = SignatureBuilder(params).signatures(normalised)
    assert (sigs[2] == 0xFFFFFFFF).all()
    for text, sig in zip(normalised, sigs):
        if not text:
            continue
        m = datasketch.MinHash(num_perm=64, seed=5, hashfunc=lambda x: x)
        m.update_batch(shingle_hashes(word_hashes(text), 3).tolist())
        assert np.array_equal(m.hashvalues, sig)


def test_word_hashes_are_stable_and_distinct() -> None:
    h = word_hashes("the cat sat on the mat")
    assert h[0] == h[4] and len(set(h.tolist())) == 5
    assert word_hashes("the")[0] == h[0]  # a word's hash does not depend on its neighbours
    assert int(word_hashes("llmassay")[0]) == 0x4C3A47082D46A13  # pinned: hashes must not change between runs
    assert len(set(word_hashes(" ".join(str(i) for i in range(50_000))).tolist())) == 50_000


def test_band_choice_and_s_curve() -> None:
    assert candidate_probability(0.8, 9, 13) == pytest.approx(0.399, abs=0.001)  # datasketch's 9 x 13
    bands, rows = choose_bands(0.8, 128)
    assert (bands, rows) == (21, 6)
    assert candidate_probability(0.8, bands, rows) >= 0.99
    assert candidate_probability(0.8, 128 // (rows + 1), rows + 1) < 0.99  # one more row would miss the target


def test_cli_verify_option(jaccard_pairs: dict, tmp_path: Path) -> None:
    """--verify estimate keeps pairs at J 0.75-0.8 that the default exact check rejects."""
    counts = {}
    for mode in ("exact", "estimate"):
        out = tmp_path / mode
        assert main(["audit", "dedup", "--corpus", str(jaccard_pairs["path"]), "--verify", mode, "--output-dir",
                     str(out)]) == 0
        report = json.loads((out / "dedup.json").read_text())
        assert report["settings"]["verify"] == mode
        counts[mode] = report["counts"]["verified_pairs"]
    assert counts["exact"] == 160 and counts["estimate"] != 160
    with pytest.raises(SystemExit):  # argparse's choices
        main(["audit", "dedup", "--corpus", str(jaccard_pairs["path"]), "--verify", "guess"])


def test_cli_dedup_writes_report_clusters_and_corpus(corpus: dict, tmp_path: Path) -> None:
    assert main(["audit", "dedup", "--corpus", str(corpus["path"]), "--output-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "dedup.json").read_text())
    counts = report["counts"]
    assert (
        counts["docs"] == 520
        and counts["kept_docs"] + counts["exact_duplicate_docs"] + counts["near_duplicate_docs"] == 520
    )
    assert report["settings"]["bands"] == 21 and report["settings"]["s_curve"]["0.8"] >= 0.99
    assert len((tmp_path / "deduplicated.jsonl").read_text().splitlines()) == counts["kept_docs"]
    assert len((tmp_path / "dedup_clusters.jsonl").read_text().splitlines()) == counts["clusters"]


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(LlmassayError, match="--threshold"):
        DedupSettings(threshold=1.5)
    with pytest.raises(LlmassayError, match="--bands"):
        DedupSettings(bands=500)
    with pytest.raises(LlmassayError, match="--verify: 'guess'"):
        DedupSettings(verify="guess")


BUCKETS = ((0.7, 0.75), (0.75, 0.8), (0.8, 0.85), (0.85, 0.9), (0.9, 1.0))


def _word(i: int) -> str:
    """A distinct letters-only word per integer, so no two planted pairs share a shingle."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out += "abcdefghijklmnopqrstuvwxyz"[r]
        if not i:
            return "q" + out


@pytest.fixture(scope="module")
def jaccard_pairs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Pairs with planted word-5-gram Jaccard: B keeps A's first p of L words and replaces the
    rest, so they share p - 4 of 2L - 4 - p shingles. 40 pairs per bucket, and 40 at exactly
    J = 0.8 (L ≡ 4 mod 9, p = (8L + 4) / 9)."""
    rng = random.Random(11)
    fresh = itertools.count()
    texts, truth = [], {}

    def plant(length: int, p: int) -> float:
        a = [_word(next(fresh)) for _ in range(length)]
        b = a[:p] + [_word(next(fresh)) for _ in range(length - p)]
        truth[(len(texts), len(texts) + 1)] = (p - 4) / (2 * length - 4 - p)
        texts.extend([" ".join(a), " ".join(b)])
        return truth[(len(texts) - 2, len(texts) - 1)]

    for lo, hi in BUCKETS:
        made = 0
        while made < 40:
            length = rng.randint(150, 300)
            target = rng.uniform(lo, hi)
            p = round((4 + target * (2 * length - 4)) / (1 + target))
            j = (p - 4) / (2 * length - 4 - p)
            if lo < j < hi:
                plant(length, p)
                made += 1
    at_threshold = set()
    for length in range(148, 148 + 9 * 40, 9):
        plant(length, (8 * length + 4) // 9)
        at_threshold.add((len(texts) - 2, len(texts) - 1))
    path = tmp_path_factory.mktemp("jaccard") / "pairs.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return {"path": path, "texts": texts, "truth": truth, "at_threshold": at_threshold}


def test_planted_jaccard_is_what_brute_force_computes(jaccard_pairs: dict) -> None:
    texts = jaccard_pairs["texts"]
    for (a, b), j in jaccard_pairs["truth"].items():
        assert _jaccard(_shingles(texts[a]), _shingles(texts[b])) == pytest.approx(j, abs=1e-12)
    assert {j for p, j in jaccard_pairs["truth"].items() if p in jaccard_pairs["at_threshold"]} == {0.8}


def test_exact_verification_recall_is_one_above_the_threshold_and_zero_below(jaccard_pairs: dict) -> None:
    from llmassay.audit.dedup import recall_by_jaccard

    spec = CorpusSpec((str(jaccard_pairs["path"]),))
    truth, at = jaccard_pairs["truth"], jaccard_pairs["at_threshold"]
    exact = audit_dedup(spec, DedupSettings(threshold=0.8, verify="exact"))
    estimate = audit_dedup(spec, DedupSettings(threshold=0.8, verify="estimate"))
    by_exact = recall_by_jaccard(_found_pairs(exact), truth, BUCKETS)
    by_estimate = recall_by_jaccard(_found_pairs(estimate), truth, BUCKETS)
    assert [n for _, n in by_exact.values()] == [40, 40, 80, 40, 40]  # 0.8-0.85 holds the 40 at exactly 0.8
    assert {b: r for b, (r, _) in by_exact.items()} == {
        "0.7-0.75": 0.0, "0.75-0.8": 0.0, "0.8-0.85": 1.0, "0.85-0.9": 1.0, "0.9-1": 1.0
    }
    # The values compared with the threshold are the planted ones.
    got = dict(zip(map(tuple, exact.result.pairs.tolist()), exact.result.pair_jaccard.tolist()))
    assert len(got) == 160 and all(got[p] == pytest.approx(truth[p], abs=1e-12) for p in got)
    # The MinHash estimate (128 permutations) loses pairs just above the threshold, about
    # half of those exactly at it, and lets some just below it through.
    at_estimate = recall_by_jaccard(_found_pairs(estimate), {p: truth[p] for p in at}, ((0.8, 0.8),))["0.8"][0]
    assert recall_by_jaccard(_found_pairs(exact), {p: truth[p] for p in at}, ((0.8, 0.8),))["0.8"][0] == 1.0
    assert 0.2 <= at_estimate <= 0.8, at_estimate
    assert by_estimate["0.8-0.85"][0] < 0.95 and by_estimate["0.75-0.8"][0] > 0.0
    assert by_estimate["0.9-1"][0] == 1.0 and by_estimate["0.7-0.75"][0] < 0.2
    assert exact.report()["settings"]["verification"].startswith("exact Jaccard")
    assert estimate.report()["settings"]["verification"].startswith("MinHash")
    assert exact.report()["verify_stream"]["throughput"]["docs"] == len(jaccard_pairs["texts"])
    assert estimate.report()["verify_stream"] is None
