"""Any OpenAI-compatible server (vLLM, TGI, llama.cpp, ollama, hosted APIs) over httpx.

Two things matter more than features here:
- transient faults (429, 5xx, timeouts, dropped connections) are retried with capped
  exponential backoff and jitter, honouring Retry-After, and end in a one-line error;
- loglikelihoods are only trusted after a self-check. Some servers (llama-cpp-python's,
  abetlen/llama-cpp-python#1983) return echoed prompt log-probabilities shifted by one
  position, which silently corrupts every multiple-choice score. Before scoring, the
  backend generates a few tokens greedily with their log-probabilities, echo-scores the
  same text, and compares: equal numbers pass; numbers that match one position later are
  realigned; anything else refuses loglikelihood with an explanation.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
SELF_CHECK_PROMPT = "The three primary colours are red, yellow and"
SELF_CHECK_TOLERANCE = 0.05  # nats; servers compute the two passes in different batches


class OpenAIBackend:
    """`openai/<model>`; model args: base_url, api_key_env, concurrency, timeout,
    max_retries, backoff_base, backoff_max, logprob_check (true|false)."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        logprob_check: bool = True,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise LlmassayError(f"openai: unknown model args: {', '.join(sorted(unknown))}")
        self.model = model
        self.name = f"openai/{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise LlmassayError(f"openai: environment variable {api_key_env} (api_key_env) is not set")
            headers["Authorization"] = f"Bearer {key}"
        self.concurrency = max(1, int(concurrency))
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.logprob_check = bool(logprob_check)
        self._client = httpx.Client(
            timeout=httpx.Timeout(float(timeout)),
            headers=headers,
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        self._alignment: int | None = None  # 0 aligned, 1 server shifted by one
        self._check_lock = threading.Lock()
        self._jitter = random.Random()
        self.retries = 0
        self.tokens_evaluated = 0

    # -- Protocol -----------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        # The API key is deliberately absent: it must never reach a cache key or a file.
        return {"backend": "openai", "base_url": self.base_url, "model": self.model}

    def tokenize(self, text: str) -> list[int]:
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        for url, payload in (
            (f"{root}/extras/tokenize", {"input": text}),  # llama-cpp-python server
            (f"{root}/tokenize", {"model": self.model, "prompt": text}),  # vLLM
        ):
            try:
                data = self._post(url, payload, retry_4xx=False)
            except LlmassayError:
                continue
            tokens = data.get("tokens")
            if isinstance(tokens, list):
                return [int(t) for t in tokens]
        raise LlmassayError(f"openai: {self.base_url} offers no tokenize endpoint")

    def generate(self, reqs: Sequence[GenerateRequest]) -> list[Generation]:
        return self._map(self._generate_one, reqs)

    def loglikelihood(self, reqs: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        self._ensure_alignment()
        return self._map(self._loglikelihood_one, reqs)

    # -- HTTP with retries --------------------------------------------------------------
    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.concurrency == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(fn, items))

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None and (header := response.headers.get("Retry-After")):
            try:
                return min(float(header), self.backoff_max)
            except ValueError:
                when = email.utils.parsedate_to_datetime(header)
                if when is not None:
                    return min(max(0.0, when.timestamp() - time.time()), self.backoff_max)
        cap = min(self.backoff_max, self.backoff_base * 2**attempt)
        return cap / 2 + self._jitter.uniform(0, cap / 2)  # "equal jitter"

    def _post(self, url: str, payload: dict[str, Any], retry_4xx: bool = True) -> dict[str, Any]:
        last_cause = ""
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._client.post(url, json=payload)
            except httpx.TimeoutException:
                last_cause = "timed out"
            except httpx.TransportError as exc:
                last_cause = f"connection failed ({type(exc).__name__})"
            else:
                if response.status_code < 400:
                    try:
                        data = response.json()
                    except ValueError:
                        raise LlmassayError(f"openai: {url} returned malformed JSON") from None
                    if not isinstance(data, dict):
                        raise LlmassayError(f"openai: {url} returned JSON that is not an object")
                    return data
                last_cause = f"HTTP {response.status_code}: {_error_message(response)}"
                if response.status_code not in RETRYABLE_STATUS or not retry_4xx:
                    raise LlmassayError(f"openai: {url} answered {last_cause}")
            if attempt < self.max_retries:
                self.retries += 1
                time.sleep(self._delay(attempt, response))
        raise LlmassayError(f"openai: {url} failed after {self.max_retries + 1} attempts: {last_cause}")

    # -- generation ---------------------------------------------------------------------
    def _generate_one(self, req: GenerateRequest) -> Generation:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "seed": req.seed + req.repeat,
        }
        if req.stop:
            body["stop"] = list(req.stop)
        if req.grammar is not None:
            body["grammar"] = req.grammar  # llama.cpp-family extension
        start = time.perf_counter()
        if req.messages is not None:
            body["messages"] = [{"role": r, "content": c} for r, c in req.messages]
            if req.json_schema is not None:
                import json

                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": json.loads(req.json_schema), "strict": True},
                }
            data = self._post(f"{self.base_url}/chat/completions", body)
            choice = _first_choice(data)
            text = (choice.get("message") or {}).get("content") or ""
        else:
            if req.json_schema is not None:
                raise LlmassayError("openai: json_schema needs a chat request (messages), not a raw prompt")
            body["prompt"] = req.prompt
            data = self._post(f"{self.base_url}/completions", body)
            choice = _first_choice(data)
            text = choice.get("text") or ""
        usage = data.get("usage") or {}
        n_prompt, n_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        self.tokens_evaluated += n_prompt + n_out
        return Generation(
            text=text,
            n_prompt_tokens=n_prompt,
            n_tokens=n_out,
            finish_reason=choice.get("finish_reason") or "stop",
            latency_s=time.perf_counter() - start,
        )

    # -- loglikelihood ------------------------------------------------------------------
    def _echo(self, text: str) -> dict[str, Any]:
        body = {
            "model": self.model,
            "prompt": text,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }
        data = self._post(f"{self.base_url}/completions", body)
        logprobs = _first_choice(data).get("logprobs")
        if not logprobs or not logprobs.get("token_logprobs"):
            raise LlmassayError(
                f"openai: {self.base_url} does not return echoed prompt log-probabilities "
                "(completions with echo+logprobs); loglikelihood scoring is not possible on this server"
            )
        return logprobs

    def _ensure_alignment(self) -> None:
        with self._check_lock:
            if self._alignment is not None:
                return
            if not self.logprob_check:
                self._alignment = 0
                return
            self._alignment = self._measure_alignment()

    def _measure_alignment(self) -> int:
        gen = self._post(
            f"{self.base_url}/completions",
            {"model": self.model, "prompt": SELF_CHECK_PROMPT, "max_tokens": 4, "temperature": 0.0, "logprobs": 1},
        )
        choice = _first_choice(gen)
        expected = [float(x) for x in ((choice.get("logprobs") or {}).get("token_logprobs") or [])]
        text = choice.get("text") or ""
        if not expected or not text:
            raise LlmassayError(f"openai: {self.base_url} returns no log-probabilities for generated tokens")
        echoed = self._echo(SELF_CHECK_PROMPT + text)
        echo_values = [None if v is None else float(v) for v in echoed["token_logprobs"]]
        n_prompt = len(echo_values) - len(expected) - 1  # echo asked for one extra token
        for shift in (0, 1):
            start = n_prompt + shift
            window = echo_values[start : start + len(expected)]
            if len(window) == len(expected) and all(
                v is not None and abs(v - e) < SELF_CHECK_TOLERANCE for v, e in zip(window, expected)
            ):
                return shift
        raise LlmassayError(
            f"openai: {self.base_url} failed the log-probability self-check (echoed prompt log-probabilities "
            f"{echo_values[n_prompt:n_prompt + len(expected)]} != generated {expected}); refusing loglikelihood "
            "(pass logprob_check=false to override at your own risk)"
        )

    def _loglikelihood_one(self, req: LoglikelihoodRequest) -> LoglikelihoodResult:
        logprobs = self._echo(req.context + req.continuation)
        tokens: list[str] = logprobs.get("tokens") or []
        offsets: list[int] = logprobs.get("text_offset") or []
        values: list[float | None] = logprobs["token_logprobs"]
        tops: list[dict[str, float] | None] = logprobs.get("top_logprobs") or [None] * len(values)
        n_echo = len(values) - 1  # the last entry is the one generated token
        if len(tokens) < n_echo or len(offsets) < n_echo or len(tops) < n_echo:
            raise LlmassayError(f"openai: {self.base_url} returned logprobs of inconsistent lengths")
        boundary = len(req.context)
        first = next((i for i in range(n_echo) if offsets[i] + len(tokens[i]) > boundary), n_echo)
        if first >= n_echo:
            raise LlmassayError(f"openai: echoed tokens do not cover the continuation {req.continuation!r}")
        shift = self._alignment or 0
        picked: list[float] = []
        greedy = True
        for i in range(first, n_echo):
            value = values[i + shift] if i + shift < len(values) else None
            if value is None:
                raise LlmassayError(f"openai: {self.base_url} returned no log-probability for token {i}")
            picked.append(float(value))
            top = tops[i + shift] if i + shift < len(tops) else None
            if top:
                best = max(top.items(), key=lambda kv: kv[1])[0]
                greedy = greedy and best == tokens[i]
        self.tokens_evaluated += n_echo
        return LoglikelihoodResult(
            logprob=float(sum(picked)),
            is_greedy=greedy,
            n_tokens=len(picked),
            n_context_tokens=first,
            token_logprobs=tuple(picked),
        )


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmassayError("openai: response has no choices")
    return choices[0]


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        if message:
            return str(message).splitlines()[0][:200]
    except ValueError:
        pass
    return response.reason_phrase or "error"
