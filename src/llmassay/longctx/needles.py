"""Needles: a fact to hide, the question that asks for it, and its exact answer.

Kinds (RULER's and gkamradt's, see scripts/build_needle_sample.py for the bundled ones):
`passkey` (a number), `uuid` (a random UUID under a key), `kv` (a number under a
two-word key) and `nonlexical` (a fact that shares no word with its question, so string
matching between question and text cannot find it). Answers are scored by whether the
exact value appears in the answer as a whole token — no judge, and a correct answer in a
full sentence counts (gkamradt's NIAH #39: a judge penalised correct verbose answers).
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmassay.types import LlmassayError

KINDS = ("passkey", "uuid", "kv", "nonlexical")
_WORD = re.compile(r"[a-z0-9]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Needle:
    text: str
    question: str
    answer: str
    kind: str = "custom"

    @staticmethod
    def from_doc(doc: dict[str, Any], where: str) -> Needle:
        """A needle from a task item's fields `needle`, `question`, `answer` (and `kind`)."""
        missing = [k for k in ("needle", "question", "answer") if not str(doc.get(k) or "").strip()]
        if missing:
            raise LlmassayError(f"{where}: needle items need the fields needle, question and answer ({', '.join(missing)} missing)")
        needle = Needle(str(doc["needle"]).strip(), str(doc["question"]).strip(), str(doc["answer"]).strip(),
                        str(doc.get("kind") or "custom"))
        if not found(needle.text, needle.answer):
            raise LlmassayError(f"{where}: the answer {needle.answer!r} does not appear in its needle text")
        return needle


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def shares_words(needle: Needle) -> set[str]:
    """Words the question has in common with the needle (the answer itself excluded)."""
    return (words(needle.text) & words(needle.question)) - words(needle.answer)


def found(generation: str, answer: str) -> bool:
    """The answer appears in the generation as a whole token (case and spacing aside)."""
    text = _SPACE.sub(" ", generation.lower())
    value = _SPACE.sub(" ", answer.lower().strip())
    return bool(value) and re.search(r"(?<![a-z0-9])" + re.escape(value) + r"(?![a-z0-9])", text) is not None


# -- the bundled needles, generated from a seed -------------------------------------------------
_ADJECTIVES = ("amber", "brisk", "cobalt", "dusty", "eager", "frosty", "gentle", "hollow", "ivory", "jagged",
               "lunar", "mellow", "nimble", "olive", "placid", "quiet", "rustic", "silver", "tawny", "velvet")
_NOUNS = ("anchor", "badger", "candle", "dolphin", "ember", "falcon", "garden", "harbour", "island", "juniper",
          "kettle", "lantern", "meadow", "orchard", "pebble", "quarry", "river", "saddle", "thistle", "willow")
_NAMES = ("Ada", "Beatrix", "Clara", "Dora", "Edith", "Freya", "Greta", "Hilda", "Ingrid", "Judith")
# (needle, question): no word in common, checked by the builder and by a test.
_NONLEXICAL = (
    ("{name}'s locker combination: {num}.", "Which digits open her safe?"),
    ("Grandmother hid {num} beneath a loose floorboard.", "What figure did an elderly relative conceal?"),
    ("The harbour pilot's boat carries registration {num}.", "What number identifies that vessel?"),
    ("{name} scribbled {num} inside her diary cover.", "Which code did the woman write down?"),
)


def make_needle(kind: str, rng: random.Random) -> Needle:
    """One needle of `kind`, all its randomness drawn from `rng`."""
    if kind == "passkey":
        num = str(rng.randrange(10_000, 100_000))
        return Needle(f"The pass key is {num}. Remember it. {num} is the pass key.", "What is the pass key?", num, kind)
    if kind == "uuid":
        key = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}"
        value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return Needle(f"The special magic uuid for {key} is: {value}.",
                      f"What is the special magic uuid for {key}?", value, kind)
    if kind == "kv":
        key = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}"
        num = str(rng.randrange(1_000_000, 10_000_000))
        return Needle(f"One of the special magic numbers for {key} is: {num}.",
                      f"What is the special magic number for {key}?", num, kind)
    if kind == "nonlexical":
        template, question = rng.choice(_NONLEXICAL)
        num = str(rng.randrange(10_000, 100_000))
        return Needle(template.format(name=rng.choice(_NAMES), num=num), question, num, kind)
    raise LlmassayError(f"unknown needle kind {kind!r} (known: {', '.join(KINDS)})")


def make_needles(n: int, seed: int, kinds: Sequence[str] = KINDS) -> list[Needle]:
    """n needles cycling through `kinds`, reproducible from `seed`, no two with one answer
    or one question unless the kind asks the same question (passkey)."""
    rng = random.Random(seed)
    out: list[Needle] = []
    seen: set[str] = set()
    while len(out) < n:
        needle = make_needle(kinds[len(out) % len(kinds)], rng)
        if needle.answer in seen:
            continue
        seen.add(needle.answer)
        out.append(needle)
    return out


def companions(needles: Sequence[Needle], index: int, k: int) -> list[Needle]:
    """The k−1 needles that share a haystack with needles[index]: the next ones in task
    order whose questions differ from its own and from each other (two pass keys in one
    text would make "the pass key" ambiguous). Fixed by the task's order, not by chunking."""
    own = needles[index]
    chosen: list[Needle] = []
    asked = {own.question}
    texts = {own.answer}
    for step in range(1, len(needles)):
        if len(chosen) >= k - 1:
            break
        other = needles[(index + step) % len(needles)]
        if other.question in asked or other.answer in texts or other.kind == "passkey":
            continue
        chosen.append(other)
        asked.add(other.question)
        texts.add(other.answer)
    if len(chosen) < k - 1:
        raise LlmassayError(f"-P needle.needles={k}: the task has only {len(chosen) + 1} needles with distinct questions")
    return chosen
