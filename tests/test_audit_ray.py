"""`--executor ray` shards the corpus over workers and gives exactly the local results."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("datasketch")

from llmassay.audit import (  # noqa: E402
    CorpusSpec,
    DedupSettings,
    RayShardExecutor,
    audit_contamination,
    audit_dedup,
    audit_pii,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executor():
    ex = RayShardExecutor(num_cpus=2)
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[CorpusSpec, Path]:
    rng = random.Random(11)
    vocab = [f"v{i}" for i in range(500)]
    task_rows = [
        {"id": f"i{k}", "input": " ".join(rng.choice(vocab) for _ in range(15)), "target": "x"} for k in range(20)
    ]
    root = tmp_path_factory.mktemp("ray")
    task = root / "t.jsonl"
    task.write_text("".join(json.dumps(r) + "\n" for r in task_rows))
    docs = [" ".join(rng.choice(vocab) for _ in range(rng.randint(20, 120))) for _ in range(1500)]
    docs += [d + " extra words" for d in docs[:100]]
    docs += [f"leak {r['input']} x mail a{k}@example.com" for k, r in enumerate(task_rows[:7])]
    rng.shuffle(docs)
    path = root / "c.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs) + "oops\n")
    return CorpusSpec((str(path),)), task


def test_contamination_local_equals_ray(corpus, executor) -> None:
    spec, task = corpus
    local = audit_contamination(spec, [str(task)], ngram=8, batch_size=64)
    sharded = audit_contamination(spec, [str(task)], ngram=8, executor=executor, batch_size=64)
    assert local.tasks["t"].dirty == 7
    assert local.report()["tasks"] == sharded.report()["tasks"]
    assert sharded.report()["settings"]["executor"] == "ray"


def test_dedup_local_equals_ray(corpus, executor) -> None:
    spec, _ = corpus
    local = audit_dedup(spec, DedupSettings(), batch_size=64)
    sharded = audit_dedup(spec, DedupSettings(), executor=executor, batch_size=64)
    assert local.result.summary() == sharded.result.summary()
    assert local.result.clusters == sharded.result.clusters
    assert np.array_equal(local.result.pairs, sharded.result.pairs)
    assert local.result.summary()["near_duplicate_docs"] >= 90


def test_pii_local_equals_ray(corpus, executor) -> None:
    spec, _ = corpus
    local = audit_pii(spec, batch_size=64).report()
    sharded = audit_pii(spec, executor=executor, batch_size=64).report()
    assert local["counts"]["email"] == 7
    assert {k: local[k] for k in ("counts", "examples", "docs_with_pii")} == {
        k: sharded[k] for k in ("counts", "examples", "docs_with_pii")
    }
    assert sharded["stream"]["skipped_lines"] == 1
