"""Named, seeded prompt perturbations: the same question, asked differently.

Content perturbations change a document field (the question, the options, their order,
the few-shot draw) and re-render the item through the task's own templates; format
perturbations rewrite the rendered prompt (option labels, field names, separators,
instruction wording). Every perturbation is a pure function of (task, sample, rng) and
the rng is seeded per (seed, perturbation, sample id), so a variant is reproducible. A
perturbation that does not apply to an item (rotation k of an item with k or fewer
options) returns None: the item simply has no such variant.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass

from llmassay.tasks.loader import Task
from llmassay.types import Sample

QUESTION_FIELDS = ("question", "input", "query", "prompt", "text")
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Variant:
    """One perturbed view of an item. `order[slot]` is the canonical option index shown in
    that slot, so predictions map back to canonical options for flips and ensembles."""

    prompt: str
    choices: tuple[str, ...]
    order: tuple[int, ...]

    def slot_of(self, canonical_index: int) -> int:
        return self.order.index(canonical_index)


PerturbFn = Callable[[Task, Sample, random.Random], "Variant | None"]
CONTROL = "control"


@dataclass(frozen=True)
class Perturbation:
    """`fresh`: the variant's requests must be computed again, never served from the
    canonical's (dedup, cache) — the re-ask control."""

    name: str
    family: str
    description: str
    fn: PerturbFn
    fresh: bool = False

    @property
    def is_control(self) -> bool:
        return self.family == CONTROL

    def apply(self, task: Task, sample: Sample, seed: int) -> Variant | None:
        return self.fn(task, sample, random.Random(f"{seed}:{self.name}:{sample.id}"))


def canonical(task: Task, sample: Sample) -> Variant:
    choices = tuple(sample.choices or ())
    return Variant(sample.prompt, choices, tuple(range(len(choices))))


def _identity(task: Task, sample: Sample, rng: random.Random) -> Variant:
    return canonical(task, sample)


# -- content: the question field ---------------------------------------------------------
def _question_key(sample: Sample) -> str | None:
    return next((k for k in QUESTION_FIELDS if isinstance(sample.doc.get(k), str)), None)


def _on_question(edit: Callable[[str, random.Random], str]) -> PerturbFn:
    def fn(task: Task, sample: Sample, rng: random.Random) -> Variant:
        key = _question_key(sample)
        if key is None:
            return canonical(task, sample)
        changed = task.rerender(sample, {**sample.doc, key: edit(sample.doc[key], rng)})
        return Variant(changed.prompt, tuple(changed.choices or ()), tuple(range(len(changed.choices or ()))))

    return fn


def _strip_punctuation(text: str, rng: random.Random) -> str:
    return re.sub(r"[?.!,;:]", "", text)


def _add_punctuation(text: str, rng: random.Random) -> str:
    text = text.rstrip()
    return text + ("?" if text[-1:] not in "?.!" else text[-1])


def _swap_terminal(text: str, rng: random.Random) -> str:
    text = text.rstrip()
    if text.endswith("?"):
        return text[:-1] + "."
    if text.endswith("."):
        return text[:-1] + "?"
    return text + "."


def _typos(rate: float) -> Callable[[str, random.Random], str]:
    """Character-level noise on letters: swap with the next letter, drop, or double."""

    def edit(text: str, rng: random.Random) -> str:
        chars = list(text)
        out: list[str] = []
        i = 0
        while i < len(chars):
            c = chars[i]
            if c.isalpha() and rng.random() < rate:
                op = rng.choice(("swap", "drop", "double"))
                if op == "swap" and i + 1 < len(chars) and chars[i + 1].isalpha():
                    out += [chars[i + 1], c]
                    i += 2
                    continue
                if op == "double":
                    out += [c, c]
                # drop: nothing appended
            else:
                out.append(c)
            i += 1
        return "".join(out)

    return edit


def _reorder_sentences(text: str, rng: random.Random) -> str:
    """Shuffle the statements before the final sentence (the question itself stays last)."""
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    head, last = sentences[:-1], sentences[-1:]
    if len(head) < 2:
        return text
    shuffled = head[:]
    for _ in range(10):
        rng.shuffle(shuffled)
        if shuffled != head:
            break
    return " ".join(shuffled + last)


def _random_words(text: str, rng: random.Random) -> str:
    return " ".join(
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 8))) for _ in text.split()
    )


def _scramble(task: Task, sample: Sample, rng: random.Random) -> Variant:
    """Control: question and option texts replaced by random letters (nothing left to know)."""
    data = dict(sample.doc)
    key = _question_key(sample)
    if key is not None:
        data[key] = _random_words(data[key], rng)
    if isinstance(data.get("choices"), list):
        data["choices"] = [_random_words(str(c), rng) for c in data["choices"]]
    changed = task.rerender(sample, data)
    return Variant(changed.prompt, tuple(changed.choices or ()), tuple(range(len(changed.choices or ()))))


