"""Any OpenAI-compatible server (vLLM, TGI, llama.cpp, ollama, hosted APIs) over httpx.

Two things matter more than features here:
- transient faults (429, 5xx, timeouts, dropped connections) are retried with capped
  exponential backoff and jitter, honouring Retry-After, each retry said on the
  `llmassay` logger, and end in a one-line error; a connection that cannot be made at all
  (refused, unknown host) is no transient fault and fails at once;
- loglikelihoods are only trusted after a self-check. Some servers score echoed prompt
  tokens wrongly, which silently corrupts every multiple-choice score. llama-cpp-python's
  server (0.3.x, abetlen/llama-cpp-python#1983) is one: for a model without a BOS token it
  reports, for prompt token t_j, log softmax(logits at position j)[t_j], i.e. the
  distribution one position too late (the one that predicts t_{j+1}) evaluated at t_j.
  That is not a shifted copy of the right number, log P(t_j | t_<j) is absent from the
  response altogether, so no realignment can recover it. Before scoring, the backend
  generates a few tokens greedily with their log-probabilities, echo-scores the same text
  and compares (`_measure_alignment`): equal numbers pass; anything else refuses
  loglikelihood with a one-line explanation.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import math
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from llmassay.hashing import stable_hash
from llmassay.types import (
    GenerateRequest,
    Generation,
    LlmassayError,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    RuntimeFailure,
)

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
SELF_CHECK_PROMPT = "The three primary colours are red, yellow and"
RETRY_AFTER_MAX_S = 300.0  # a server's Retry-After is honoured, up to this
SELF_CHECK_TOLERANCE = 0.05  # nats; servers compute the two passes in different batches
HOSTED_URL = "https://api.openai.com/v1"
CREATED_IS_NOW_S = 60.0  # a /v1/models `created` this recent is the answer's time, not the model's

log = logging.getLogger(__name__)

AnswerFn = Callable[[int, Any], None]  # (index in the batch, its answer), called as each arrives


class OpenAIBackend:
    """`openai/<model>`; model args: base_url (default OPENAI_BASE_URL, else the hosted API),
    api_key_env (default OPENAI_API_KEY, except for a base_url model arg), concurrency, timeout,
    max_retries, backoff_base, backoff_max, logprob_check (true|false), repeat_penalty
    (a llama.cpp-server extension; its default of 1.1 makes "greedy" differ from greedy)."""

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
        repeat_penalty: float | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise LlmassayError(f"openai: unknown model args: {', '.join(sorted(unknown))}")
        self.model = model
        self.name = f"openai/{model}"
        self.base_url, key, self._auth_hint = _endpoint(base_url, api_key_env)
        headers = {"Content-Type": "application/json"}
        self._secret: str | None = key  # kept only to redact it from server error messages
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.concurrency = max(1, int(concurrency))
        self.max_retries = int(max_retries)
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.logprob_check = bool(logprob_check)
        self.repeat_penalty = repeat_penalty
        self._client = httpx.Client(
            timeout=httpx.Timeout(float(timeout)),
            headers=headers,
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        self._verified = False  # the log-probability self-check ran and passed
        self._check_lock = threading.Lock()
        self._identity: dict[str, Any] | None = None  # what fingerprint() learnt from the server
        self._identity_lock = threading.Lock()
        self._greedy_answer: dict[str, Any] | None = None  # the self-check's greedy completion
        self._greedy_lock = threading.Lock()
        self._jitter = random.Random()
        self._sleep: Callable[[float], None] = time.sleep  # a test records the backoff schedule here
        self._count_lock = threading.Lock()
        self.retries = 0
        self.tokens_evaluated = 0

    # -- Protocol -----------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """Who answers, as far as the server can tell: the cache and resume keys' first half.

        The model name alone is not enough: llama.cpp-family servers ignore it, so a server
        restarted with other weights on the same port would be served from the cache. What
        the server says of itself (`/v1/models`, llama.cpp's `/props`) and a digest of the
        self-check's greedy completion tell such weights apart. The API key is deliberately
        absent: it must never reach a cache key or a file.
        """
        with self._identity_lock:
            if self._identity is None:
                self._identity = {
                    "server_model": self._listed_model(),
                    "model_path": self._props_model_path(),
                    "greedy_sha256": self._greedy_digest(),
                }
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.model,
            "repeat_penalty": self.repeat_penalty,
            **self._identity,
        }

    def tokenize(self, text: str) -> list[int]:
        root = self._root()
        for url, payload in (
            (f"{root}/extras/tokenize", {"input": text}),  # llama-cpp-python server
            (f"{root}/tokenize", {"model": self.model, "prompt": text}),  # vLLM
        ):
            try:
                data = self._post(url, payload, retry_status=False)
            except LlmassayError:
                continue
            tokens = data.get("tokens")
            if isinstance(tokens, list):
                return [int(t) for t in tokens]
        raise LlmassayError(f"openai: {self.base_url} offers no tokenize endpoint")

    def generate(
        self, reqs: Sequence[GenerateRequest], on_answer: AnswerFn | None = None
    ) -> list[Generation]:
        """`on_answer(i, answer)` hears each answer as it arrives (the engine caches it at
        once), so a request that fails later does not take its neighbours' answers with it."""
        if any(r.watermark is not None for r in reqs):  # a server's sampler cannot take our logits bias
            raise LlmassayError("openai: watermarked generation needs a local backend (llamacpp/ or hf/)")
        return self._map(self._generate_one, reqs, on_answer)

    def loglikelihood(
        self, reqs: Sequence[LoglikelihoodRequest], on_answer: AnswerFn | None = None
    ) -> list[LoglikelihoodResult]:
        self._ensure_verified()
        return self._map(self._loglikelihood_one, reqs, on_answer)

    # -- HTTP with retries --------------------------------------------------------------
    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any], on_answer: AnswerFn | None = None) -> list[Any]:
        def one(i: int) -> Any:
            answer = fn(items[i])
            if on_answer is not None:
                on_answer(i, answer)
            return answer

        if self.concurrency == 1 or len(items) <= 1:
            return [one(i) for i in range(len(items))]
        # Executor.map cancels the requests not yet started when one fails, so a dead
        # server ends a batch after at most `concurrency` requests' retries; the requests
        # already running finish (and report their answers) before the error propagates.
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, range(len(items))))

    def _count(self, retries: int = 0, tokens: int = 0) -> None:
        with self._count_lock:
            self.retries += retries
            self.tokens_evaluated += tokens

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        header = response.headers.get("Retry-After") if response is not None else None
        if header:
            seconds = _retry_after_seconds(header)
            if seconds is not None:
                return min(max(0.0, seconds), RETRY_AFTER_MAX_S)
        cap = min(self.backoff_max, self.backoff_base * 2**attempt)
        return cap / 2 + self._jitter.uniform(0, cap / 2)  # "equal jitter"

    def _pause_before_retry(self, attempt: int, cause: str, response: httpx.Response | None) -> None:
        """Count, say and wait out retry number `attempt + 1` (Retry-After or backoff)."""
        self._count(retries=1)
        delay = self._delay(attempt, response)
        log.warning("openai: retrying in %s s: %s, attempt %d/%d", f"{delay:.2g}" if delay < 10 else f"{delay:.0f}",
                    cause, attempt + 2, self.max_retries + 1)
        self._sleep(delay)

    def _post(self, url: str, payload: dict[str, Any], retry_status: bool = True) -> dict[str, Any]:
        return self._request("POST", url, payload, retry_status)[0]

    def _get(self, url: str) -> tuple[dict[str, Any], httpx.Response] | None:
        """A GET of an informational endpoint; None when the server refuses it with an HTTP
        error (not every server has /props or /v1/models), an error when it is unreachable.
        Transient statuses are retried: a fingerprint that lost a part to one 502 would make
        the whole run miss the cache."""
        try:
            return self._request("GET", url, None)
        except _StatusError:
            return None

    def _request(
        self, method: str, url: str, payload: dict[str, Any] | None, retry_status: bool = True
    ) -> tuple[dict[str, Any], httpx.Response]:
        """The JSON object a URL answers, and the response; transient faults are retried."""
        last_cause, last_status = "", None
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._client.request(method, url, json=payload)
            except httpx.TimeoutException:
                last_cause, last_status = "timed out", None
            except httpx.ConnectError as exc:
                # Refused or unknown host: no server listens there, and waiting will not start one.
                raise RuntimeFailure(f"openai: cannot connect to {url}: {_connect_reason(exc)}") from None
            except httpx.TransportError as exc:
                last_cause, last_status = f"connection failed ({type(exc).__name__})", None
            else:
                if response.status_code < 400:
                    return _json_object(response, url), response
                last_cause = f"HTTP {response.status_code}: {self._redact(_error_message(response))}"
                last_status = response.status_code
                if response.status_code not in RETRYABLE_STATUS or not retry_status:
                    raise _StatusError(f"openai: {url} answered {last_cause}{self._refusal_hint(last_status)}",
                                       last_status)
            if attempt < self.max_retries:
                self._pause_before_retry(attempt, last_cause.split(":")[0] if last_status else last_cause, response)
        message = f"openai: {url} failed after {self.max_retries + 1} attempts: {last_cause}"
        raise _StatusError(message, last_status) if last_status else RuntimeFailure(message)

    def _root(self) -> str:
        """The server root: llama.cpp-family extras (/props, /tokenize) live beside /v1."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def _refusal_hint(self, status: int) -> str:
        """For HTTP 401 (no key, or a refused one): which variable to set or check."""
        return f" ({self._auth_hint})" if status == 401 else ""

    def _redact(self, text: str) -> str:
        """A server may quote the key it refused ("invalid api key sk-..."): never pass it on."""
        return text.replace(self._secret, "[api key]") if self._secret else text

    # -- generation ---------------------------------------------------------------------
    def generate_stream(self, req: GenerateRequest) -> Any:
        """`req` streamed as server-sent events, for timing (TTFT, inter-token latency)."""
        from llmassay.backends._streaming import openai_stream

        return openai_stream(self, req)

    def _body(self, req: GenerateRequest) -> dict[str, Any]:
        """The request's decoding settings, without its prompt or messages."""
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
        if self.repeat_penalty is not None:
            body["repeat_penalty"] = self.repeat_penalty
        return body

    def _generate_one(self, req: GenerateRequest) -> Generation:
        body = self._body(req)
        start = time.perf_counter()
        if req.messages is not None:
            body["messages"] = [{"role": r, "content": c} for r, c in req.messages]
            if req.json_schema is not None:
                data = self._post_with_schema(body, json.loads(req.json_schema))
            else:
                data = self._post(f"{self.base_url}/chat/completions", body)
            choice = _first_choice(data)
            message = choice.get("message") or {}
            text = message.get("content") if isinstance(message, dict) else message
        else:
            if req.json_schema is not None:
                raise LlmassayError("openai: json_schema needs a chat request (messages), not a raw prompt")
            body["prompt"] = req.prompt
            data = self._post(f"{self.base_url}/completions", body)
            choice = _first_choice(data)
            text = choice.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            kind = type(text).__name__
            raise LlmassayError(f"openai: {self.base_url} returned generated text of type {kind}, not a string")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        n_prompt, n_out = _count_field(usage, "prompt_tokens"), _count_field(usage, "completion_tokens")
        self._count(tokens=n_prompt + n_out)
        return Generation(
            text=text,
            n_prompt_tokens=n_prompt,
            n_tokens=n_out,
            finish_reason=str(choice.get("finish_reason") or "stop"),
            latency_s=time.perf_counter() - start,
        )

    def _post_with_schema(self, body: dict[str, Any], schema: Any) -> dict[str, Any]:
        """OpenAI's `response_format` json_schema; a server that refuses it with a 4xx is asked
        once with the older `{"type": "json_object", "schema": …}` (llama-cpp-python's server),
        and that form is then kept. A server that takes neither ends in one clear line."""
        url = f"{self.base_url}/chat/completions"
        forms = {
            "json_schema": {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}},
            "json_object": {"type": "json_object", "schema": schema},
        }
        order = ["json_object"] if getattr(self, "_schema_form", None) == "json_object" else list(forms)
        refusals = []
        for form in order:
            try:
                data = self._post(url, {**body, "response_format": forms[form]})
            except LlmassayError as exc:
                if not re.search(r" answered HTTP 4(?!01|03)\d\d", str(exc)):  # a bad key or a dead server
                    raise
                refusals.append(f"{form}: {str(exc).split(' answered ', 1)[-1]}")
                continue
            self._schema_form = form
            return data
        raise LlmassayError(
            f"openai: {self.base_url} does not support schema-constrained output (response_format {'; '.join(refusals)})"
        )

    # -- identity -----------------------------------------------------------------------
    def _listed_model(self) -> dict[str, Any] | None:
        """This model's `/v1/models` entry (id, created, llama.cpp's meta); a list of many
        models that does not name ours says nothing about which one answers."""
        asked_at = time.time()
        got = self._get(f"{self.base_url}/models")
        entries = got[0].get("data") if got else None
        entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
        match = [e for e in entries if e.get("id") == self.model] or (entries if len(entries) == 1 else [])
        if not match:
            return None
        entry = match[0]
        meta = entry.get("meta")
        return {
            "id": str(entry.get("id")),
            "created": _model_created(entry.get("created"), _server_time(got[1]) or asked_at),
            "meta": meta if isinstance(meta, dict) else None,
        }

    def _props_model_path(self) -> str | None:
        """The weights file a llama.cpp server loaded (its `/props`); None elsewhere."""
        got = self._get(f"{self._root()}/props")
        path = got[0].get("model_path") if got else None
        return path if isinstance(path, str) else None

    def _greedy(self) -> dict[str, Any]:
        """The self-check's greedy completion, asked once: the fingerprint digests it and
        the self-check compares the echo against it."""
        with self._greedy_lock:
            if self._greedy_answer is None:
                body = {"model": self.model, "prompt": SELF_CHECK_PROMPT, "max_tokens": 4, "temperature": 0.0,
                        "logprobs": 1}
                self._greedy_answer = self._post(f"{self.base_url}/completions", body)
            return self._greedy_answer

    def _greedy_text(self) -> tuple[str, _Echo | None]:
        """The greedy continuation of the self-check prompt and its parsed log-probabilities."""
        choice = _first_choice(self._greedy())
        text = choice.get("text") or ""
        if not isinstance(text, str):
            raise LlmassayError(f"openai: {self.base_url} returned generated text of type {type(text).__name__}")
        if text.startswith(SELF_CHECK_PROMPT):  # a server that echoes although not asked to
            text = text[len(SELF_CHECK_PROMPT) :]
        return text, _Echo.parse(choice.get("logprobs") or {}, len(SELF_CHECK_PROMPT) + len(text))

    def _greedy_digest(self) -> str | None:
        """sha256 of the greedy continuation's tokens and log-probabilities (to 0.1 nats:
        other weights move them by more, while batch-to-batch float noise on one server
        almost never crosses a rounding boundary). None for a server that refuses raw
        completions (a chat-only API), where the model name is all there is."""
        try:
            text, generated = self._greedy_text()
        except _StatusError as exc:
            if exc.status in RETRYABLE_STATUS or exc.status in (401, 403) or exc.status >= 500:
                raise  # a dead server or a refused key: the run cannot go on either way
            return None
        tokens = []
        if generated is not None:
            tokens = [
                (t, None if v is None else round(v, 1) + 0.0)  # + 0.0: -0.0 and 0.0 hash alike
                for o, t, v in zip(generated.offsets, generated.tokens, generated.values)
                if o >= len(SELF_CHECK_PROMPT)
            ]
        return stable_hash({"text": text, "tokens": tokens})

    # -- loglikelihood ------------------------------------------------------------------
    def _echo(self, text: str) -> _Echo:
        """Prompt log-probabilities of `text`, from completions with echo + logprobs.

        Servers differ in whether the one generated token (max_tokens=1) is listed: OpenAI
        appends it at text_offset len(text); llama-cpp-python leaves it out. `_Echo.parse`
        keeps only entries that start inside `text`, which is right for both layouts.
        """
        body = {"model": self.model, "prompt": text, "max_tokens": 1, "temperature": 0.0, "echo": True, "logprobs": 1}
        data = self._post(f"{self.base_url}/completions", body)
        logprobs = _first_choice(data).get("logprobs")
        if not isinstance(logprobs, dict) or not logprobs.get("token_logprobs"):
            raise LlmassayError(
                f"openai: {self.base_url} does not return echoed prompt log-probabilities "
                "(completions with echo+logprobs); loglikelihood scoring is not possible on this server"
            )
        echo = _Echo.parse(logprobs, len(text))
        if echo is None:
            raise LlmassayError(
                f"openai: {self.base_url} returned logprobs arrays of inconsistent lengths or with non-numeric values"
            )
        if not echo.values:
            raise LlmassayError(
                f"openai: {self.base_url} returns log-probabilities for generated tokens only, not for the echoed "
                "prompt; loglikelihood scoring is not possible on this server"
            )
        if echo.offsets[-1] + len(echo.tokens[-1]) < len(text):
            # Consistent arrays that stop early would silently drop the continuation's last tokens.
            raise LlmassayError(
                f"openai: {self.base_url} returned echoed log-probabilities that stop at character "
                f"{echo.offsets[-1] + len(echo.tokens[-1])} of a {len(text)}-character prompt"
            )
        return echo

    def _ensure_verified(self) -> None:
        with self._check_lock:
            if self._verified or not self.logprob_check:
                self._verified = True
                return
            worst = self._measure_alignment()
            if worst > SELF_CHECK_TOLERANCE:
                raise LlmassayError(
                    f"openai: {self.base_url} failed the log-probability self-check: echoed prompt log-probabilities "
                    f"differ from the same tokens' generation log-probabilities by up to {worst:.2f} nats, so prompt "
                    "tokens are scored with the wrong distribution (a known server bug, e.g. abetlen/llama-cpp-python"
                    "#1983); refusing loglikelihood (logprob_check=false overrides at your own risk)"
                )
            self._verified = True

    def _measure_alignment(self) -> float:
        """The largest gap, in nats, between a generated token's log-probability and the
        echoed log-probability of the same token at the same text offset.

        The generated tokens' log-probabilities come from the distributions that produced
        them, so they are right on any sane server; echoed prompt log-probabilities are
        where servers go wrong. Realignment is not attempted: the server known to fail
        this (llama-cpp-python) scores prompt token t_j with the distribution that
        predicts t_{j+1}, so the right numbers are not in its response at any position.
        """
        text, generated = self._greedy_text()
        if not text or generated is None or not any(v is not None for v in generated.values):
            raise LlmassayError(f"openai: {self.base_url} returns no log-probabilities for generated tokens")
        echo = self._echo(SELF_CHECK_PROMPT + text)
        by_position = {(o, t): v for o, t, v in zip(echo.offsets, echo.tokens, echo.values)}
        pairs = [
            (by_position.get((o, t)), v)
            for o, t, v in zip(generated.offsets, generated.tokens, generated.values)
            if o >= len(SELF_CHECK_PROMPT) and v is not None
        ]
        pairs = [(e, g) for e, g in pairs if e is not None]
        if not pairs:
            raise LlmassayError(
                f"openai: {self.base_url} echo tokens do not line up with generated tokens; cannot verify log-probabilities"
            )
        return max(abs(e - g) for e, g in pairs)

    def _loglikelihood_one(self, req: LoglikelihoodRequest) -> LoglikelihoodResult:
        echo = self._echo(req.context + req.continuation)
        boundary = len(req.context)
        span = [i for i in range(len(echo.values)) if echo.offsets[i] + len(echo.tokens[i]) > boundary]
        if not span:
            raise LlmassayError(f"openai: echoed tokens do not cover the continuation {req.continuation!r}")
        picked: list[float] = []
        greedy = True
        for i in span:
            value = echo.values[i]
            if value is None:
                raise LlmassayError(f"openai: {self.base_url} returned no log-probability for prompt token {i}")
            picked.append(value)
            top = echo.tops[i]
            if top:
                greedy = greedy and max(top.items(), key=lambda kv: kv[1])[0] == echo.tokens[i]
        self._count(tokens=len(echo.values))
        return LoglikelihoodResult(
            logprob=float(sum(picked)),
            is_greedy=greedy,
            n_tokens=len(picked),
            n_context_tokens=span[0],
            token_logprobs=tuple(picked),
        )


