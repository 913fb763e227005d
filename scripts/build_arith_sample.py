"""Generate the bundled `arith_sample` task once with reasoning-gym (Apache-2.0).

Two-term integer arithmetic (1–2 digits), seed 20261124, 200 items. The file is stored in
the repo so runs never depend on reasoning-gym's generator staying stable.
Run once: python scripts/build_arith_sample.py  (needs `pip install reasoning-gym`).
"""

from __future__ import annotations

import json
from pathlib import Path

import reasoning_gym

OUT = Path(__file__).resolve().parents[1] / "src/llmassay/tasks/data/arith_sample/arith_sample.jsonl"
SEED, SIZE = 20261124, 200


def main() -> None:
    ds = reasoning_gym.create_dataset(
        "basic_arithmetic", size=SIZE, seed=SEED, min_terms=2, max_terms=2, min_digits=1, max_digits=2
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as f:
        for i, item in enumerate(ds):
            row = {"id": f"arith_{i}", "input": item["question"], "target": item["answer"],
                   "expression": item["metadata"]["expression"]}
            f.write(json.dumps(row) + "\n")
    print(f"{SIZE} items → {OUT}")


if __name__ == "__main__":
    main()
