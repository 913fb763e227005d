"""Generate the bundled `legs_sample` and `letters_sample` tasks once with reasoning-gym
(Apache-2.0), the multi-step items the strategies probe compares prompting on.

- legs_sample: `leg_counting`, 2–3 kinds of animal (a sum of products: count × legs each);
- letters_sample: `letter_counting`, 3–6 words (count one letter across the words).

100 items each, seed 20261129. The files are stored in the repo so runs never depend on
reasoning-gym's generator staying stable. Run once: python scripts/build_reasoning_tasks.py
(needs `pip install reasoning-gym`).
"""

from __future__ import annotations

import json
from pathlib import Path

import reasoning_gym

DATA = Path(__file__).resolve().parents[1] / "src/llmassay/tasks/data"
SEED, SIZE = 20261129, 100
TASKS = {
    "legs_sample": ("leg_counting", {"min_animals": 2, "max_animals": 3}),
    "letters_sample": ("letter_counting", {"min_words": 3, "max_words": 6}),
}


def main() -> None:
    for name, (dataset, params) in TASKS.items():
        ds = reasoning_gym.create_dataset(dataset, size=SIZE, seed=SEED, **params)
        out = DATA / name / f"{name}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as f:
            for i, item in enumerate(ds):
                question = " ".join(item["question"].split())  # one line: the prompt's "\n" ends an answer
                f.write(json.dumps({"id": f"{name.split('_')[0]}_{i}", "input": question, "target": item["answer"]}) + "\n")
        print(f"{SIZE} items → {out}")


if __name__ == "__main__":
    main()
