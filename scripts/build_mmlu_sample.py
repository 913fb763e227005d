"""Extract the bundled `mmlu_sample` task from lm-evaluation-harness's package data.

Source: lm_eval/tasks/mmlu/flan_cot_fewshot/_cot_prompts.json (lm-evaluation-harness,
MIT licence), which holds the MMLU dev-set questions (Hendrycks et al. 2021, MIT) with
chain-of-thought answers. We keep question, the four options and the gold letter.
Run once: python scripts/build_mmlu_sample.py  (needs `pip install lm-eval==0.4.13`).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/llmassay/tasks/data/mmlu_sample/mmlu_sample.jsonl"
OPTION = re.compile(r"\(([A-D])\)\s")
ANSWER = re.compile(r"answer is \(?([A-D])\)?")


def parse_block(subject: str, block: str) -> dict | None:
    if "\nA: " not in block:
        return None
    stem, reasoning = block.split("\nA: ", 1)
    start = stem.rfind("(A) ")
    if start < 0:
        return None
    question, options = stem[:start].strip(), stem[start:]
    parts = OPTION.split(options)  # ['', 'A', text, 'B', text, ...]
    letters, texts = parts[1::2], [t.strip() for t in parts[2::2]]
    answers = ANSWER.findall(reasoning)
    if letters != ["A", "B", "C", "D"] or not answers or not question or not all(texts):
        return None
    return {"subject": subject, "question": question, "choices": texts, "answer": "ABCD".index(answers[-1])}


def main() -> None:
    spec = importlib.util.find_spec("lm_eval")
    assert spec and spec.submodule_search_locations
    src = Path(list(spec.submodule_search_locations)[0]) / "tasks/mmlu/flan_cot_fewshot/_cot_prompts.json"
    prompts = json.loads(src.read_text())
    rows = []
    for subject in sorted(prompts):
        blocks = prompts[subject].split("\n\nQ: ")[1:]
        for n, block in enumerate(blocks):
            row = parse_block(subject.replace("_", " "), block.rstrip())
            if row:
                rows.append({"id": f"{subject}_{n}", **row})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} questions → {OUT}")


if __name__ == "__main__":
    main()
