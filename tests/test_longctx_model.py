"""On the real embedded model: the shared-prefix path (KV cache of the common haystack
reused across cells, requests in text order) gives the same answers as computing every
cell alone from an empty cache; and the window is read from the GGUF."""

from __future__ import annotations

import pytest

from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.longctx.grid import context_window
from llmassay.probes import ProbeConfig, run_probe
from llmassay.probes.needle import NeedleProbe
from llmassay.tasks.loader import load_task

pytestmark = pytest.mark.slow
GRID = {"lengths": "256,384", "depths": "0.5,1", "answer_tokens": 12}  # cells sharing long prefixes


def _rows(backend, tmp_path, name, **options):
    cfg = ProbeConfig(options=tuple(sorted(options.items())), chat_model=True)
    return run_probe(NeedleProbe(), load_task("needle_sample").limited(1), Engine(backend), cfg,
                     SampleLog(tmp_path / f"{name}.jsonl")).samples


def test_shared_prefix_answers_equal_each_cell_alone(smollm2, tmp_path):
    from llmassay.backends.llamacpp import LlamaCppBackend

    assert context_window(smollm2).loaded == 2048 and context_window(smollm2).trained == 8192
    shared = _rows(smollm2, tmp_path, "shared", **GRID)
    alone = LlamaCppBackend("smollm2-135m", prefix_reuse=False)
    try:
        for length in GRID["lengths"].split(","):
            for depth in GRID["depths"].split(","):
                single = _rows(alone, tmp_path, f"{length}-{depth}", lengths=length, depths=depth, answer_tokens=12)
                cell = f"{length}@{depth}"
                assert [r["cells"][cell]["generation"] for r in single] == [r["cells"][cell]["generation"] for r in shared]
    finally:
        alone.llm.close()
    assert sum(c["prefill_tokens"] for r in shared for c in r["cells"].values()) < \
        sum(c["prompt_tokens"] for r in shared for c in r["cells"].values())
