"""The openai backend against a scripted local fake server (faults) and a real
llama-cpp-python server (agreement with the embedded backend, the echo bug)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from fake_openai import STALL_S, FakeOpenAI, toy_logprob
from llmassay.backends.openai_compat import SELF_CHECK_PROMPT, SELF_CHECK_TOLERANCE, OpenAIBackend
from llmassay.engine.cache import RequestCache
from llmassay.engine.engine import Engine
from llmassay.evaluation import RunConfig, evaluate
from llmassay.types import GenerateRequest, LlmassayError, LoglikelihoodRequest

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 0.3}
assert FAST["timeout"] < STALL_S


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


def backend(fake: FakeOpenAI, **kwargs) -> OpenAIBackend:
    return OpenAIBackend("toy", base_url=fake.base_url, **{**FAST, **kwargs})


def one_line(exc_info: pytest.ExceptionInfo) -> str:
    message = str(exc_info.value)
    assert message and "\n" not in message
    return message


# -- loglikelihood and the self-check ----------------------------------------------------
def test_loglikelihood_on_a_correct_server_passes_the_self_check(fake):
    b = backend(fake)
    reqs = [
        LoglikelihoodRequest("Question: 1+1?\nAnswer:", " 2 apples"),
        LoglikelihoodRequest("Question: 1+1?\nAnswer: ", "B"),  # the trailing space joins the continuation
        LoglikelihoodRequest("one", " two three four"),
    ]
    out = b.loglikelihood(reqs)
    assert [o.n_tokens for o in out] == [2, 1, 3]
    assert out[0].logprob == pytest.approx(toy_logprob(" 2") + toy_logprob(" apples"))
    assert out[1].logprob == pytest.approx(toy_logprob(" B"))
    assert out[2].token_logprobs == pytest.approx(tuple(toy_logprob(t) for t in (" two", " three", " four")))
    assert out[2].n_context_tokens == 1
    assert all(o.is_greedy for o in out)
    # Self-check first (the greedy completion with logprobs, then an echo of the same text),
    # then one echo per request. The greedy completion is an identity request (fake_openai).
    assert fake.identity == ["POST /v1/completions"]
    bodies = [r["body"] for r in fake.requests]
    assert [r["path"] for r in fake.requests] == ["/v1/completions"] * 4
    assert bodies[0]["echo"] is True and bodies[0]["prompt"] == SELF_CHECK_PROMPT + " blue"
    assert sorted(b["prompt"] for b in bodies[1:]) == sorted(r.context + r.continuation for r in reqs)
    assert all(b["echo"] is True and b["max_tokens"] == 1 and b["logprobs"] == 1 for b in bodies[1:])
    # The check runs once per backend.
    b.loglikelihood(reqs[:1])
    assert fake.seen() == 5 and len(fake.identity) == 1


def test_measure_alignment_is_zero_on_a_correct_server(fake):
    assert backend(fake)._measure_alignment() == pytest.approx(0.0)
    assert [r["fault"] for r in fake.requests] == ["ok"] and fake.identity == ["POST /v1/completions"]


def test_self_check_refuses_a_server_with_misaligned_echo(fake):
    fake.faults.append("shifted")  # on the self-check's echo
    b = backend(fake)
    with pytest.raises(LlmassayError) as info:
        b.loglikelihood([LoglikelihoodRequest("a", " b")])
    message = one_line(info)
    assert "failed the log-probability self-check" in message and "refusing loglikelihood" in message
    assert fake.seen() == 1  # no scoring request was sent
    fake.faults.append("shifted")
    assert b._measure_alignment() > SELF_CHECK_TOLERANCE
    assert fake.seen() == 2 and len(fake.identity) == 1  # the greedy completion is asked once per backend


def test_logprob_check_false_skips_the_self_check(fake):
    out = backend(fake, logprob_check=False).loglikelihood([LoglikelihoodRequest("one", " two")])
    assert out[0].logprob == pytest.approx(toy_logprob(" two"))
    assert fake.seen() == 1


def test_logprobs_of_the_wrong_length_are_refused(fake):
    b = backend(fake, logprob_check=False)
    fake.faults.append("bad-logprobs")
    with pytest.raises(LlmassayError) as info:
        b.loglikelihood([LoglikelihoodRequest("one two", " three")])
    assert "logprobs arrays of inconsistent lengths" in one_line(info)


def test_a_server_without_prompt_logprobs_is_refused(fake):
    fake.faults.append("generated-only")
    with pytest.raises(LlmassayError) as info:
        backend(fake, logprob_check=False).loglikelihood([LoglikelihoodRequest("one two", " three")])
    assert "log-probabilities for generated tokens only" in one_line(info)


# -- retries -----------------------------------------------------------------------------
def test_429_twice_then_ok_honours_retry_after(fake):
    fake.faults.extend(["429:0.2", "429"])
    b = backend(fake)
    slept: list[float] = []
    b._sleep = lambda s: (slept.append(s), time.sleep(s))  # the schedule, and the real wait
    out = b.generate([GenerateRequest(prompt="Question: 3+4?\nAnswer:", max_tokens=4)])
    assert out[0].text == " 7"
    assert [r["fault"] for r in fake.requests] == ["429:0.2", "429", "ok"]
    assert fake.requests[1]["time"] - fake.requests[0]["time"] >= 0.19  # Retry-After: 0.2, waited for real
    # the schedule, not the machine's wall time: Retry-After honoured, then backoff (cap 0.02 at attempt 1)
    assert slept[0] == pytest.approx(0.2) and 0.01 <= slept[1] <= 0.02 and len(slept) == 2
    assert b.retries == 2


def test_an_unparseable_retry_after_falls_back_to_backoff(fake):
    fake.faults.extend(["429:soon", "429:Wed, 21 Oct 2015 07:28:00 GMT"])  # garbage, a date in the past
    b = backend(fake, backoff_base=1.0, backoff_max=30.0)
    slept: list[float] = []
    b._sleep = slept.append  # the schedule the backend computed, not the machine's wall time
    assert b.generate([GenerateRequest(prompt="x", max_tokens=2)])[0].text == " 7"
    assert fake.seen() == 3 and len(slept) == 2
    assert 0.5 <= slept[0] <= 1.0  # "soon": the first backoff step, base 1 s with equal jitter
    assert slept[1] == 0.0  # a date in the past: retry now


@pytest.mark.parametrize("fault", ["500", "502", "503", "500-list", "drop", "stall"])
def test_transient_faults_are_retried(fake, fault):
    fake.faults.extend([fault, fault])
    b = backend(fake)
    assert b.generate([GenerateRequest(prompt="x", max_tokens=2)])[0].text == " 7"
    assert b.retries == 2
    assert [r["fault"] for r in fake.requests] == [fault, fault, "ok"]


def test_persistent_500_gives_one_line_error_after_bounded_attempts(fake):
    fake.fail_after = (0, "500")
    with pytest.raises(LlmassayError) as info:
        backend(fake, max_retries=2).generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert one_line(info).endswith("failed after 3 attempts: HTTP 500: server exploded")
    assert fake.seen() == 3


def test_persistent_stall_names_the_timeout(fake):
    fake.fail_after = (0, "stall")
    with pytest.raises(LlmassayError) as info:
        backend(fake, max_retries=1, timeout=0.2).generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert one_line(info).endswith("failed after 2 attempts: timed out")
    assert fake.seen() == 2


def test_a_dead_server_stops_a_batch_early(fake):
    fake.fail_after = (0, "503")
    b = backend(fake, max_retries=1, concurrency=2)
    with pytest.raises(LlmassayError, match="failed after 2 attempts: HTTP 503"):
        b.generate([GenerateRequest(prompt=f"q{i}", max_tokens=2) for i in range(40)])
    # Requests not yet started when the first one failed are never sent.
    assert 2 <= fake.seen() <= 12  # 40 requests × 2 attempts = 80 without the early stop


def test_client_errors_are_not_retried(fake):
    fake.faults.append("400")
    with pytest.raises(LlmassayError) as info:
        backend(fake).generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert one_line(info).endswith("answered HTTP 400: bad request: unknown model")
    assert fake.seen() == 1


@pytest.mark.parametrize(
    "fault,pattern",
    [("malformed", "returned malformed JSON"), ("empty-choices", "response has no choices")],
)
def test_broken_responses_name_the_cause(fake, fault, pattern):
    fake.faults.append(fault)
    with pytest.raises(LlmassayError) as info:
        backend(fake).generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert pattern in one_line(info)
    assert fake.seen() == 1  # a broken 200 is not retried


def test_chat_requests_go_to_chat_completions(fake):
    messages = (("system", "Be brief."), ("user", "colour?"))
    out = backend(fake).generate([GenerateRequest(messages=messages, max_tokens=3)])
    assert out[0].text == "blue" and out[0].n_prompt_tokens == 5 and out[0].n_tokens == 1
    (req,) = fake.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["body"]["messages"] == [{"role": r, "content": c} for r, c in messages]
    assert req["body"]["temperature"] == 0.0 and req["body"]["max_tokens"] == 3


def test_api_key_comes_from_the_named_variable_and_goes_nowhere_else(fake, monkeypatch, tmp_path):
    secret = "sk-test-6f1d9a2b"
    monkeypatch.setenv("LLMASSAY_TEST_KEY", secret)
    b = backend(fake, api_key_env="LLMASSAY_TEST_KEY")
    b.generate([GenerateRequest(messages=(("user", "colour?"),), max_tokens=3)])
    assert fake.requests[-1]["auth"] == f"Bearer {secret}"
    assert secret not in json.dumps(b.fingerprint())
    out = tmp_path / "out"
    evaluate(RunConfig(model="openai/toy", tasks=["arith_sample"], limit=3, output_path=str(out),
                       cache_path=str(tmp_path / "c.sqlite"),
                       model_args={"base_url": fake.base_url, "api_key_env": "LLMASSAY_TEST_KEY", **FAST}))
    assert {r["auth"] for r in fake.requests} == {f"Bearer {secret}"}
    written = [p for p in [*out.rglob("*"), tmp_path / "c.sqlite"] if p.is_file()]
    assert len(written) >= 3
    for path in written:
        assert secret.encode() not in path.read_bytes(), path
    monkeypatch.delenv("LLMASSAY_TEST_KEY")
    with pytest.raises(LlmassayError, match="LLMASSAY_TEST_KEY .* is not set"):
        backend(fake, api_key_env="LLMASSAY_TEST_KEY")


def test_no_api_key_sends_no_authorization(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hosted-only")  # a base_url model arg is another server
    backend(fake).generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert fake.requests[0]["auth"] is None


CANARY = "sk-canary-3b9e71c04d"


def test_openai_api_key_and_base_url_are_read_by_default_and_the_key_goes_nowhere_else(
        fake, monkeypatch, tmp_path, capsys):
    """As the openai SDK: no base_url model arg, so OPENAI_BASE_URL and OPENAI_API_KEY."""
    from llmassay.cli import main

    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("LLMASSAY_HOME", str(tmp_path / "home"))
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    argv = ["run", "--model", "openai/toy", "--model-args", "max_retries=0", "--tasks", "arith_sample",
            "--limit", "3", "--output-path", str(out), "--cache-path", str(cache)]
    assert main(argv) == 0
    assert fake.seen() == 3 and {r["auth"] for r in fake.requests} == {f"Bearer {CANARY}"}
    printed = capsys.readouterr()
    assert CANARY not in printed.out + printed.err and str(out) in printed.out
    written = [p for p in [*tmp_path.rglob("*")] if p.is_file()]
    assert cache in written and any(p.name.startswith("results_") for p in written)
    for path in written:
        assert CANARY.encode() not in path.read_bytes(), path
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    assert results["config"]["model_args"] == {"max_retries": 0}
    # The cache key holds no key: another key reuses every answer.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-rotated")
    assert main([*argv[:-3], str(tmp_path / "out2"), *argv[-2:]]) == 0
    assert fake.seen() == 3
    assert CANARY not in json.dumps(OpenAIBackend("toy").fingerprint())


def test_api_key_env_overrides_openai_api_key(fake, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("LLMASSAY_TEST_KEY", "sk-named")
    OpenAIBackend("toy", api_key_env="LLMASSAY_TEST_KEY").generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert fake.requests[0]["auth"] == "Bearer sk-named"


def test_the_hosted_api_without_a_key_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(LlmassayError) as info:
        OpenAIBackend("gpt-4o-mini")
    assert one_line(info) == ("openai: https://api.openai.com/v1 needs an API key: set OPENAI_API_KEY "
                              "(or api_key_env=NAME; base_url=URL for another server)")
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    assert OpenAIBackend("gpt-4o-mini").base_url == "https://api.openai.com/v1"  # no request is made here


@pytest.mark.parametrize("env,args,hint", [
    ({"OPENAI_BASE_URL": "fake"}, {}, "no API key was sent: set OPENAI_API_KEY"),
    ({"OPENAI_BASE_URL": "fake", "OPENAI_API_KEY": CANARY}, {}, "the key in OPENAI_API_KEY was refused: check it"),
    ({}, {"base_url": "fake"}, "no API key was sent: give api_key_env=NAME, the environment variable holding the key"),
    ({"K": CANARY}, {"base_url": "fake", "api_key_env": "K"}, "the key in K (api_key_env) was refused: check it"),
], ids=["no-key", "OPENAI_API_KEY", "base_url", "api_key_env"])
def test_a_401_is_one_line_naming_the_variable_to_set(fake, monkeypatch, env, args, hint):
    from llmassay.efficiency.timing import timed_generate

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, fake.base_url if value == "fake" else value)
    b = OpenAIBackend("toy", **{k: fake.base_url if v == "fake" else v for k, v in args.items()}, **FAST)
    fake.faults.extend(["401", "401"])
    with pytest.raises(LlmassayError) as info:
        b.generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert one_line(info) == f"openai: {fake.base_url}/completions answered HTTP 401: invalid api key ({hint})"
    with pytest.raises(LlmassayError) as info:  # a streamed request says the same
        timed_generate(b, GenerateRequest(prompt="x", max_tokens=2))
    assert one_line(info) == f"openai: {fake.base_url}/completions answered HTTP 401: invalid api key ({hint})"
    assert fake.seen("401") == 2


# -- end to end through evaluate() ---------------------------------------------------------
def e2e_config(fake: FakeOpenAI, tmp_path: Path, **kwargs) -> RunConfig:
    return RunConfig(
        model="openai/fake", tasks=["arith_sample"], limit=6, output_path=str(tmp_path / "o"),
        cache_path=str(tmp_path / "c.sqlite"),
        model_args={"base_url": fake.base_url, "backoff_base": 0.01, "max_retries": 2, "timeout": 5.0},
        **kwargs,
    )


def test_run_completes_through_rate_limits(fake, tmp_path):
    fake.faults.extend(["429", "429"])
    out = evaluate(e2e_config(fake, tmp_path))
    assert out.results_path.is_file()
    assert json.loads(out.results_path.read_text())["results"] == out.results["results"]
    acc = out.results["results"]["arith_sample"]["accuracy"]["exact_match"]
    assert acc["n"] == 6
    assert fake.seen("429") == 2 and fake.seen("ok") == 6
    rows = [json.loads(x) for x in out.sample_paths[0].read_text().splitlines()]
    assert [r["generation"] for r in rows] == [" 7"] * 6
    assert acc["value"] == pytest.approx(sum(r["target"] == "7" for r in rows) / 6)


def test_server_dying_mid_run_keeps_finished_samples(fake, tmp_path):
    fake.fail_after = (4, "500")
    cfg = e2e_config(fake, tmp_path, chunk_size=2)
    cfg.limit = 12
    with pytest.raises(LlmassayError) as info:
        evaluate(cfg)
    assert "failed after 3 attempts: HTTP 500" in one_line(info)
    (log,) = Path(cfg.output_path).glob(".llmassay/*/arith_sample__accuracy.jsonl")
    ids = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 4  # two chunks of two finished, the third did not
    assert not list(Path(cfg.output_path).glob("results_*.json"))
    fake.fail_after = None  # the server recovers: the rerun computes only the rest
    before = fake.seen()
    done = evaluate(cfg)
    assert done.results["results"]["arith_sample"]["accuracy"]["exact_match"]["n"] == 12
    assert fake.seen() - before == 12 - len(ids)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted({r["id"] for r in rows}) and len(rows) == 12


def item_prompts(fake: FakeOpenAI, since: int = 0) -> list[str]:
    return [r["body"]["prompt"] for r in fake.requests[since:]]


def test_answers_that_arrived_before_the_server_failed_are_not_bought_again(fake, tmp_path):
    """Issue #16 item 14, as a new user meets it: 2 answers, then HTTP 500 for good."""
    fake.fail_after = (2, "500")
    cfg = e2e_config(fake, tmp_path, chunk_size=4)  # one chunk: no sample finishes
    cfg.limit = 4
    with pytest.raises(LlmassayError) as info:
        evaluate(cfg)
    message = one_line(info)
    assert "HTTP 500" in message and message.endswith("(2 answers kept in the cache; rerun to continue)")
    answered = {r["body"]["prompt"] for r in fake.requests if r["fault"] == "ok"}
    assert len(answered) == 2 and len(RequestCache(cfg.cache_path)) == 2
    fake.fail_after = None
    sent = len(fake.requests)
    done = evaluate(cfg)
    rerun = item_prompts(fake, sent)
    assert len(rerun) == 2 and not answered & set(rerun)  # only the unanswered requests
    assert done.results["engine"]["cache_hits"] == 2 and done.results["engine"]["computed"] == 2
    rows = [json.loads(line) for line in done.sample_paths[0].read_text().splitlines()]
    assert [r["generation"] for r in rows] == [" 7"] * 4


