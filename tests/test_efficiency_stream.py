"""Streamed timing of the openai and hf backends: planted TTFT and inter-token gaps are
recovered, token counts come from the backend, and a server that cannot stream fails in
one line."""

from __future__ import annotations

import time

import pytest

from fake_openai import FakeOpenAI
from llmassay.backends.openai_compat import OpenAIBackend
from llmassay.efficiency.stats import pooled_percentiles
from llmassay.efficiency.timing import E2E_ONLY, STREAM, timed_generate
from llmassay.engine.engine import Engine
from llmassay.engine.store import SampleLog
from llmassay.probes import ProbeConfig, probe_class, run_probe
from llmassay.tasks.loader import load_task
from llmassay.types import GenerateRequest, Generation, LlmassayError

TTFT, GAP = 0.06, 0.02  # planted: first token after 60 ms, then one every 20 ms


def _backend(fake: FakeOpenAI) -> OpenAIBackend:
    return OpenAIBackend("fake-model", base_url=fake.base_url, max_retries=0, concurrency=1)


def test_openai_stream_recovers_planted_ttft_itl_and_counts_tokens_from_usage(tmp_path):
    with FakeOpenAI() as fake:
        fake.service_s, fake.token_s, fake.completion = TTFT, GAP, " a b c d e"
        engine = Engine(_backend(fake))
        task = load_task("arith_sample").limited(4)
        result = run_probe(probe_class("efficiency")(), task, engine, ProbeConfig(options=(("warmup", 1),)),
                           SampleLog(tmp_path / "rows.jsonl"))
        asked = [r["body"] for r in fake.requests]
    m = result.metrics
    assert result.details["timing_method"] == [STREAM]
    assert all(b["stream"] and b["stream_options"] == {"include_usage": True} for b in asked) and len(asked) == 5
    # Sleeps only get longer on a loaded machine: tight below, generous above.
    assert TTFT <= m["ttft_s[p50]"].value < TTFT + 0.15
    assert GAP <= m["itl_s[p50]"].value < GAP + 0.03 and m["itl_s[p50]"].n == 4 * 4  # 4 gaps per request
    assert GAP <= m["tpot_s"].value < GAP + 0.03
    assert 1 / (GAP + 0.03) < m["decode_tps"].value <= 1 / GAP + 0.5
    rows = result.samples
    assert all(r["n_out"] == 5 and r["n_decode"] == 4 and len(r["itl_s"]) == 4 and r["text"] == " a b c d e"
               for r in rows)
    assert all(r["n_prompt"] == len(s.prompt.split()) for r, s in zip(rows, task.samples))  # the server's usage
    # The model runs in the server: this process's CPU time says nothing of its energy.
    if result.details["energy"]["kind"] != ["measured"]:
        assert "energy_wh" not in m and all(r["energy_wh"] is None for r in rows)
        assert result.details["energy"]["kind"] == ["not estimated"] and "caveat" not in result.details["energy"]
    assert "client" in result.details["served"]


def test_openai_chat_streams_delta_content():
    with FakeOpenAI() as fake:
        fake.chat_content = "x y z"
        gen, timing = timed_generate(_backend(fake), GenerateRequest(messages=(("user", "hi"),), max_tokens=8))
    assert gen.text == "x y z" and timing.method == STREAM and timing.n_out == 3 and len(timing.itl_s) == 2
    assert fake.requests[0]["path"].endswith("/chat/completions")


def test_a_server_that_does_not_stream_is_a_one_line_error_and_can_be_timed_end_to_end():
    with FakeOpenAI() as fake:
        fake.streams = False
        backend = _backend(fake)
        with pytest.raises(LlmassayError, match=r"does not stream \(Content-Type application/json.*efficiency.stream=false"):
            timed_generate(backend, GenerateRequest(prompt="1+1=", max_tokens=4))
        gen, timing = timed_generate(backend, GenerateRequest(prompt="1+1=", max_tokens=4), stream=False)
    assert timing.method == E2E_ONLY and timing.ttft_s is None and gen.text == " 7"


def _retrying(fake: FakeOpenAI, max_retries: int) -> OpenAIBackend:
    return OpenAIBackend("fake-model", base_url=fake.base_url, max_retries=max_retries, backoff_base=0.01,
                         backoff_max=0.02, concurrency=1)


def test_a_failed_stream_is_retried_like_any_request_and_timed_from_its_new_start():
    with FakeOpenAI() as fake:
        fake.faults.append("503")
        fake.completion = " a b c"
        backend = _retrying(fake, 3)
        gen, timing = timed_generate(backend, GenerateRequest(prompt="1+1=", max_tokens=4))
        assert fake.seen() == 2 and backend.retries == 1
        fake.faults.append("503")
        with pytest.raises(LlmassayError) as info:
            timed_generate(_retrying(fake, 0), GenerateRequest(prompt="1+1=", max_tokens=4))
    assert gen.text == " a b c" and timing.retries == 1 and timing.n_out == 3
    assert str(info.value) == f"openai: {fake.base_url}/completions failed after 1 attempts: HTTP 503: server exploded"


def test_a_mid_stream_error_event_is_retried_never_an_answer():
    # Before: the error event was skipped and " a" (one piece of five) came back as the answer.
    with FakeOpenAI() as fake:
        fake.faults.append("stream-error")
        fake.service_s, fake.completion = 0.2, " a b c d e"
        backend = _retrying(fake, 2)
        gen, timing = timed_generate(backend, GenerateRequest(prompt="1+1=", max_tokens=8))
        assert [r["fault"] for r in fake.requests] == ["stream-error", "ok"] and backend.retries == 1
    assert gen.text == " a b c d e" and (timing.n_out, len(timing.itl_s), timing.retries) == (5, 4, 1)
    assert 0.2 <= timing.ttft_s < 0.2 + 0.15  # the second attempt's own first token, not the first's
    assert timing.e2e_s < 2 * 0.2  # neither the failed attempt nor the back-off is timed


