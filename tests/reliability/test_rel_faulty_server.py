"""A faulty OpenAI-compatible server, end to end through `evaluate()`, one fault at a time.

For every fault the run either completes after bounded retries with exactly the results
of a clean run, or stops with a one-line LlmassayError naming the cause, with the samples
finished before the fault on disk; once the server recovers, rerunning computes only
the rest. (tests/test_openai_backend.py covers the same faults at the backend level.)
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from fake_openai import STALL_S, FakeOpenAI
from llmassay.cli import main
from llmassay.evaluation import RunConfig, evaluate
from llmassay.types import LlmassayError
from reliability_helpers import one_line, progress_log

pytestmark = pytest.mark.reliability

CATEGORY = "faulty server"
STALL_TIMEOUT_S = 0.6  # client timeout for the stall faults; STALL_S (1 s) is past it
TIMEOUT_S = 10.0  # otherwise: a slow answer on a loaded machine must not count as a fault
MAX_RETRIES = 2
ARITH_LIMIT, MMLU_LIMIT = 8, 4
assert STALL_TIMEOUT_S < STALL_S

# fault -> what the one-line error must name when the fault persists
RETRYABLE = {
    "429": "HTTP 429: rate limited",
    "429:0.05": "HTTP 429: rate limited",  # with Retry-After
    "500": "HTTP 500: server exploded",
    "502": "HTTP 502: server exploded",
    "503": "HTTP 503: server exploded",
    "502-html": "HTTP 502: Bad Gateway",
    "500-list": "HTTP 500",
    "drop": "connection failed",
    "close": "connection failed",
    "stall": "timed out",
    "stall-body": "timed out",
}
NOT_RETRYABLE = {
    "400": "answered HTTP 400: bad request: unknown model",
    "401": "answered HTTP 401: invalid api key",
    "malformed": "returned malformed JSON",
    "empty-choices": "response has no choices",
    "text-not-string": "returned generated text of type int, not a string",
}
LOGPROB_FAULTS = {  # on the echo requests that score multiple-choice answers
    "bad-logprobs": "logprobs arrays of inconsistent lengths",
    "truncated-logprobs": "echoed log-probabilities that stop at character",
    "nonnumeric-logprobs": "non-numeric values",
    "generated-only": "log-probabilities for generated tokens only",
}


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


def config(fake: FakeOpenAI, out: Path, task: str = "arith_sample", fault: str = "", **model_args) -> RunConfig:
    timeout = STALL_TIMEOUT_S if fault.startswith("stall") else TIMEOUT_S
    return RunConfig(
        model="openai/fake",
        tasks=[task],
        limit=ARITH_LIMIT if task == "arith_sample" else MMLU_LIMIT,
        output_path=str(out),
        use_cache=False,
        chunk_size=2,
        model_args={"base_url": fake.base_url, "backoff_base": 0.01, "backoff_max": 0.05, "max_retries": MAX_RETRIES,
                    "timeout": timeout, "concurrency": 2, **model_args},
    )


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory) -> dict[str, list[dict]]:
    """Per-sample rows of fault-free runs, the yardstick for every faulty one."""
    rows = {}
    with FakeOpenAI() as server:
        for task in ("arith_sample", "mmlu_sample"):
            out = evaluate(config(server, tmp_path_factory.mktemp("clean") / "o", task))
            rows[task] = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
    return rows


def logged_rows(out: Path, task: str) -> list[dict]:
    log = progress_log(out, task)
    return [json.loads(line) for line in log.read_text().splitlines()] if log else []


def check_stops_then_resumes(fake: FakeOpenAI, cfg: RunConfig, task: str, pattern: str, finished: int,
                              clean: list[dict]) -> None:
    """The run stops with one line naming the cause, keeps `finished` samples, and the rerun
    after recovery completes with only the remaining samples sent."""
    with pytest.raises(LlmassayError) as info:
        evaluate(cfg)
    assert pattern in one_line(str(info.value)), str(info.value)
    out = Path(cfg.output_path)
    kept = logged_rows(out, task)
    assert len(kept) == finished and len({r["id"] for r in kept}) == finished
    assert kept == clean[:finished]  # exactly the rows a clean run has for them
    assert not list(out.glob("results_*.json")) and not list(out.glob("samples_*.jsonl"))
    fake.faults.clear()
    fake.fail_after = None
    sent_before = len(fake.requests)
    done = evaluate(cfg)
    rows = [json.loads(line) for line in done.sample_paths[0].read_text().splitlines()]
    assert rows == clean
    new_paths = [r["path"] for r in fake.requests[sent_before:]]
    if task == "arith_sample":  # one request per sample
        assert len(new_paths) == len(clean) - finished
    assert done.results["results"][task]["accuracy"]


@pytest.mark.parametrize("fault", list(RETRYABLE))
def test_transient_fault_is_retried_and_the_run_completes(fake, tmp_path, clean_rows, reliability, fault):
    with reliability.case(CATEGORY, f"{fault} twice mid-run: completes after 2 retries, results as a clean run"):
        fake.fail_after = None
        fake.faults.extend(["ok"] * 3 + [fault, fault])
        out = evaluate(config(fake, tmp_path / "o", fault=fault))
        rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
        assert rows == clean_rows["arith_sample"]
        assert fake.seen(fault) == 2
        assert out.results["results"]["arith_sample"]["accuracy"]["exact_match"]["n"] == ARITH_LIMIT


@pytest.mark.parametrize("fault", list(RETRYABLE))
def test_persistent_fault_stops_after_bounded_retries_and_keeps_samples(fake, tmp_path, clean_rows, reliability,
                                                                        fault):
    with reliability.case(CATEGORY, f"{fault} from request 5 on: one-line error after {MAX_RETRIES + 1} attempts, "
                                    "4 samples kept, rerun completes"):
        fake.fail_after = (4, fault)
        cfg = config(fake, tmp_path / "o", fault=fault)
        started = time.monotonic()
        check_stops_then_resumes(fake, cfg, "arith_sample", RETRYABLE[fault], 4, clean_rows["arith_sample"])
        # Bounded: at most `concurrency` requests, each tried max_retries + 1 times, then stop.
        assert sum(1 for r in fake.requests if r["fault"] == fault) <= 2 * (MAX_RETRIES + 1)
        assert time.monotonic() - started < 60


@pytest.mark.parametrize("fault", list(NOT_RETRYABLE))
def test_unretryable_answer_stops_at_once_and_keeps_samples(fake, tmp_path, clean_rows, reliability, fault):
    with reliability.case(CATEGORY, f"{fault} at request 5: one-line error without retries, 4 samples kept, "
                                    "rerun completes"):
        fake.faults.extend(["ok"] * 4 + [fault])
        check_stops_then_resumes(fake, config(fake, tmp_path / "o", concurrency=1), "arith_sample",
                                  NOT_RETRYABLE[fault], 4, clean_rows["arith_sample"])
        assert fake.seen(fault) == 1


@pytest.mark.parametrize("fault", list(LOGPROB_FAULTS))
def test_wrong_logprobs_stop_the_run_and_keep_samples(fake, tmp_path, clean_rows, reliability, fault):
    with reliability.case(CATEGORY, f"{fault} on a scoring request: one-line error, finished samples kept, "
                                    "rerun completes"):
        # The self-check's echo (its greedy completion is an identity request, not counted), then
        # per chunk of 2 questions 8 echo + 2 generation requests.
        fake.fail_after = (1 + 10, fault)
        check_stops_then_resumes(fake, config(fake, tmp_path / "o", "mmlu_sample", concurrency=1), "mmlu_sample",
                                  LOGPROB_FAULTS[fault], 2, clean_rows["mmlu_sample"])


def test_misaligned_echo_is_refused_by_the_self_check(fake, tmp_path, reliability):
    with reliability.case(CATEGORY, "echo shifted by one token (llama-cpp-python#1983): self-check refuses, "
                                    "nothing scored"):
        fake.faults.append("shifted")  # on the self-check's echo
        with pytest.raises(LlmassayError) as info:
            evaluate(config(fake, tmp_path / "o", "mmlu_sample"))
        assert "failed the log-probability self-check" in one_line(str(info.value))
        assert fake.seen() == 1 and logged_rows(tmp_path / "o", "mmlu_sample") == []


def test_garbage_usage_counts_do_not_stop_a_run(fake, tmp_path, clean_rows, reliability):
    with reliability.case(CATEGORY, "usage counts that are not numbers: run completes, tokens counted as 0"):
        fake.fail_after = (0, "bad-usage")
        out = evaluate(config(fake, tmp_path / "o"))
        rows = [json.loads(line) for line in out.sample_paths[0].read_text().splitlines()]
        assert [r["generation"] for r in rows] == [r["generation"] for r in clean_rows["arith_sample"]]
        assert [r["n_tokens"] for r in rows] == [0] * ARITH_LIMIT
        assert out.results["tokens_processed"] == 0


def test_no_server_listening_is_one_line_at_once(tmp_path, reliability):
    # issue #25 item 2: a refused connection is not transient; it is not retried
    with reliability.case(CATEGORY, "nothing listening on the port: one-line error at once, no retries"):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        cfg = RunConfig(model="openai/fake", tasks=["arith_sample"], limit=2, output_path=str(tmp_path / "o"),
                        use_cache=False, model_args={"base_url": f"http://127.0.0.1:{port}/v1", "backoff_base": 0.01,
                                                     "max_retries": MAX_RETRIES, "timeout": 2.0})
        started = time.monotonic()
        with pytest.raises(LlmassayError) as info:
            evaluate(cfg)
        message = one_line(str(info.value))
        assert f"cannot connect to http://127.0.0.1:{port}/v1/" in message and "connection refused" in message
        assert time.monotonic() - started < 10


def test_cli_reports_a_dead_server_in_one_line_with_exit_1(fake, tmp_path, capsys, reliability):
    """A server that fails is a runtime failure (exit 1), not a usage error (2): CI tells them apart."""
    with reliability.case(CATEGORY, "503 forever through the CLI: exit 1, one 'error:' line, samples kept"):
        fake.fail_after = (4, "503")
        out = tmp_path / "o"
        code = main(["run", "--model", "openai/fake", "--model-args",
                     f"base_url={fake.base_url},backoff_base=0.01,backoff_max=0.05,max_retries=1,timeout={STALL_TIMEOUT_S}",
                     "--tasks", "arith_sample", "--limit", "8", "--chunk-size", "2", "--no-cache",
                     "--output-path", str(out)])
        err = capsys.readouterr().err
        assert code == 1
        # each retry is said (issue #25 item 2); the error itself is one line, the last
        *retries, last = err.strip().splitlines()
        assert retries and all(r.startswith("openai: retrying in ") and r.endswith("attempt 2/2") for r in retries)
        line = one_line(last)
        assert line.startswith("error: openai: ") and "failed after 2 attempts: HTTP 503" in line
        assert "Traceback" not in err
        assert len(logged_rows(out, "arith_sample")) == 4