# -- identity: the cache and resume keys' first half ---------------------------------------
def test_fingerprint_carries_what_the_server_says_of_itself(fake):
    fake.props_path, fake.created = "/models/a.gguf", 1600000000
    fp = backend(fake).fingerprint()
    assert fp["server_model"] == {"id": "fake-model", "created": 1600000000, "meta": None}
    assert fp["model_path"] == "/models/a.gguf"
    assert len(fp["greedy_sha256"]) == 64
    assert fake.identity == ["GET /v1/models", "GET /props", "POST /v1/completions"] and fake.requests == []
    fake.created = "now"  # llama.cpp and vLLM: the time of the request, not of the model
    assert backend(fake).fingerprint()["server_model"]["created"] is None


def test_the_self_check_reuses_the_fingerprints_greedy_completion(fake):
    b = backend(fake)
    b.fingerprint()
    b.loglikelihood([LoglikelihoodRequest("one", " two")])
    assert fake.identity[-1] == "POST /v1/completions" and fake.identity.count("POST /v1/completions") == 1
    assert [r["body"]["echo"] for r in fake.requests] == [True, True]  # the self-check's echo, the item


def test_a_server_without_props_still_has_a_fingerprint(fake):
    fake.model_id = "gpt-other"  # /v1/models lists one model, not ours by name: still the one answering
    fp = backend(fake).fingerprint()
    assert fp["model_path"] is None and fp["server_model"]["id"] == "gpt-other"


