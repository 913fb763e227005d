"""Token streams for timing (`generate_stream`): an OpenAI-compatible server's server-sent
events, and a transformers model through a streamer.

A stream yields text pieces as the model produces them (the caller stamps each one's
arrival: TTFT, inter-token latency) and, last, one `Generation` with the token counts the
backend knows (the server's `usage`, transformers' own tokens), so TPOT divides by tokens,
not by pieces: a server may send several tokens in one event.

A streamed request is never retried: the time of a retry is the back-off's, not the
model's. Every failure is one line naming the URL.
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

StreamItem = str | Generation


def openai_stream(backend: Any, req: GenerateRequest) -> Iterator[StreamItem]:
    """`req` as server-sent events (`stream: true`, usage asked with `stream_options`)."""
    from llmassay.backends.openai_compat import _count_field, _error_message

    if req.json_schema is not None:
        raise LlmassayError("openai: a json_schema request is not streamed; time it end-to-end (no TTFT)")
    chat = req.messages is not None
    body = {**backend._body(req), "stream": True}
    if chat:
        body["messages"] = [{"role": r, "content": c} for r, c in req.messages or ()]
    else:
        body["prompt"] = req.prompt
    url = f"{backend.base_url}/{'chat/completions' if chat else 'completions'}"
    pieces: list[str] = []
    usage: dict[str, Any] = {}
    finish = "stop"
    start = time.perf_counter()
    try:
        resp = _open(backend, url, body)
        try:
            if resp.status_code >= 400:
                resp.read()
                reason = backend._redact(_error_message(resp))
                failed = RuntimeFailure if resp.status_code >= 500 or resp.status_code in (408, 429) else LlmassayError
                raise failed(f"openai: {url} answered HTTP {resp.status_code}: {reason} (streamed requests are "
                                    "not retried)")
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
                raise RuntimeFailure(f"openai: {url} closed its event stream before 'data: [DONE]'")
        finally:
            resp.close()
    except httpx.TimeoutException:
        raise RuntimeFailure(f"openai: {url} timed out while streaming") from None
    except httpx.ConnectError as exc:
        raise RuntimeFailure(f"openai: cannot connect to {url}: {exc}") from None
    except httpx.TransportError as exc:
        raise RuntimeFailure(f"openai: {url} stream failed ({type(exc).__name__})") from None
    n_prompt, n_out = _count_field(usage, "prompt_tokens"), _count_field(usage, "completion_tokens")
    backend._count(tokens=n_prompt + n_out)
    yield Generation("".join(pieces), n_prompt, n_out or len(pieces), finish, time.perf_counter() - start)


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