@dataclass(frozen=True)
class _Echo:
    """The prompt part of an OpenAI `logprobs` object (entries past the prompt dropped)."""

    tokens: list[str]
    offsets: list[int]
    values: list[float | None]
    tops: list[dict[str, float] | None]

    @staticmethod
    def parse(logprobs: Any, text_length: int) -> _Echo | None:
        """None when the arrays are missing, of different lengths, or not numbers."""
        if not isinstance(logprobs, dict):
            return None
        tokens = logprobs.get("tokens")
        offsets = logprobs.get("text_offset")
        values = logprobs.get("token_logprobs")
        tops = logprobs.get("top_logprobs") or [None] * len(values if isinstance(values, list) else [])
        arrays = (tokens, offsets, values, tops)
        if not all(isinstance(a, list) for a in arrays) or len({len(a) for a in arrays}) != 1:
            return None
        keep = [i for i, o in enumerate(offsets) if isinstance(o, int) and o < text_length]
        if not all(values[i] is None or _is_logprob(values[i]) for i in keep):
            return None
        return _Echo(
            tokens=[str(tokens[i]) for i in keep],
            offsets=[offsets[i] for i in keep],
            values=[None if values[i] is None else float(values[i]) for i in keep],
            tops=[
                tops[i] if isinstance(tops[i], dict) and all(_is_logprob(v) for v in tops[i].values()) else None
                for i in keep
            ],
        )


