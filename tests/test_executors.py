"""Executors: sharding keeps shared contexts together; Ray gives the local answers."""

from __future__ import annotations

import json

import pytest

from llmassay.engine.executors import load_executor, shard_by_context
from llmassay.evaluation import RunConfig, evaluate
from llmassay.types import LlmassayError


def test_shards_keep_contexts_together_and_balance_load():
    sizes = [("q1", 10), ("q1", 10), ("q2", 50), ("q3", 5), ("q3", 5), ("q4", 30), ("q1", 10)]
    shards = shard_by_context(sizes, 2)
    assert sorted(i for s in shards for i in s) == list(range(len(sizes)))
    owner = {sizes[i][0]: n for n, s in enumerate(shards) for i in s}
    for n, shard in enumerate(shards):
        assert all(owner[sizes[i][0]] == n for i in shard)  # a context never spans shards
    loads = [sum(sizes[i][1] for i in s) for s in shards]
    assert shards == [[2, 3, 4], [0, 1, 5, 6]]  # q2 (50), q1 (30), q4 (30), q3 (10), each to the lighter side
    assert loads == [60, 60]
    assert shard_by_context(sizes, 2) == shards  # deterministic
    assert shard_by_context(sizes, 5)[4] == []  # more shards than contexts: some stay empty


def test_only_instance_free_request_orders_cross_to_the_ray_driver():
    from llmassay.backends.hf import HFBackend
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.backends.openai_compat import OpenAIBackend
    from llmassay.engine.executors import static_request_order
    from llmassay.types import LoglikelihoodRequest

    order = static_request_order(LlamaCppBackend)
    assert order(LoglikelihoodRequest("Q: 2+2?", " 4")) == ("Q: 2+2?", " 4")
    assert static_request_order(HFBackend) is None  # tokenises: needs a loaded model
    assert static_request_order(OpenAIBackend) is None


def test_unknown_executor_is_a_one_line_error():
    with pytest.raises(LlmassayError, match="--executor 'slurm': unknown"):
        load_executor("slurm", "llamacpp/smollm2-135m", {})


def _run(tmp_path, name: str, task: str, batch_size: int = 16, **kw) -> list[dict]:
    result = evaluate(
        RunConfig(model="llamacpp/smollm2-135m", tasks=[task], limit=8, use_cache=False, batch_size=batch_size,
                  output_path=str(tmp_path / name), **kw)
    )
    return [json.loads(line) for line in result.sample_paths[0].read_text().splitlines()]


def _tokens_evaluated(run_dir) -> int:
    doc = json.loads(sorted(run_dir.glob("results_*.json"))[-1].read_text())
    return doc["engine"]["tokens_evaluated_by_backend"]


@pytest.mark.slow
def test_ray_executor_gives_the_local_results_and_counts_its_tokens(local_ray, tmp_path):
    # (tests/reliability/test_rel_determinism.py compares whole sample files, generation too)
    local = _run(tmp_path, "local", "mmlu_sample")
    ray_rows = _run(tmp_path, "ray", "mmlu_sample", executor="ray", workers=2)
    assert ray_rows == local
    assert len(local) == 8 and all(len(r["loglikelihoods"]) == 4 for r in local)
    doc = json.loads(sorted((tmp_path / "ray").glob("results_*.json"))[-1].read_text())
    assert doc["config"]["executor"] == "ray"
    assert _tokens_evaluated(tmp_path / "ray") > 8 * 20  # summed over both workers
    local_doc = json.loads(sorted((tmp_path / "local").glob("results_*.json"))[-1].read_text())
    assert doc["model"]["size"] == local_doc["model"]["size"] and doc["model"]["size"]["architecture"] == "llama"


@pytest.mark.slow
def test_one_ray_worker_reuses_shared_prefixes_as_the_local_backend_does(local_ray, tmp_path):
    # batch_size 6 splits the 4 choices of some questions across batches: only the
    # backend's text order (passed through the Ray proxy) keeps them back to back, so the
    # shared question is read once — in length order it was re-read, costing ~5× on Ray.
    local = _run(tmp_path, "local", "mmlu_sample", batch_size=6)
    one = _run(tmp_path, "ray1", "mmlu_sample", executor="ray", workers=1, batch_size=6)
    assert one == local
    assert _tokens_evaluated(tmp_path / "ray1") == _tokens_evaluated(tmp_path / "local")


@pytest.mark.slow
def test_ray_worker_errors_reach_the_user_as_one_line(local_ray):
    with pytest.raises(LlmassayError, match="llamacpp: unknown model args: bogus"):
        load_executor("ray", "llamacpp/smollm2-135m", {"bogus": 1}, workers=1)


@pytest.mark.slow
def test_ray_executor_gives_token_statistics_and_token_windows_as_the_local_backend(local_ray, smollm2):
    from llmassay.backends.token_stats import TokenStatsRequest
    from llmassay.engine.engine import Engine
    from llmassay.engine.rolling import TokenLoglikelihoodRequest

    texts = ["The river rose after the storm.", "A small bakery opened on the corner.", "Two plus two is four."]
    stats = [TokenStatsRequest("", t) for t in texts] + [TokenStatsRequest("Q: what rose?", " The river.")]
    ids = smollm2.tokenize(texts[0] + " " + texts[1])
    windows = [TokenLoglikelihoodRequest(tuple(ids[:1]), tuple(ids[1:6])),
               TokenLoglikelihoodRequest(tuple(ids[:6]), tuple(ids[6:]))]
    ray = load_executor("ray", "llamacpp/smollm2-135m", {}, workers=2)
    try:
        # watermark's log-rank / Fast-DetectGPT and loglikelihood_rolling run through Ray now
        remote_stats, remote_windows = Engine(ray).token_stats(stats), Engine(ray).loglikelihood_tokens(windows)
        assert ray.tokens_evaluated > 0
    finally:
        ray.close()
    local_stats, local_windows = Engine(smollm2).token_stats(stats), Engine(smollm2).loglikelihood_tokens(windows)
    assert [s.ranks for s in remote_stats] == [s.ranks for s in local_stats]
    for remote, local in zip(remote_stats, local_stats):
        assert remote.token_logprobs == pytest.approx(local.token_logprobs, abs=1e-4)
        assert remote.expected_logprobs == pytest.approx(local.expected_logprobs, abs=1e-4)
    assert [w.logprob for w in remote_windows] == pytest.approx([w.logprob for w in local_windows], abs=1e-4)
    assert all(w.logprob < 0 for w in local_windows)


def test_a_ray_worker_without_an_optional_capability_names_it_in_one_line():
    from llmassay.engine.executors import _BackendWorker

    worker = _BackendWorker.__new__(_BackendWorker)  # no model: a backend with only the required methods
    worker.backend = type("Plain", (), {"name": "openai/gpt-x"})()
    with pytest.raises(LlmassayError, match=r"^openai/gpt-x: token_stats is not supported by this backend"):
        worker.token_stats([])
    with pytest.raises(LlmassayError, match="loglikelihood_tokens is not supported"):
        worker.loglikelihood_tokens([])