# -- content: option order -----------------------------------------------------------------
def _rotated(options: list, k: int) -> list:
    return [options[(slot + k) % len(options)] for slot in range(len(options))]


def _rotate_options(k: int) -> PerturbFn:
    """Options cyclically shifted by k. Only rotations 1..n−1 of an item with n options
    exist, and one that shows the same option list as an earlier rotation (repeated option
    texts) or the same prompt as the canonical one (templates that do not show the options)
    is dropped: a repeat would weigh one order twice in every aggregate."""

    def fn(task: Task, sample: Sample, rng: random.Random) -> Variant | None:
        options = sample.doc.get("choices")
        if not isinstance(options, list) or not 0 < k < len(options):
            return None
        rotated = _rotated(options, k)
        if any(_rotated(options, j) == rotated for j in range(k)):
            return None
        order = tuple((slot + k) % len(options) for slot in range(len(options)))
        changed = task.rerender(sample, {**sample.doc, "choices": rotated})
        if changed.prompt == sample.prompt:
            return None  # the options are not shown: the same question, the same answers
        return Variant(changed.prompt, tuple(changed.choices or ()), order)

    return fn


# -- content: few-shot draw and order ---------------------------------------------------
def _fewshot_reseed(task: Task, sample: Sample, rng: random.Random) -> Variant:
    changed = task.rerender(sample, fewshot_seed=f"reseed:{rng.random()}")
    return Variant(changed.prompt, tuple(changed.choices or ()), tuple(range(len(changed.choices or ()))))


def _fewshot_order(task: Task, sample: Sample, rng: random.Random) -> Variant:
    changed = task.rerender(sample, shot_order_seed=f"order:{rng.random()}")
    return Variant(changed.prompt, tuple(changed.choices or ()), tuple(range(len(changed.choices or ()))))


# -- format: the rendered prompt ---------------------------------------------------------
_OPTION_LINE = re.compile(r"(?m)^([A-J])\. ")


def _labels(style: str) -> PerturbFn:
    """Option labels `A.` → `(A)`, `A)` or `1.`; numeric labels renumber the answers too."""

    def fn(task: Task, sample: Sample, rng: random.Random) -> Variant:
        base = canonical(task, sample)
        if not _OPTION_LINE.search(base.prompt):
            return base
        if style == "numeric":
            if not all(c in LETTERS for c in base.choices):
                return base
            prompt = _OPTION_LINE.sub(lambda m: f"{LETTERS.index(m.group(1)) + 1}. ", base.prompt)
            choices = tuple(str(LETTERS.index(c) + 1) for c in base.choices)
            return Variant(prompt, choices, base.order)
        template = {"paren": "({}) ", "bracket": "{}) "}[style]
        return Variant(_OPTION_LINE.sub(lambda m: template.format(m.group(1)), base.prompt), base.choices, base.order)

    return fn


def _rewrite(pattern: str, replacement: str) -> PerturbFn:
    compiled = re.compile(pattern)

    def fn(task: Task, sample: Sample, rng: random.Random) -> Variant:
        base = canonical(task, sample)
        return Variant(compiled.sub(replacement, base.prompt), base.choices, base.order)

    return fn


def _chain(*fns: PerturbFn) -> PerturbFn:
    def fn(task: Task, sample: Sample, rng: random.Random) -> Variant:
        variant = canonical(task, sample)
        for step in fns:
            step_sample = Sample(sample.id, variant.prompt, list(variant.choices), sample.target, sample.doc)
            variant = step(task, step_sample, rng)
        return variant

    return fn


INSTRUCTIONS = (
    "The following are multiple choice questions (with answers) about {subject}.",
    "Answer the following multiple choice questions about {subject}.",
    "Here are some multiple-choice questions on {subject}, each followed by its answer.",
    "Choose the correct option for each question about {subject}.",
    "Below are exam questions about {subject}. Pick the single best answer.",
    "Multiple choice quiz: {subject}. Select the right letter.",
    "You are an expert in {subject}. Answer each multiple choice question.",
    "Read each question about {subject} and give the letter of the correct answer.",
    "Test your knowledge of {subject}: one answer per question is correct.",
    "Questions about {subject} follow, with options A to D and the answer.",
)


def _instruction(k: int) -> PerturbFn:
    def fn(task: Task, sample: Sample, rng: random.Random) -> Variant:
        base = canonical(task, sample)
        subject = str(sample.doc.get("subject", "general knowledge"))
        wording = INSTRUCTIONS[k].format(subject=subject)
        builder = task.builder
        current = builder.description_text(sample.doc, sample.id) if builder is not None else ""
        if current and base.prompt.startswith(current):
            prompt = wording + "\n\n" + base.prompt[len(current) :].lstrip("\n")
        else:
            prompt = wording + "\n\n" + base.prompt
        return Variant(prompt, base.choices, base.order)

    return fn