def _endpoint(base_url: str | None, api_key_env: str | None) -> tuple[str, str | None, str]:
    """The endpoint, its API key (None: no Authorization header) and what to say on a 401.

    As the openai SDK does: without a `base_url` model arg the endpoint is `OPENAI_BASE_URL`,
    else the hosted API, and the key is `OPENAI_API_KEY`. A `base_url` model arg names another
    server (a local vLLM, a third party), where the hosted key is not sent unless
    `api_key_env` names it; `api_key_env=NAME` always wins. The key goes only into the header.
    """
    url = (base_url or os.environ.get("OPENAI_BASE_URL") or HOSTED_URL).rstrip("/")
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise LlmassayError(f"openai: environment variable {api_key_env} (api_key_env) is not set")
        return url, key, f"the key in {api_key_env} (api_key_env) was refused: check it"
    if base_url:
        return url, None, "no API key was sent: give api_key_env=NAME, the environment variable holding the key"
    key = os.environ.get("OPENAI_API_KEY") or None
    if key:
        return url, key, "the key in OPENAI_API_KEY was refused: check it"
    if url == HOSTED_URL:
        raise LlmassayError(f"openai: {HOSTED_URL} needs an API key: set OPENAI_API_KEY "
                            "(or api_key_env=NAME; base_url=URL for another server)")
    return url, None, "no API key was sent: set OPENAI_API_KEY"