def test_a_server_refusing_identity_requests_still_runs(fake):
    fake.identity_fault = "400"  # e.g. a chat-only API: no /v1/models, no raw completions
    fp = backend(fake).fingerprint()
    assert (fp["server_model"], fp["model_path"], fp["greedy_sha256"]) == (None, None, None)
    assert backend(fake).generate([GenerateRequest(prompt="x", max_tokens=2)])[0].text == " 7"


@pytest.mark.parametrize("fault,pattern", [("503", "failed after 2 attempts: HTTP 503"),
                                           ("401", "answered HTTP 401: invalid api key")])
def test_a_dead_server_or_a_refused_key_fails_the_fingerprint_in_one_line(fake, fault, pattern):
    fake.identity_fault = fault
    with pytest.raises(LlmassayError) as info:
        backend(fake, max_retries=1).fingerprint()
    assert pattern in one_line(info) and fake.requests == []


REQS = [GenerateRequest(prompt=f"Question {i}: 3+4?", max_tokens=4) for i in range(3)]


def run_on(port: int, cache: Path, **server) -> tuple[FakeOpenAI, Engine, list[str]]:
    """A server on `port` with the given "weights" and self-description, asked REQS."""
    with FakeOpenAI(port) as fake:
        for key, value in server.items():
            setattr(fake, key, value)
        engine = Engine(OpenAIBackend("same-name", base_url=fake.base_url, **FAST), cache=RequestCache(cache))
        texts = [g.text for g in engine.generate(REQS)]
    return fake, engine, texts