def test_a_persistent_mid_stream_error_fails_in_one_line_and_keeps_no_row(tmp_path):
    from llmassay.engine.cache import RequestCache

    with FakeOpenAI() as fake:
        fake.fail_after = (0, "stream-error")
        engine = Engine(_retrying(fake, 1), cache=RequestCache(tmp_path / "c.sqlite"))
        task = load_task("arith_sample").limited(2)
        log = SampleLog(tmp_path / "rows.jsonl")
        with pytest.raises(LlmassayError) as info:
            run_probe(probe_class("efficiency")(), task, engine, ProbeConfig(options=(("warmup", 0),)), log)
        assert fake.seen() == 2  # one attempt and one retry, then the run stops
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"openai: {fake.base_url}/completions failed after 2 attempts: ")
    assert message.endswith("error event mid-stream: The server had an error while processing your request.")
    rows = (tmp_path / "rows.jsonl").read_text().splitlines() if (tmp_path / "rows.jsonl").exists() else []
    assert rows == [] and len(RequestCache(tmp_path / "c.sqlite")) == 0


def test_an_error_event_about_the_request_itself_is_not_retried():
    with FakeOpenAI() as fake:
        fake.faults.append("stream-error-400")
        with pytest.raises(LlmassayError) as info:
            timed_generate(_retrying(fake, 3), GenerateRequest(prompt="1+1=", max_tokens=4))
        assert fake.seen() == 1
    assert str(info.value) == (f"openai: {fake.base_url}/completions sent an error event mid-stream: "
                               "maximum context length exceeded")


def test_pooled_percentiles_take_their_variance_over_requests_not_gaps():
    fast, slow = [0.01] * 9, [0.05] * 9
    m = pooled_percentiles([fast, slow, fast, slow])
    assert m["p50"].value == pytest.approx(0.03) and m["p50"].n == 36
    # 36 gaps but 4 requests, each all fast or all slow: as good as 3 independent values, too
    # few to bound even the median, so neither bound is given (36 independent gaps would).
    assert m["p50"].ci_low is None and m["p50"].ci_high is None and "not estimable" in m["p50"].method
    many = pooled_percentiles([fast, slow] * 20)
    assert many["p50"].ci_low == pytest.approx(0.01) and many["p50"].ci_high == pytest.approx(0.05)
    assert many["p99"].ci_high is None  # 360 gaps from 40 requests: no upper bound for a p99
    assert pooled_percentiles([[], []]) == {}


class _ScriptedHF:
    """The parts of HFBackend that `hf_stream` uses, with a planted generation: transformers
    puts the prompt, then each new token after `ttft` / `gap` seconds, then ends."""

    def __init__(self, n_out: int = 5, fail: bool = False) -> None:
        import torch

        from llmassay.backends.hf import HFBackend

        self._torch, self.n_out, self.fail = torch, n_out, fail
        self.generate_stream = HFBackend.generate_stream.__get__(self)
        self.tokenizer = type("Tok", (), {"decode": staticmethod(lambda ids: "".join(f" t{i}" for i in ids))})()

    def _prompt_ids(self, req: GenerateRequest) -> tuple[list[int], int]:
        return [101, 102, 103], 2

    def _generate_batch(self, reqs, prompts, streamer=None):
        torch = self._torch
        streamer.put(torch.tensor([prompts[0]]))
        for i in range(self.n_out):
            time.sleep(GAP if i else TTFT)
            if self.fail and i == 2:
                raise LlmassayError("hf: planted failure")
            streamer.put(torch.tensor([i]))
        streamer.end()
        return [Generation("".join(f" t{i}" for i in range(self.n_out)), 3, self.n_out, "length", 0.0)]


def test_hf_stream_skips_the_prompt_and_recovers_planted_timing():
    gen, timing = timed_generate(_ScriptedHF(n_out=5), GenerateRequest(prompt="x", max_tokens=5))
    assert timing.method == STREAM and gen.text == " t0 t1 t2 t3 t4" and gen.n_truncated_tokens == 2
    assert (timing.n_prompt, timing.n_out, timing.n_decode) == (3, 5, 4)
    assert TTFT <= timing.ttft_s < TTFT + 0.15
    assert len(timing.itl_s) == 4 and all(GAP <= g < GAP + 0.05 for g in timing.itl_s)


def test_hf_stream_raises_the_generation_error_in_the_caller():
    with pytest.raises(LlmassayError, match="planted failure"):
        timed_generate(_ScriptedHF(fail=True), GenerateRequest(prompt="x", max_tokens=5))


def test_a_server_that_refuses_stream_options_is_asked_without_and_tokens_are_counted_as_events():
    with FakeOpenAI() as fake:
        fake.refuses_stream_options, fake.completion = True, " a b c"
        backend = _backend(fake)
        for _ in range(2):
            gen, timing = timed_generate(backend, GenerateRequest(prompt="1+1=", max_tokens=4))
            assert gen.text == " a b c" and timing.n_out == 3 and gen.n_prompt_tokens == 0  # no usage sent
        asked = ["stream_options" in r["body"] for r in fake.requests]
    assert asked == [True, False, False]  # refused once, then never asked again
