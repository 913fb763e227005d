"""A small OpenAI-compatible server on 127.0.0.1 that answers correctly or with scripted
faults. It simulates an external service's failures; it is never the model under test.

The toy "model": text splits into whitespace-led tokens; a token's log-probability is a
fixed function of its text, and the token itself is always the top-1 alternative.
Generation answers " 7" to everything except the backend's self-check prompt (" blue").
Echoed completions follow OpenAI's layout: every prompt token, the first with a null
log-probability, then the one generated token (" x") at text_offset len(prompt).

GET /v1/models lists one model (`model_id`, `created`: an int, or "now" for the time of
the request as llama.cpp and vLLM send); GET /props answers `{"model_path": props_path}`
(llama.cpp's server) or 404 when props_path is None. `greedy` and `completion` are the
"weights": the self-check prompt's and every other prompt's generated text.

The backend's identity requests (the GETs and the greedy self-check completion, asked
once per run for the cache key) go to `identity`, not `requests`, and are answered with
`identity_fault` when set, never with `faults`: fault scripts and request counts are
about the requests that do a run's work.

Faults are consumed one per request from `faults`; `fail_after = (n, fault)` answers the
first n requests normally and then always with `fault`. Fault names:
  "429" / "429:<retry-after>"   rate limited, without / with a Retry-After header
  "500" "502" "503" "400"        an HTTP error with an OpenAI-style error body
  "500-list"                     HTTP 500 whose JSON body is a list, not an object
  "drop"                         headers promise 1000 bytes, the connection dies after 13
  "stall"                        no answer for STALL_S seconds (past the client timeout)
  "malformed" "empty-choices"    a 200 whose body is broken JSON / has no choices
  "shifted"                      echoed log-probabilities moved one token to the left
  "bad-logprobs"                 token_logprobs two entries shorter than tokens
  "generated-only"               echo logprobs list only the generated token (llama.cpp's C++ server)
  "truncated-logprobs"           echo logprobs arrays agree in length but stop one prompt token short
  "nonnumeric-logprobs"          echo token_logprobs hold strings, not numbers
  "bad-usage"                    a correct answer whose usage counts are not numbers
  "text-not-string"              a completion whose text is a number
  "401"                          HTTP 401 (a bad API key): not retryable
  "401-echo-key"                 HTTP 401 whose message quotes the API key it was sent
  "502-html"                     HTTP 502 with an HTML body, as a proxy sends
  "close"                        the connection closes before any response
  "stall-body"                   headers arrive, the body stalls for STALL_S seconds
  "stream-error"                 a streamed answer sends its first piece, then an `{"error": …}` event
                                 (OpenAI's server_error shape, no code), then `[DONE]`
  "stream-error-400"             the same with an invalid_request_error, code 400 (not transient)

For load tests: every answered request takes `service_s` seconds before its first token and
`token_s` between tokens; `slots` (None: unlimited) requests are served at once, the rest
wait, as llama.cpp's server with one slot; `max_in_service` is the most it ever served at once
(the server's own count, unaffected by how slow the client is). `stream: true` answers as server-sent events
(chat: `delta.content`), then a usage event when `stream_options.include_usage` asks for
one, unless `streams` is False (a server that ignores `stream` and answers JSON).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llmassay.backends.openai_compat import SELF_CHECK_PROMPT

TOKEN = re.compile(r"\s*\S+|\s+")
STALL_S = 1.0
GENERATED = " x"  # the token an echo request (max_tokens=1) "generates"


def toy_logprob(token: str) -> float:
    return -round(0.1 + (sum(map(ord, token)) % 37) / 10, 4)


def toy_tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def toy_logprobs(text: str, start: int = 0, first_is_none: bool = False) -> dict[str, Any]:
    tokens, offsets, offset = [], [], start
    for token in toy_tokens(text):
        tokens.append(token)
        offsets.append(offset)
        offset += len(token)
    values: list[float | None] = [toy_logprob(t) for t in tokens]
    tops: list[dict[str, float] | None] = [{t: toy_logprob(t)} for t in tokens]
    if first_is_none and values:
        values[0], tops[0] = None, None
    return {"tokens": tokens, "text_offset": offsets, "token_logprobs": values, "top_logprobs": tops}


class FakeOpenAI:
    def __init__(self, port: int = 0) -> None:
        self.faults: deque[str] = deque()  # consumed one per request
        self.fail_after: tuple[int, str] | None = None  # (n ok requests, then this fault forever)
        self.requests: list[dict[str, Any]] = []
        self.chat_content = "blue"  # what every chat completion answers (a test may script JSON)
        self.response_formats = ("json_schema", "json_object")  # others are refused with HTTP 422
        self.greedy, self.completion = " blue", " 7"  # the "weights" (see the module docstring)
        self.model_id: str = "fake-model"
        self.created: int | str = 1700000000
        self.props_path: str | None = None
        self.identity: list[str] = []  # "GET /v1/models", … (see the module docstring)
        self.identity_fault: str | None = None  # the answer to every identity request, when set
        self.service_s, self.token_s = 0.0, 0.0  # known service time (load tests)
        self.slots: int | None = None  # requests served at once (None: unlimited)
        self.in_service = self.max_in_service = 0  # requests inside their service time, now / at most
        self.streams = True  # False: `stream: true` is ignored and answered with plain JSON
        self.refuses_stream_options = False  # True: a body with `stream_options` gets HTTP 422
        self._slot_gate: threading.Semaphore | None = None
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def seen(self, fault: str | None = None) -> int:
        """Requests received so far (with `fault`: those answered with that fault)."""
        with self.lock:
            return sum(1 for r in self.requests if fault is None or r["fault"] == fault)

    def _next_fault(self) -> str:
        # Called under self.lock, right before the request is recorded.
        if self.faults:
            return self.faults.popleft()
        if self.fail_after and len(self.requests) >= self.fail_after[0]:
            return self.fail_after[1]
        return "ok"

    def get(self, path: str) -> dict[str, Any] | None:
        """What a GET of `path` answers; None is a 404."""
        if path == "/v1/models":
            created = int(time.time()) if self.created == "now" else self.created
            return {"object": "list", "data": [{"id": self.model_id, "object": "model", "created": created,
                                                "owned_by": "fake"}]}
        if path == "/props" and self.props_path is not None:
            return {"model_path": self.props_path, "total_slots": 1}
        return None

    def answer(self, path: str, body: dict[str, Any], fault: str) -> dict[str, Any]:
        if path.endswith("/chat/completions"):
            return {
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.chat_content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 1},
            }
        prompt = str(body.get("prompt", ""))
        if body.get("echo"):
            text = prompt + GENERATED
            logprobs = toy_logprobs(prompt, first_is_none=True)
            generated = toy_logprobs(GENERATED, start=len(prompt))
            for key in logprobs:
                logprobs[key] += generated[key]
            if fault == "shifted":
                logprobs["token_logprobs"] = [None] + logprobs["token_logprobs"][2:] + [-0.5]
            elif fault == "bad-logprobs":
                logprobs["token_logprobs"] = logprobs["token_logprobs"][:-2]
            elif fault == "generated-only":
                logprobs = generated
            elif fault == "truncated-logprobs":
                logprobs = {k: v[:-2] for k, v in logprobs.items()}  # last prompt token and the generated one
            elif fault == "nonnumeric-logprobs":
                logprobs["token_logprobs"] = [None] + ["-0.5 nats"] * (len(logprobs["token_logprobs"]) - 1)
            n_out = 1
        else:
            text = self.greedy if "primary colours" in prompt else self.completion
            logprobs = toy_logprobs(text, start=len(prompt)) if body.get("logprobs") else None
            n_out = len(toy_tokens(text))
        usage: dict[str, Any] = {"prompt_tokens": len(toy_tokens(prompt)), "completion_tokens": n_out}
        if fault == "bad-usage":
            usage = {"prompt_tokens": "many", "completion_tokens": None}
        return {
            "choices": [{"index": 0, "text": 42 if fault == "text-not-string" else text, "logprobs": logprobs,
                         "finish_reason": "length"}],
            "usage": usage,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._respond({})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                self._respond(json.loads(self.rfile.read(length) or b"{}"))

            def _respond(self, body: dict[str, Any]) -> None:
                identity = self.command == "GET" or (
                    body.get("prompt") == SELF_CHECK_PROMPT and not body.get("echo"))
                with fake.lock:
                    if identity:
                        fault = fake.identity_fault or "ok"
                        fake.identity.append(f"{self.command} {self.path}")
                    else:
                        fault = fake._next_fault()
                        fake.requests.append(
                            {"path": self.path, "body": body, "auth": self.headers.get("Authorization"),
                             "fault": fault, "time": time.monotonic()}
                        )
                if fault.startswith("429"):
                    headers = {"Retry-After": fault.split(":", 1)[1]} if ":" in fault else {}
                    self._send(429, b'{"error": {"message": "rate limited"}}', headers)
                elif fault in ("500", "502", "503"):
                    self._send(int(fault), b'{"error": {"message": "server exploded"}}')
                elif fault == "500-list":
                    self._send(500, b'["not", "an", "object"]')
                elif fault == "400":
                    self._send(400, b'{"error": {"message": "bad request: unknown model"}}')
                elif fault == "401":
                    self._send(401, b'{"error": {"message": "invalid api key"}}')
                elif fault == "401-echo-key":  # as some APIs do: the refused key quoted back
                    auth = self.headers.get("Authorization") or ""
                    message = {"error": {"message": f"Incorrect API key provided: {auth.removeprefix('Bearer ')}"}}
                    self._send(401, json.dumps(message).encode())
                elif fault == "502-html":
                    payload = b"<html>\n<head><title>502 Bad Gateway</title></head>\n</html>\n"
                    self.send_response(502)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                elif fault == "close":
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif fault == "stall-body":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [')
                    self.wfile.flush()
                    time.sleep(STALL_S)
                    self.close_connection = True
                elif fault == "drop":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [')
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                elif fault == "stall":
                    time.sleep(STALL_S)
                    try:
                        self._send(200, b"{}")
                    except OSError:  # the client gave up long ago
                        pass
                elif fault == "malformed":
                    self._send(200, b'{"choices": [{"text": "unterminated')
                elif fault == "empty-choices":
                    self._send(200, b'{"choices": []}')
                elif fake.refuses_stream_options and "stream_options" in body:
                    self._send(422, b'{"detail": [{"msg": "Extra inputs are not permitted: stream_options"}]}')
                elif (body.get("response_format") or {}).get("type", "text") not in ("text", *fake.response_formats):
                    self._send(422, b'{"detail": [{"msg": "Input should be text or json_object"}]}')
                elif self.command == "GET":
                    answer = fake.get(self.path)
                    if answer is None:
                        self._send(404, b'{"error": {"message": "not found"}}')
                    else:
                        self._send(200, json.dumps(answer).encode())
                else:
                    fake._serve(self, body, fault)

        return Handler

    def _serve(self, handler: Any, body: dict[str, Any], fault: str) -> None:
        """A normal answer after the known service time, inside one of `slots`."""
        with self.lock:
            if self.slots is not None and self._slot_gate is None:
                self._slot_gate = threading.Semaphore(self.slots)
        gate = self._slot_gate if self.slots is not None else None
        if gate is not None:
            gate.acquire()
        with self.lock:
            self.in_service += 1
            self.max_in_service = max(self.max_in_service, self.in_service)
        try:
            time.sleep(self.service_s)
            answer = self.answer(handler.path, body, fault)
            if not body.get("stream") or not self.streams:
                handler._send(200, json.dumps(answer).encode())
                return
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            choice = answer["choices"][0]
            chat = "message" in choice
            tokens = toy_tokens(choice["message"]["content"] if chat else choice["text"])
            for i, token in enumerate(tokens):
                if i:
                    time.sleep(self.token_s)
                piece = {"delta": {"content": token}} if chat else {"text": token}
                event = {"choices": [{"index": 0, **piece, "finish_reason": None}]}
                handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                handler.wfile.flush()
                if fault.startswith("stream-error"):
                    error = ({"message": "The server had an error while processing your request.",
                              "type": "server_error", "param": None, "code": None} if fault == "stream-error" else
                             {"message": "maximum context length exceeded", "type": "invalid_request_error",
                              "code": 400})
                    handler.wfile.write(f"data: {json.dumps({'error': error})}\n\n".encode())
                    break
            if (body.get("stream_options") or {}).get("include_usage") and not fault.startswith("stream-error"):
                usage = {**answer["usage"], "completion_tokens": len(tokens)}
                handler.wfile.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.close_connection = True
        finally:
            with self.lock:
                self.in_service -= 1
            if gate is not None:
                gate.release()