@pytest.mark.parametrize(
    "change",
    [
        {"greedy": " green", "completion": " 8"},  # other weights: the model name says nothing
        {"props_path": "/models/b.gguf"},  # llama.cpp restarted with another file
        {"created": 1600000999},
        {"model_id": "other-model"},
    ],
    ids=["answers", "model_path", "created", "id"],
)
def test_another_model_behind_the_same_url_and_name_is_not_served_from_the_cache(tmp_path, change):
    """Issue #16 item 2: a server restarted on the same port with other weights."""
    first = {"props_path": "/models/a.gguf", "created": 1600000000}
    fake, engine, texts = run_on(0, tmp_path / "c.sqlite", **first)
    port = fake.server.server_address[1]
    assert texts == [" 7"] * 3 and engine.stats.computed == 3
    again, engine, texts = run_on(port, tmp_path / "c.sqlite", **first)  # the control: same model
    assert texts == [" 7"] * 3 and engine.stats.cache_hits == 3 and item_prompts(again) == []
    other, engine, texts = run_on(port, tmp_path / "c.sqlite", **{**first, **change})
    assert engine.stats.cache_hits == 0 and len(item_prompts(other)) == 3
    assert texts == [change.get("completion", " 7")] * 3


def test_a_request_time_created_stamp_keeps_the_cache(tmp_path):
    fake, _, _ = run_on(0, tmp_path / "c.sqlite", created="now")
    time.sleep(1.1)  # the next stamp is another second
    again, engine, _ = run_on(fake.server.server_address[1], tmp_path / "c.sqlite", created="now")
    assert engine.stats.cache_hits == 3 and item_prompts(again) == []