def _build_registry() -> dict[str, Perturbation]:
    items = [
        Perturbation("identity", CONTROL, "the canonical prompt, unchanged: its requests are the canonical ones "
                     "(deduplicated), so it checks the answer remapping (flip rate must be 0)", _identity),
        Perturbation("reask", CONTROL, "the canonical prompt asked again and computed afresh (no dedup, no cache): "
                     "backend nondeterminism, or sampling noise at temperature > 0", _identity, fresh=True),
        Perturbation("scramble", CONTROL, "question and options replaced by random letters (accuracy → chance)",
                     _scramble),
        Perturbation("case_lower", "capitalisation", "question lowercased", _on_question(lambda t, r: t.lower())),
        Perturbation("case_upper", "capitalisation", "question uppercased", _on_question(lambda t, r: t.upper())),
        Perturbation("case_title", "capitalisation", "question in Title Case", _on_question(lambda t, r: t.title())),
        Perturbation("punct_strip", "punctuation", "punctuation removed from the question",
                     _on_question(_strip_punctuation)),
        Perturbation("punct_add", "punctuation", "an extra terminal mark on the question",
                     _on_question(_add_punctuation)),
        Perturbation("punct_swap", "punctuation", "final '?' and '.' swapped", _on_question(_swap_terminal)),
        Perturbation("sep_space", "separators", "options on one line, separated by spaces",
                     _rewrite(r"\n(?=[B-J]\. )", " ")),
        Perturbation("sep_dash", "separators", "field separators ': ' → ' - '",
                     _rewrite(r"(?m)^(Question|Answer):", r"\1 -")),
        Perturbation("fields_short", "field names", "'Question:'/'Answer:' → 'Q:'/'A:'",
                     _chain(_rewrite(r"(?m)^Question:", "Q:"), _rewrite(r"(?m)^Answer:", "A:"))),
        Perturbation("fields_upper", "field names", "'Question:'/'Answer:' → 'QUESTION:'/'ANSWER:'",
                     _chain(_rewrite(r"(?m)^Question:", "QUESTION:"), _rewrite(r"(?m)^Answer:", "ANSWER:"))),
        Perturbation("fields_answer_is", "field names", "'Answer:' → 'The answer is'",
                     _rewrite(r"(?m)^Answer:", "The answer is")),
        Perturbation("labels_paren", "option labels", "option labels 'A.' → '(A)'", _labels("paren")),
        Perturbation("labels_bracket", "option labels", "option labels 'A.' → 'A)'", _labels("bracket")),
        Perturbation("labels_numeric", "option labels", "option labels 'A.' → '1.', answers '1'…", _labels("numeric")),
        Perturbation("reorder_sentences", "word order", "statements before the final question shuffled",
                     _on_question(_reorder_sentences)),
        Perturbation("typos_5", "typos", "5 % of letters swapped, dropped or doubled", _on_question(_typos(0.05))),
        Perturbation("typos_10", "typos", "10 % of letters swapped, dropped or doubled", _on_question(_typos(0.10))),
        Perturbation("fewshot_reseed", "few-shot", "a different draw of few-shot examples", _fewshot_reseed),
        Perturbation("fewshot_order", "few-shot", "the same few-shot examples in another order", _fewshot_order),
    ]
    items += [
        Perturbation(f"options_rot{k}", "option order",
                     f"options cyclically shifted by {k} (answer remapped; items with more than {k} options)",
                     _rotate_options(k))
        for k in range(1, len(LETTERS))
    ]
    items += [
        Perturbation(f"instruction_{k}", "instruction", f"instruction reworded: {INSTRUCTIONS[k]!r}", _instruction(k))
        for k in range(1, len(INSTRUCTIONS))
    ]
    return {p.name: p for p in items}


PERTURBATIONS: dict[str, Perturbation] = _build_registry()

# Ten perturbations, one per family, plus every cyclic rotation (option-order bias): an
# item with n options gets rotations 1..n−1, whatever n is (up to len(LETTERS)).
DEFAULT_PERTURBATIONS = (
    "case_lower",
    "case_upper",
    "punct_strip",
    "sep_space",
    "fields_short",
    "labels_paren",
    "labels_numeric",
    "typos_5",
    "instruction_1",
    "reorder_sentences",
    *(f"options_rot{k}" for k in range(1, len(LETTERS))),
)


def resolve_perturbations(spec: str | None) -> list[Perturbation]:
    """`None` → the defaults; otherwise comma-separated names or family names."""
    from llmassay.types import LlmassayError

    if not spec:
        return [PERTURBATIONS[n] for n in DEFAULT_PERTURBATIONS]
    chosen: list[Perturbation] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part in PERTURBATIONS:
            matches = [PERTURBATIONS[part]]
        else:
            matches = [p for p in PERTURBATIONS.values() if p.family == part]
        if not matches:
            raise LlmassayError(f"--perturbations: unknown perturbation or family '{part}' (see `llmassay perturbations`)")
        chosen += [m for m in matches if m not in chosen]
    return chosen
