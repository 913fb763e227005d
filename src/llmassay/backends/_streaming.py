"""Token streams for timing (`generate_stream`): an OpenAI-compatible server's server-sent
events, and a transformers model through a streamer.

A stream yields text pieces as the model produces them (the caller stamps each one's
arrival: TTFT, inter-token latency) and, last, one `Generation` with the token counts the
backend knows (the server's `usage`, transformers' own tokens), so TPOT divides by tokens,
not by pieces: a server may send several tokens in one event.

A transient fault (a retryable HTTP status, an `{"error": …}` event mid-stream, a dropped
or stalled connection, a stream that ends before `[DONE]`) starts the request again after
the backend's back-off, as its other requests are retried; the stream first says `Restart`,
so the consumer drops what it had and restarts its clock: a timing is of the attempt that
completed, never of a back-off. An error is never passed on as a (short or empty) answer.
Every failure that ends the stream is one line naming the URL.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from llmassay.types import GenerateRequest, Generation, LlmassayError, RuntimeFailure


@dataclasses.dataclass(frozen=True)
class Restart:
    """The stream starts its request again (after a transient fault and the back-off): what
    was yielded so far is void, and the new attempt starts at the next `next()`."""

    cause: str


StreamItem = str | Generation | Restart

# Error kinds that asking again will not change (OpenAI's `type`/`code` strings).
FINAL_ERROR_KINDS = ("invalid_request", "invalid_api_key", "authentication", "permission", "not_found",
                     "context_length")


class _Transient(LlmassayError):
    """A fault that a new attempt may not meet; `response` carries any Retry-After."""

    def __init__(self, cause: str, response: httpx.Response | None = None) -> None:
        super().__init__(cause)
        self.cause, self.response = cause, response


def openai_stream(backend: Any, req: GenerateRequest) -> Iterator[StreamItem]:
    """`req` as server-sent events (`stream: true`, usage asked with `stream_options`),
    attempted up to `max_retries + 1` times."""
    if req.json_schema is not None:
        raise LlmassayError("openai: a json_schema request is not streamed; time it end-to-end (no TTFT)")
    chat = req.messages is not None
    body = {**backend._body(req), "stream": True}
    if chat:
        body["messages"] = [{"role": r, "content": c} for r, c in req.messages or ()]
    else:
        body["prompt"] = req.prompt
    url = f"{backend.base_url}/{'chat/completions' if chat else 'completions'}"
    for attempt in range(backend.max_retries + 1):
        try:
            yield from _attempt(backend, url, body, chat)
            return
        except _Transient as exc:
            if attempt == backend.max_retries:
                raise RuntimeFailure(f"openai: {url} failed after {attempt + 1} attempts: {exc.cause}") from None
            backend._pause_before_retry(attempt, exc.cause, exc.response)
            yield Restart(exc.cause)


def _attempt(backend: Any, url: str, body: dict[str, Any], chat: bool) -> Iterator[StreamItem]:
    """One streamed request: its pieces, then its `Generation`; `_Transient` for a fault
    worth another attempt, `LlmassayError` for one that is not."""
    from llmassay.backends.openai_compat import RETRYABLE_STATUS, _connect_reason, _count_field, _error_message

    pieces: list[str] = []
    usage: dict[str, Any] = {}
    finish = "stop"
    start = time.perf_counter()
    try:
        resp = _open(backend, url, body)
        try:
            if resp.status_code >= 400:
                resp.read()
                cause = f"HTTP {resp.status_code}: {backend._redact(_error_message(resp))}"
                if resp.status_code in RETRYABLE_STATUS:
                    raise _Transient(cause, resp)
                failed = RuntimeFailure if resp.status_code >= 500 else LlmassayError
                raise failed(f"openai: {url} answered {cause}{backend._refusal_hint(resp.status_code)}")
            kind = resp.headers.get("content-type", "")
            if "text/event-stream" not in kind:
                raise LlmassayError(f"openai: {url} does not stream (Content-Type {kind or 'missing'}, not "
                                    "text/event-stream): TTFT needs a server that streams server-sent events "
                                    "(-P efficiency.stream=false times end-to-end only)")
            done = False
            for event in _events(resp.iter_lines(), url):
                if event is None:
                    done = True
                    break
                if event.get("error") is not None:
                    message, transient = _event_error(event["error"])
                    cause = f"error event mid-stream: {backend._redact(message)}"
                    if transient:
                        raise _Transient(cause)
                    raise LlmassayError(f"openai: {url} sent an {cause}")
                if isinstance(event.get("usage"), dict):
                    usage = event["usage"]
                choice = (event.get("choices") or [None])[0]
                if not isinstance(choice, dict):
                    continue
                text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
                finish = str(choice.get("finish_reason") or finish)
                if isinstance(text, str) and text:
                    pieces.append(text)
                    yield text
            if not done:
                raise _Transient("event stream closed before 'data: [DONE]'")
        finally:
            resp.close()
    except httpx.TimeoutException:
        raise _Transient("timed out while streaming") from None
    except httpx.ConnectError as exc:
        # Refused or unknown host: no server listens there, and waiting will not start one.
        raise RuntimeFailure(f"openai: cannot connect to {url}: {_connect_reason(exc)}") from None
    except httpx.TransportError as exc:
        raise _Transient(f"stream failed ({type(exc).__name__})") from None
    n_prompt, n_out = _count_field(usage, "prompt_tokens"), _count_field(usage, "completion_tokens")
    backend._count(tokens=n_prompt + n_out)
    yield Generation("".join(pieces), n_prompt, n_out or len(pieces), finish, time.perf_counter() - start)


def _event_error(error: Any) -> tuple[str, bool]:
    """An error event's message (first line) and whether another attempt may succeed: yes
    unless its code is a non-retryable HTTP status or its kind says the request is at fault."""
    from llmassay.backends.openai_compat import RETRYABLE_STATUS

    fields = error if isinstance(error, dict) else {"message": error}
    message = str(fields.get("message") or fields.get("type") or "no message").strip()
    message = (message.splitlines() or ["no message"])[0][:200]
    code = fields.get("code")
    status = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else None
    if status is not None:
        return message, status in RETRYABLE_STATUS or status >= 500
    kinds = f"{fields.get('type') or ''} {code or ''}".lower()
    return message, not any(k in kinds for k in FINAL_ERROR_KINDS)


def _open(backend: Any, url: str, body: dict[str, Any]) -> httpx.Response:
    """The streaming response, token counts asked with `stream_options.include_usage`; a
    server that refuses the field (HTTP 400/422) is asked again without it, and from then on
    never with it (that first request's time includes the refusal: the probe's warm-up
    request is where it normally falls). Without usage, output tokens are counted as events."""
    client = backend._client
    if getattr(backend, "_stream_usage", True):
        resp = client.send(client.build_request("POST", url, json={**body, "stream_options": {"include_usage": True}}),
                           stream=True)
        if resp.status_code not in (400, 422):
            return resp
        resp.close()
        backend._stream_usage = False
    return client.send(client.build_request("POST", url, json=body), stream=True)


def _events(lines: Iterator[str], url: str) -> Iterator[dict[str, Any] | None]:
    """The JSON objects of `data:` lines; None for `data: [DONE]`."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments, event names, keep-alives
        data = line[5:].strip()
        if data == "[DONE]":
            yield None
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise LlmassayError(f"openai: {url} sent a malformed event: {data[:80]!r}") from None
        if not isinstance(event, dict):
            raise LlmassayError(f"openai: {url} sent an event that is not a JSON object: {data[:80]!r}")
        yield event


