"""Copy the human-text baseline for the watermark null and the zero-shot detector into the package.

Source: /work/shared/data/news_from_nowhere_william_morris_1890.txt (William Morris, *News
from Nowhere*, 1890; public domain). We keep chapters I–VIII (~120 KB), from "CHAPTER I"
to the paragraph break before 120,000 characters, with line breaks inside paragraphs joined.
Usage: python scripts/build_watermark_human.py [SOURCE]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SOURCE = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/news_from_nowhere_william_morris_1890.txt")
TARGET = Path(__file__).resolve().parents[1] / "src/llmassay/watermark/data/news_from_nowhere.txt"
LIMIT = 120_000


def main() -> None:
    text = SOURCE.read_text(encoding="utf-8")
    text = text[text.index("CHAPTER I:") :]
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    kept: list[str] = []
    size = 0
    for p in paragraphs:
        if not p:
            continue
        if size + len(p) > LIMIT:
            break
        kept.append(p)
        size += len(p) + 2
    TARGET.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    print(f"{TARGET}: {len(kept)} paragraphs, {size} characters")


if __name__ == "__main__":
    main()


TASK_DIR = Path(__file__).resolve().parents[1] / "src/llmassay/tasks/data/prose_continue"
N_PROMPTS = 100


def build_task() -> None:
    """prose_continue: 100 passage openings from the chapters *after* the bundled human
    text (so prompts never overlap the null's text): the first sentences of a long
    paragraph (<= 320 characters) as the prompt, the paragraph's rest as the reference."""
    import json

    text = SOURCE.read_text(encoding="utf-8")
    text = text[text.index("CHAPTER I:") :]
    used = TARGET.read_text(encoding="utf-8")
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", text)]
    later = [p for p in paragraphs if p and p not in used and not p.startswith("CHAPTER") and len(p) >= 600]
    TASK_DIR.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in later:
        sentences = re.split(r"(?<=[.;:!?]) ", p)
        prefix = ""
        for s in sentences:
            if len(prefix) + len(s) > 320 and prefix:
                break
            prefix = (prefix + " " + s).strip()
        if len(prefix) < 80 or len(prefix) > 400:
            continue
        rows.append({"id": f"prose_{len(rows)}", "prefix": prefix, "continuation": p[len(prefix) :].strip()})
        if len(rows) == N_PROMPTS:
            break
    (TASK_DIR / "prose_continue.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{TASK_DIR}: {len(rows)} prompts")


if __name__ == "__main__":
    build_task()