# -- a real llama-cpp-python server --------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory):
    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048"],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log.read_text()[-500:]}")
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer within 60 s")
            try:
                if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield base
    finally:
        proc.kill()
        proc.wait(timeout=30)


# MMLU-style and short: the server builds each echoed token's top_logprobs by sorting the
# whole vocabulary in Python (tens of ms per token), so long prompts make this test slow.
MMLU_STYLE = [
    "Question: What is the capital of France?\nA. Berlin\nB. Paris\nC. Rome\nD. Madrid\nAnswer:",
    "Question: How many legs does a spider have?\nA. 6\nB. 4\nC. 8\nD. 10\nAnswer:",
]


def mmlu_requests() -> list[LoglikelihoodRequest]:
    return [LoglikelihoodRequest(q, f" {c}") for q in MMLU_STYLE for c in "ABCD"]


def raw_echo(base: str, text: str) -> dict:
    body = {"model": "smollm2", "prompt": text, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 1}
    return httpx.post(f"{base}/completions", json=body, timeout=60).json()


def local_position_logprobs(smollm2, text: str) -> tuple[list[int], np.ndarray]:
    """Tokens of `text` and the log-softmax of every position's logits (row j predicts token j+1),
    from a raw llama-cpp-python model with logits_all (the backend computes only needed rows)."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(smollm2.model_path), n_ctx=2048, logits_all=True, verbose=False)
    tokens = smollm2.tokenize(text)
    llm.reset()
    llm.eval(tokens)
    rows = np.asarray(llm.scores[: len(tokens)], dtype=np.float64)
    llm.close()
    top = rows.max(axis=1, keepdims=True)
    return tokens, rows - (top + np.log(np.exp(rows - top).sum(axis=1, keepdims=True)))


@pytest.mark.slow
def test_real_server_greedy_generation_equals_embedded_backend(llama_server, smollm2):
    # repeat_penalty=1.0: the server's request default is 1.1, the embedded backend's 1.0.
    server = OpenAIBackend("smollm2", base_url=llama_server, repeat_penalty=1.0)
    reqs = [
        GenerateRequest(prompt="The capital of France is", max_tokens=16),
        GenerateRequest(prompt="Question: What is 2 + 3?\nAnswer:", max_tokens=16, stop=("\n",)),
        GenerateRequest(prompt="def fibonacci(n):\n", max_tokens=16),
        GenerateRequest(messages=(("user", "Name a colour."),), max_tokens=16),
    ]
    remote, local = server.generate(reqs), smollm2.generate(reqs)
    assert [g.text for g in remote] == [g.text for g in local]
    assert all(g.text.strip() for g in remote)
    assert [g.n_tokens for g in remote] == [g.n_tokens for g in local]
    assert [g.n_prompt_tokens for g in remote] == [g.n_prompt_tokens for g in local]
    assert server.tokenize("Hello world") == smollm2.tokenize("Hello world")


@pytest.mark.slow
def test_real_server_echo_layout_is_the_known_bug(llama_server, smollm2):
    """What llama-cpp-python 0.3.x's server returns for echo=True, logprobs=1, max_tokens=1
    with SmolLM2 (a model without BOS): one entry per prompt token and none for the
    generated token; entry j holds log softmax(logits at position j)[t_j], i.e. the
    distribution that predicts t_{j+1} evaluated at t_j, never log P(t_j | t_<j)."""
    for req in mmlu_requests()[::3]:
        text = req.context + req.continuation
        data = raw_echo(llama_server, text)
        choice, lp = data["choices"][0], data["choices"][0]["logprobs"]
        tokens, position_logprobs = local_position_logprobs(smollm2, text)
        n = len(tokens)
        assert data["usage"]["prompt_tokens"] == n and choice["text"].startswith(text)
        # The generated token (if not end-of-text) is in `text` but never in the logprobs.
        assert len(lp["tokens"]) == len(lp["token_logprobs"]) == len(lp["text_offset"]) == n
        assert "".join(lp["tokens"]) == text and max(lp["text_offset"]) < len(text)
        assert lp["token_logprobs"][0] is None
        same_row = [position_logprobs[j, tokens[j]] for j in range(1, n)]
        correct = [position_logprobs[j - 1, tokens[j]] for j in range(1, n)]
        # The server batches the prompt its own way (its n_batch, threads): rows agree up to
        # kernel rounding, which differs by CPU build (1e-3 failed on an Intel AVX-512 build);
        # 0.05 nats still tells the shifted layout from the correct one (gaps > 1 nat below).
        assert lp["token_logprobs"][1:] == pytest.approx(same_row, abs=0.05)
        assert max(abs(a - b) for a, b in zip(lp["token_logprobs"][1:], correct)) > 1.0
        # The embedded backend's (correct) number is the one the server never sends.
        truth = smollm2.loglikelihood([req])[0]
        assert truth.n_tokens == 1 and truth.logprob == pytest.approx(correct[-1], abs=1e-4)
        assert abs(lp["token_logprobs"][-1] - truth.logprob) > 1.0


@pytest.mark.slow
def test_real_server_loglikelihood_is_refused(llama_server, smollm2):
    server = OpenAIBackend("smollm2", base_url=llama_server)
    reqs = mmlu_requests()
    assert server._measure_alignment() > 1.0
    with pytest.raises(LlmassayError) as info:
        server.loglikelihood(reqs)
    message = one_line(info)
    assert "failed the log-probability self-check" in message and "llama-cpp-python#1983" in message
    # What the check protects against: the unchecked numbers are far from the true ones
    # and would pick different answers.
    unchecked = OpenAIBackend("smollm2", base_url=llama_server, logprob_check=False).loglikelihood(reqs)
    truth = smollm2.loglikelihood(reqs)
    gaps = [abs(u.logprob - t.logprob) for u, t in zip(unchecked, truth)]
    assert min(gaps) > 1e-3 and max(gaps) > 1.0
    assert [u.n_tokens for u in unchecked] == [t.n_tokens for t in truth] == [1] * len(reqs)


@pytest.mark.slow
def test_real_server_fingerprint_is_stable_and_names_the_model(llama_server):
    """Two backends on one real server agree (a rerun hits the cache), and the key holds
    more than the name the server ignores."""
    first, second = (OpenAIBackend("smollm2", base_url=llama_server).fingerprint() for _ in range(2))
    assert first == second
    assert first["server_model"]["id"] and first["greedy_sha256"]
    other_name = OpenAIBackend("anything", base_url=llama_server).fingerprint()
    assert other_name["greedy_sha256"] == first["greedy_sha256"]  # same weights, whatever the name
