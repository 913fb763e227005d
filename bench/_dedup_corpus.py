"""The seeded synthetic corpus of the dedup benchmark, and its truth file.

Base documents draw words from English word frequencies (`wordfreq`, top 20,000 words,
weighted by frequency) with sentence punctuation and capitals. Planted copies: exact
copies and copies with 0-10 % word edits (substitute / delete / insert), half of each with
case, punctuation and whitespace noise. The truth file lists every pair inside a family
(an original and its copies) with its exact Jaccard on word 5-grams of normalised text
(lowercase, punctuation → space, whitespace split: llmassay's normaliser).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from pathlib import Path

import numpy as np

PUNCT_NOISE = [",", ";", ":", "!", "?", "...", " -", "'", '"', ")"]


def _vocabulary(n: int = 20_000) -> tuple[list[str], np.ndarray]:
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", n * 2) if re.fullmatch(r"[a-z]+", w)][:n]
    freqs = np.array([wordfreq.word_frequency(w, "en") for w in words])
    return words, freqs / freqs.sum()


def _base_doc(rng: np.random.Generator, words: list[str], p: np.ndarray, n_words: int) -> str:
    ids = rng.choice(len(words), size=n_words, p=p)
    out, sentence = [], 0
    for k, i in enumerate(ids):
        w = words[i]
        if sentence == 0:
            w = w.capitalize()
        sentence += 1
        if sentence >= rng.integers(8, 25) or k == len(ids) - 1:
            w += "."
            sentence = 0
        elif rng.random() < 0.06:
            w += ","
        out.append(w)
    return " ".join(out)


def _edit(tokens: list[str], rate: float, rng: random.Random, words: list[str]) -> list[str]:
    out = []
    for t in tokens:
        r = rng.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(rng.choice(words))
        elif r < rate:
            out += [t, rng.choice(words)]
        else:
            out.append(t)
    return out


def _noise(text: str, rng: random.Random) -> str:
    """Case, punctuation and whitespace changes only: identical after normalisation."""
    out = []
    for tok in text.split():
        r = rng.random()
        if r < 0.15:
            tok = tok.upper()
        elif r < 0.3:
            tok = tok.lower()
        if rng.random() < 0.1:
            tok += rng.choice(PUNCT_NOISE)
        out.append(tok)
    seps = [" ", " ", " ", "  ", "\n", "\t"]
    return "".join(t + rng.choice(seps) for t in out).strip()


def normalised_shingles(text: str, k: int = 5) -> set[str]:
    from llmassay.audit.normalise import words

    w = words(text)
    return {" ".join(w[i : i + k]) for i in range(max(1, len(w) - k + 1))}


def generate(
    out_dir: Path, n_docs: int = 50_000, exact: int = 4_000, edited: int = 6_000, seed: int = 0
) -> tuple[Path, Path]:
    """corpus.jsonl (id = line index) and truth.jsonl ({a, b, jaccard, kind})."""
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus_path, truth_path = out_dir / "corpus.jsonl", out_dir / "truth.jsonl"
    words, p = _vocabulary()
    nrng = np.random.default_rng(seed)
    rng = random.Random(seed)
    n_base = n_docs - exact - edited
    lengths = np.clip(nrng.lognormal(mean=5.1, sigma=0.6, size=n_base).astype(int), 30, 2000)  # median ≈ 165 words
    texts = [_base_doc(nrng, words, p, int(n)) for n in lengths]
    family: dict[int, list[int]] = {}
    kinds: dict[int, str] = {}
    copies = [("exact", 0.0)] * exact + [("edited", None)] * edited
    rng.shuffle(copies)
    for kind, _ in copies:
        src = rng.randrange(n_base)
        tokens = texts[src].split()
        if kind == "edited":
            tokens = _edit(tokens, rng.uniform(0.0, 0.10), rng, words)
        text = " ".join(tokens)
        noisy = rng.random() < 0.5
        if noisy:
            text = _noise(text, rng)
        kinds[len(texts)] = f"{kind}{'+noise' if noisy else ''}"
        family.setdefault(src, [src]).append(len(texts))
        texts.append(text)
    order = list(range(len(texts)))
    rng.shuffle(order)  # copies do not all come after their originals
    position = {old: new for new, old in enumerate(order)}
    with corpus_path.open("w", encoding="utf-8") as handle:
        for old in order:
            handle.write(json.dumps({"id": position[old], "text": texts[old]}, ensure_ascii=False) + "\n")
    with truth_path.open("w", encoding="utf-8") as handle:
        for members in family.values():
            shingles = {m: normalised_shingles(texts[m]) for m in members}
            for a, b in itertools.combinations(members, 2):
                j = len(shingles[a] & shingles[b]) / len(shingles[a] | shingles[b])
                kind = kinds.get(b, "") if a == members[0] else f"siblings({kinds.get(a)},{kinds.get(b)})"
                pa, pb = sorted((position[a], position[b]))
                handle.write(json.dumps({"a": pa, "b": pb, "jaccard": round(j, 6), "kind": kind}) + "\n")
    return corpus_path, truth_path
