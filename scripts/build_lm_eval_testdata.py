"""Write the small local datasets the lm-eval compatibility tests load (CC0-1.0).

The task configs in tests/data/lm_eval/tasks/ are lm-eval 0.4.13's own files, byte for
byte (MIT, EleutherAI). Their hub datasets are replaced by a few synthetic records per
split, written here for llmassay, with each dataset's real field names and shapes, under
tests/data/lm_eval/data/<dataset_path>/<dataset_name or default>/<split>.jsonl — the
layout `--data-dir` reads. Run: python scripts/build_lm_eval_testdata.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "tests" / "data" / "lm_eval" / "data"
# Public-domain prose for the perplexity tasks (wikitext, pile_10k): the project's shared
# copy of William Morris, *News from Nowhere* (1890); its attribution is written beside the data.
PROSE = Path(__file__).resolve().parents[2] / "shared" / "data" / "news_from_nowhere_william_morris_1890.txt"
PROSE_NOTE = ("Text: William Morris (1834-1896), *News from Nowhere* (1890), public domain; excerpts of the "
              "1908 Longmans edition, written by scripts/build_lm_eval_testdata.py.\n")
FACTS = [  # (question, right answer, three wrong answers)
    ("Which planet is closest to the Sun", "Mercury", "Venus", "Mars", "Jupiter"),
    ("What gas do plants take in for photosynthesis", "carbon dioxide", "oxygen", "helium", "neon"),
    ("What is frozen water called", "ice", "steam", "sand", "salt"),
    ("How many legs does a spider have", "eight", "six", "four", "ten"),
    ("Which organ pumps blood", "the heart", "the liver", "the lung", "the skin"),
    ("What force pulls objects toward Earth", "gravity", "magnetism", "friction", "tension"),
    ("Which metal is liquid at room temperature", "mercury", "iron", "copper", "zinc"),
    ("What is the boiling point of water at sea level in Celsius", "100", "50", "0", "212"),
    ("Which animal is a mammal", "a whale", "a shark", "a trout", "a frog"),
    ("What do bees make", "honey", "silk", "wax paper", "milk"),
]


GALICIAN = {"the": "o", "cat": "gato", "sleeps": "dorme", "on": "en", "warm": "morna", "red": "vermella",
            "mat": "alfombra", "a": "un", "small": "pequeno", "dog": "can", "runs": "corre", "in": "no",
            "green": "verde", "park": "parque", "old": "vello", "man": "home", "reads": "le", "long": "longo",
            "book": "libro", "my": "a miña", "sister": "irmá", "drinks": "bebe", "cold": "fría", "water": "auga",
            "every": "cada", "day": "día", "children": "nenos", "play": "xogan", "near": "preto do",
            "big": "grande", "river": "río", "tall": "alta", "tree": "árbore", "grows": "medra",
            "behind": "detrás da", "white": "branca", "house": "casa", "teacher": "mestre", "writes": "escribe",
            "black": "negro", "board": "encerado", "our": "os nosos", "friends": "amigos", "eat": "comen",
            "fresh": "fresco", "bread": "pan", "morning": "mañá"}


def write(dataset: str, name: str, split: str, rows: list[dict]) -> None:
    folder = ROOT / dataset / name
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    (folder / f"{split}.jsonl").write_text(text, encoding="utf-8")


def slices() -> dict[str, list[tuple]]:
    return {"train": FACTS[:6], "validation": FACTS[6:8] + FACTS[:2], "test": FACTS[8:] + FACTS[2:5]}


def arc(name: str) -> None:
    for split, facts in slices().items():
        rows = []
        for i, (q, right, *wrong) in enumerate(facts):
            options = wrong[: i % 4] + [right] + wrong[i % 4:]
            labels = ["A", "B", "C", "D"] if i % 3 else ["1", "2", "3", "4"]
            rows.append({"id": f"{name}-{split}-{i}", "question": q + "?",
                         "choices": {"text": options, "label": labels}, "answerKey": labels[i % 4]})
        write("allenai/ai2_arc", name, split, rows)


def paragraphs(text: str, chapter: str, n: int) -> list[str]:
    """The first `n` paragraphs of a chapter, each on one line."""
    body = text.split(chapter, 1)[1].split("\nCHAPTER ", 1)[0]
    paras = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
    return paras[:n]


def wikitext_page(title: str, paras: list[str]) -> str:
    """WikiText-2's raw layout: ' = Title = ' headings and tokens split off punctuation,
    so lm-eval's `wikitext_detokenizer` has work to do (and word counts differ from it)."""
    def tok(p: str) -> str:
        p = re.sub(r"(\w)-(\w)", r"\1 @-@ \2", p)
        p = re.sub(r"([,.;:!?])", r" \1", p)
        return " " + re.sub(r"\(([^)]*)\)", r"( \1 )", p) + " \n"
    return f" = {title} = \n" + "".join(tok(p) for p in paras)


