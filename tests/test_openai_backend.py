"""The openai backend against a scripted local fake server (faults) and a real
llama-cpp-python server (agreement with the embedded backend, the echo bug)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fake_openai import FakeOpenAI, toy_logprob
from llmassay.backends.openai_compat import OpenAIBackend
from llmassay.evaluate import RunConfig, evaluate
from llmassay.types import GenerateRequest, LlmassayError, LoglikelihoodRequest

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 0.3}


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


def backend(fake: FakeOpenAI, **kwargs) -> OpenAIBackend:
    return OpenAIBackend("toy", base_url=fake.base_url, **{**FAST, **kwargs})


def test_loglikelihood_on_a_correct_server_passes_the_self_check(fake):
    out = backend(fake).loglikelihood([LoglikelihoodRequest("Question: 1+1?\nAnswer:", " 2 apples")])[0]
    assert out.n_tokens == 2
    assert out.logprob == pytest.approx(toy_logprob(" 2") + toy_logprob(" apples"))
    assert out.is_greedy
    paths = [r["path"] for r in fake.requests]
    assert paths == ["/v1/completions"] * 3  # self-check generate + echo, then the request
    assert fake.requests[0]["body"]["logprobs"] == 1 and fake.requests[2]["body"]["echo"] is True


def test_self_check_refuses_a_server_with_misaligned_echo(fake):
    fake.faults.extend(["ok", "shifted"])
    with pytest.raises(LlmassayError, match="failed the log-probability self-check") as info:
        backend(fake).loglikelihood([LoglikelihoodRequest("a", " b")])
    assert "\n" not in str(info.value)


def test_429_twice_then_ok_honours_retry_after(fake):
    fake.faults.extend(["429:0.2", "429"])
    start = time.monotonic()
    out = backend(fake).generate([GenerateRequest(prompt="Question: 3+4?\nAnswer:", max_tokens=4)])
    assert out[0].text == " 7"
    assert len(fake.requests) == 3
    assert fake.requests[1]["time"] - fake.requests[0]["time"] >= 0.19
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("fault", ["500", "502", "503", "drop", "stall"])
def test_transient_faults_are_retried(fake, fault):
    fake.faults.extend([fault, fault])
    b = backend(fake)
    assert b.generate([GenerateRequest(prompt="x", max_tokens=2)])[0].text == " 7"
    assert b.retries == 2


def test_persistent_500_gives_one_line_error_after_bounded_attempts(fake):
    fake.fail_after = (0, "500")
    with pytest.raises(LlmassayError, match=r"failed after 3 attempts: HTTP 500: server exploded") as info:
        backend(fake, max_retries=2).generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert "\n" not in str(info.value)
    assert len(fake.requests) == 3


def test_client_errors_are_not_retried(fake):
    fake.faults.append("400")
    with pytest.raises(LlmassayError, match=r"HTTP 400: bad request: unknown model"):
        backend(fake).generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "fault,pattern",
    [("malformed", "returned malformed JSON"), ("empty-choices", "response has no choices")],
)
def test_broken_responses_name_the_cause(fake, fault, pattern):
    fake.faults.append(fault)
    with pytest.raises(LlmassayError, match=pattern):
        backend(fake).generate([GenerateRequest(prompt="x", max_tokens=2)])


def test_logprobs_of_the_wrong_length_are_refused(fake):
    b = backend(fake, logprob_check=False)
    fake.faults.append("bad-logprobs")
    with pytest.raises(LlmassayError, match="logprobs arrays of inconsistent lengths"):
        b.loglikelihood([LoglikelihoodRequest("one two", " three")])


def test_api_key_comes_from_the_named_variable_and_goes_nowhere_else(fake, monkeypatch, tmp_path):
    secret = "sk-test-6f1d9a2b"
    monkeypatch.setenv("LLMASSAY_TEST_KEY", secret)
    b = backend(fake, api_key_env="LLMASSAY_TEST_KEY")
    b.generate([GenerateRequest(messages=(("user", "colour?"),), max_tokens=3)])
    assert fake.requests[-1]["auth"] == f"Bearer {secret}"
    assert fake.requests[-1]["path"] == "/v1/chat/completions"
    assert secret not in json.dumps(b.fingerprint())
    out = tmp_path / "out"
    evaluate(RunConfig(model="openai/toy", tasks=["arith_sample"], limit=3, output_path=str(out),
                       cache_path=str(tmp_path / "c.sqlite"),
                       model_args={"base_url": fake.base_url, "api_key_env": "LLMASSAY_TEST_KEY", **FAST}))
    for path in [*out.rglob("*"), tmp_path / "c.sqlite"]:
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    monkeypatch.delenv("LLMASSAY_TEST_KEY")
    with pytest.raises(LlmassayError, match="LLMASSAY_TEST_KEY .* is not set"):
        backend(fake, api_key_env="LLMASSAY_TEST_KEY")


def test_run_completes_through_rate_limits(fake, tmp_path):
    fake.faults.extend(["429", "429"])
    out = evaluate(RunConfig(model="openai/toy", tasks=["arith_sample"], limit=6, output_path=str(tmp_path / "o"),
                             use_cache=False, model_args={"base_url": fake.base_url, **FAST}))
    acc = out.results["results"]["arith_sample"]["accuracy"]["exact_match"]
    assert acc["n"] == 6
    rows = [json.loads(x) for x in out.sample_paths[0].read_text().splitlines()]
    assert [r["generation"] for r in rows] == [" 7"] * 6
    assert acc["value"] == sum(r["target"] == "7" for r in rows) / 6


def test_server_dying_mid_run_keeps_finished_samples(fake, tmp_path):
    fake.fail_after = (4, "500")
    out = tmp_path / "o"
    cfg = RunConfig(model="openai/toy", tasks=["arith_sample"], limit=12, output_path=str(out), use_cache=False,
                    chunk_size=2, model_args={"base_url": fake.base_url, "max_retries": 1, **FAST})
    with pytest.raises(LlmassayError, match="failed after 2 attempts: HTTP 500"):
        evaluate(cfg)
    (log,) = out.glob(".llmassay/*/arith_sample__accuracy.jsonl")
    ids = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert len(ids) == len(set(ids)) >= 4
    fake.fail_after = None  # the server recovers: the rerun completes the rest
    before = len(fake.requests)
    done = evaluate(cfg)
    assert done.results["results"]["arith_sample"]["accuracy"]["exact_match"]["n"] == 12
    assert len(fake.requests) - before == 12 - len(ids)


# -- a real server -----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(smollm2_path: Path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "2048"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
    )
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 90 s")
    yield base
    proc.kill()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_real_server_greedy_generation_equals_embedded_backend(llama_server, smollm2):
    server = OpenAIBackend("smollm2", base_url=llama_server, repeat_penalty=1.0)
    reqs = [
        GenerateRequest(prompt="The capital of France is", max_tokens=16),
        GenerateRequest(prompt="Question: What is 2 + 3?\nAnswer:", max_tokens=8, stop=("\n",)),
        GenerateRequest(messages=(("user", "Name a colour."),), max_tokens=16),
    ]
    remote, local = server.generate(reqs), smollm2.generate(reqs)
    assert [g.text for g in remote] == [g.text for g in local]
    assert all(g.text for g in remote)
    assert server.tokenize("Hello world") == smollm2.tokenize("Hello world")


@pytest.mark.slow
def test_real_llama_cpp_server_echo_bug_is_detected(llama_server, smollm2):
    server = OpenAIBackend("smollm2", base_url=llama_server)
    req = LoglikelihoodRequest("The capital of France is", " Paris")
    with pytest.raises(LlmassayError, match="failed the log-probability self-check"):
        server.loglikelihood([req])
    # What the check protects against: the unchecked number is far from the true one.
    unchecked = OpenAIBackend("smollm2", base_url=llama_server, logprob_check=False).loglikelihood([req])[0]
    truth = smollm2.loglikelihood([req])[0]
    assert truth.is_greedy and abs(unchecked.logprob - truth.logprob) > 1.0