class _StatusError(LlmassayError):
    """A request the server ended with an HTTP error status (not an unreachable server)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        # the server failing (5xx, rate limits, timeouts) exits 1; a request it refuses (a bad key, model) 2
        self.exit_code = 1 if status >= 500 or status in RETRYABLE_STATUS else 2


def _json_object(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise RuntimeFailure(f"openai: {url} returned malformed JSON") from None
    if not isinstance(data, dict):
        raise RuntimeFailure(f"openai: {url} returned JSON that is not an object")
    return data


def _server_time(response: httpx.Response) -> float | None:
    """The server's clock (its Date header), so a remote clock's skew is not mistaken."""
    header = response.headers.get("Date")
    try:
        return email.utils.parsedate_to_datetime(header).timestamp() if header else None
    except (TypeError, ValueError, IndexError):
        return None


def _model_created(created: Any, now: float) -> int | None:
    """A model's `created` stamp when it identifies the model. llama.cpp and vLLM stamp
    their /v1/models answer with the time of the request; such a stamp would make every
    run's cache key new, so one from the last minute counts as no stamp."""
    if not isinstance(created, int) or isinstance(created, bool):
        return None
    return created if created < now - CREATED_IS_NOW_S else None


def _is_logprob(value: Any) -> bool:
    """A number that can be a log-probability: -inf (probability 0) yes, NaN and +inf no."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return not math.isnan(value) and value < math.inf


def _count_field(usage: dict[str, Any], key: str) -> int:
    """A usage count; servers that send none or garbage count as 0 (it is informational)."""
    value = usage.get(key, 0)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else 0


def _connect_reason(exc: httpx.ConnectError) -> str:
    """"connection refused" / "unknown host" rather than errno text (or the async client's
    "All connection attempts failed", whose cause says which); anything else as is."""
    refused, unknown = "connection refused (is the server running, on this port?)", "unknown host (check base_url)"
    cause: BaseException | None = exc
    for _ in range(8):  # httpx → httpcore → OSError → the socket's own error
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return refused
        if isinstance(cause, socket.gaierror):
            return unknown
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return refused
    if any(s in lowered for s in ("name or service not known", "nodename nor servname", "getaddrinfo", "name resolution")):
        return unknown
    return text or type(exc).__name__


def _retry_after_seconds(header: str) -> float | None:
    """Retry-After as delay-seconds or an HTTP date; None when it is neither."""
    try:
        return float(header)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates come back naive; HTTP dates are always UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() - time.time()


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LlmassayError("openai: response has no choices")
    return choices[0]


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    message = data.get("error") if isinstance(data, dict) else None
    if isinstance(message, dict):
        message = message.get("message")
    text = str(message).strip() if message else ""
    return text.splitlines()[0][:200] if text else (response.reason_phrase or "error")