def perplexity_data() -> None:
    """wikitext (document-level pages) and pile_10k (plain text) from News from Nowhere."""
    if not PROSE.exists():
        print(f"skipping the perplexity data: {PROSE} not found", file=sys.stderr)
        return
    text = PROSE.read_text(encoding="utf-8")
    chapters = re.findall(r"^CHAPTER [IVXL]+: .*$", text, flags=re.M)
    pages = [wikitext_page(c.split(": ", 1)[1].title(), paragraphs(text, c, 3)) for c in chapters[:8]]
    for split, rows in (("train", pages[:2]), ("validation", pages[2:4]), ("test", pages[4:8])):
        write("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", split, [{"page": p} for p in rows])
    write("NeelNanda/pile-10k", "default", "train",
          [{"text": " ".join(paragraphs(text, c, 2)), "meta": {"source": "News from Nowhere"}} for c in chapters[8:13]])
    for folder in ("EleutherAI/wikitext_document_level", "NeelNanda/pile-10k"):
        (ROOT / folder / "NOTICE.md").write_text(PROSE_NOTE, encoding="utf-8")


def truthfulqa() -> None:
    """truthful_qa's multiple_choice config: mc1 (one true answer, first) and mc2 (1 to 3
    true answers, first, then the false ones), as the hub's records."""
    rows = []
    for i, (q, right, *wrong) in enumerate(FACTS[:6]):
        true = [right.capitalize() + ".", f"It is {right}.", f"I believe it is {right}."][: 1 + i % 3]
        false = [w.capitalize() + "." for w in wrong] + ["I have no comment."]
        rows.append({"question": q + "?", "mc1_targets": {"choices": [true[0], *false[:3]], "labels": [1, 0, 0, 0]},
                     "mc2_targets": {"choices": true + false, "labels": [1] * len(true) + [0] * len(false)}})
    write("truthfulqa/truthful_qa", "multiple_choice", "validation", rows)