def hf_stream(backend: Any, req: GenerateRequest) -> Iterator[StreamItem]:
    """`req` through `model.generate` with a streamer: generation runs in a thread and each
    new token's text is yielded as transformers hands it over (the prompt is skipped).
    The import and the prompt's tokens are ready before the caller starts its clock; the
    generation starts with the first `next()`."""
    from transformers.generation.streamers import BaseStreamer

    ids, cut = backend._prompt_ids(req)
    return _hf_tokens(backend, req, ids, cut, BaseStreamer)


def _hf_tokens(backend: Any, req: GenerateRequest, ids: list[int], cut: int, BaseStreamer: type) -> Iterator[StreamItem]:
    tokens: queue.Queue[list[int] | None] = queue.Queue()

    class Streamer(BaseStreamer):
        prompt_seen = False

        def put(self, value: Any) -> None:
            if not self.prompt_seen:  # transformers first puts the prompt's ids
                self.prompt_seen = True
                return
            tokens.put([int(t) for t in value.reshape(-1).tolist()])

        def end(self) -> None:
            tokens.put(None)

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["generation"] = backend._generate_batch([req], [ids], streamer=Streamer())[0]
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            tokens.put(None)

    worker = threading.Thread(target=run, name="llmassay-hf-stream", daemon=True)
    worker.start()
    while (new := tokens.get()) is not None:
        yield backend.tokenizer.decode(new)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    yield dataclasses.replace(outcome["generation"], n_truncated_tokens=cut)