def main() -> None:
    perplexity_data()
    truthfulqa()
    arc("ARC-Easy")
    arc("ARC-Challenge")
    for split, facts in slices().items():
        write("baber/piqa", "default", split, [
            {"goal": f"To answer '{q}'", "sol1": (right if i % 2 else wrong[0]), "sol2": (wrong[0] if i % 2 else right),
             "label": 0 if i % 2 else 1} for i, (q, right, *wrong) in enumerate(facts)])
        write("aps/super_glue", "boolq", split, [
            {"passage": f"The answer to '{q}' is {right}.", "question": f"is it {right if i % 2 else wrong[1]}",
             "label": 1 if i % 2 else 0, "idx": i} for i, (q, right, *wrong) in enumerate(facts)])
        write("google-research-datasets/nq_open", "default", split, [
            {"question": q.lower(), "answer": [f"{right} exactly", right, f"the {right}"]}
            for q, right, *_ in facts])
        write("allenai/sciq", "default", split, [
            {"question": q + "?", "distractor1": w[0], "distractor2": w[1], "distractor3": w[2],
             "correct_answer": right, "support": f"  Science notes: {right} is the answer.\n"}
            for q, right, *w in facts])
        write("allenai/openbookqa", "main", split, [
            {"id": f"obqa-{split}-{i}", "question_stem": q, "fact1": "",
             "choices": {"text": [w[0], right, w[1], w[2]], "label": ["A", "B", "C", "D"]},
             "answerKey": " B" if i == 0 else "B"} for i, (q, right, *w) in enumerate(facts)])
        write("mandarjoshi/trivia_qa", "rc.nocontext", split, [
            {"question": q, "question_id": f"tq{i}", "answer": {"aliases": [right, right.upper()], "value": right}}
            for i, (q, right, *_) in enumerate(facts)])
        write("Rowan/hellaswag", "default", split, [
            {"ind": i, "activity_label": "Science quiz", "ctx_a": f"A teacher asks: {q}?",
             "ctx_b": "the student answers", "ctx": "", "endings": [f"[title] {right}.", w[0] + ".", w[1], w[2]],
             "source_id": "x", "split": split, "split_type": "indomain", "label": str(i % 1)}
            for i, (q, right, *w) in enumerate(facts)])
        write("nyu-mll/glue", "cola", split, [
            {"sentence": f"{right} is the answer." if i % 2 else f"answer the is {right}", "label": i % 2, "idx": i}
            for i, (q, right, *_) in enumerate(facts)])
        write("nyu-mll/glue", "rte", split, [
            {"sentence1": f"The answer to '{q}' is {right}.", "sentence2": f"The answer is {right if i % 2 else w[0]}.",
             "label": 0 if i % 2 else 1, "idx": i} for i, (q, right, *w) in enumerate(facts)])
        write("allenai/winogrande", "winogrande_xl", split, [
            {"sentence": f"The student knew {right} but not {w[0]} because _ was taught.",
             "option1": right, "option2": w[0], "answer": "1"} for q, right, *w in facts])
    english = ["the cat sleeps on the warm red mat", "a small dog runs in the green park", "the old man reads a long book",
               "my sister drinks cold water every day", "the children play near the big river",
               "a tall tree grows behind the white house", "the teacher writes on the black board",
               "our friends eat fresh bread in the morning"]
    for split, rows in (("dev", english[:4]), ("devtest", english[4:])):
        write("facebook/flores", "all", split, [
            {"id": i, "sentence_eng_Latn": e, "sentence_glg_Latn": " ".join(GALICIAN.get(w, w) for w in e.split())}
            for i, e in enumerate(rows)])
    write("hails/agieval-math", "default", "test", [
        {"query": f"Q: {q}? A:", "answer": right if i % 3 else "$\\frac{1}{2}$"} for i, (q, right, *_) in enumerate(FACTS)])
    write("hails/agieval-aqua-rat", "default", "test", [
        {"query": f"Q: {q}? Answer Choices: (A){w[0]} (B){right} (C){w[1]} (D){w[2]}\nA: Among A through D, the answer is",
         "choices": ["(A)", "(B)", "(C)", "(D)"], "gold": [1]} for q, right, *w in FACTS])
    for split, facts in (("train", FACTS[:4]), ("test", FACTS[4:])):  # afriqa: a context holding the answer
        write("masakhane/afriqa-gold-passages", "hau", split, [
            {"question_lang": f"Tambaya: {q}?", "context": f"Notes: {w[0]}, {right} and {w[1]}.",
             "answer_pivot": right if i % 3 else f"the {right}", "id": i} for i, (q, right, *w) in enumerate(facts)])
    write("EleutherAI/lambada_openai", "default", "test", [
        {"text": f"The teacher asked the class {q.lower()} and every student wrote down {right.split()[-1]}"}
        for q, right, *_ in FACTS])
    for split, facts in (("train", FACTS[:7]), ("test", FACTS[7:])):
        write("openai/gsm8k", "main", split, [
            {"question": f"Tom has {i + 2} apples and buys {i * 3} more. How many apples does he have?",
             "answer": f"Tom has {i + 2} + {i * 3} = {4 * i + 2} apples.\n#### {4 * i + 2}"}
            for i, _ in enumerate(facts)])
    for subject, offset in (("anatomy", 0), ("astronomy", 3)):
        for split, facts in (("dev", FACTS[offset: offset + 5]), ("test", FACTS[5:] + FACTS[:1]),
                             ("validation", FACTS[1:7])):
            write("cais/mmlu", subject, split, [
                {"question": f" {q}? ({subject}) ", "subject": subject, "choices": [w[0], right, w[1], w[2]],
                 "answer": 1} for q, right, *w in facts])


if __name__ == "__main__":
    main()
