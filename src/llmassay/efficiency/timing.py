"""One generation request, timed: TTFT, prefill and decode rates, end-to-end latency.

A latency needs the model to run, so these timers call the backend itself, never the
engine's cache (a cached answer has no latency). Three methods, each named in the result:

- `stream`: the backend yields its output piece by piece (`generate_stream(req)`: the
  openai backend's server-sent events, the hf backend's streamer, see
  `backends/_streaming.py`): TTFT is the wall time to the first piece, decode time the
  rest (TPOT = (E2EL − TTFT)/(n_out − 1), as `vllm bench serve` defines it, with n_out the
  backend's token count when the stream ends with one), and the inter-token latencies
  (ITL) are the gaps between pieces — per piece, not per token, so ITL and TPOT differ
  when a server sends several tokens at once (vllm #6531); a stream that starts again after
  a transient fault (`Restart`) is timed from its new start, and `retries` says so;
- `llama.cpp perf counters`: llama.cpp's own prompt-eval and eval times for the request
  (`llama_perf_context`, what llama-bench reports), read after the KV cache was emptied so
  the whole prompt is prefilled; TTFT = E2EL − eval time of the tokens after the first;
- `end-to-end only`: any other backend; TTFT and the rates are unknown (None), never guessed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from llmassay.backends._streaming import Restart
from llmassay.types import GenerateRequest, Generation

STREAM, PERF_COUNTERS, E2E_ONLY = "stream", "llama.cpp perf counters", "end-to-end only"


@dataclass(frozen=True)
class RequestTiming:
    """Wall-clock facts of one request; rates are tokens per second (None: not measured)."""

    e2e_s: float
    n_prompt: int
    n_out: int
    ttft_s: float | None
    prefill_s: float | None
    decode_s: float | None  # time of the tokens after the first
    n_decode: int  # tokens decoded in decode_s
    cpu_s: float
    method: str
    itl_s: tuple[float, ...] = ()  # gaps between streamed pieces (stream method only)
    retries: int = 0  # attempts the stream dropped after a transient fault (the timing is of the last)

    @property
    def prefill_tps(self) -> float | None:
        return self.n_prompt / self.prefill_s if self.prefill_s and self.n_prompt else None

    @property
    def decode_tps(self) -> float | None:
        return self.n_decode / self.decode_s if self.decode_s and self.n_decode else None

    @property
    def tpot_s(self) -> float | None:
        return self.decode_s / self.n_decode if self.decode_s is not None and self.n_decode else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "itl_s": list(self.itl_s), "prefill_tps": self.prefill_tps, "decode_tps": self.decode_tps,
                "tpot_s": self.tpot_s}


def timing_method(backend: Any, stream: bool = True) -> str:
    if stream and hasattr(backend, "generate_stream"):
        return STREAM
    if _llama_context(backend) is not None:
        return PERF_COUNTERS
    return E2E_ONLY


def timed_generate(backend: Any, req: GenerateRequest, stream: bool = True) -> tuple[Generation, RequestTiming]:
    """Run `req` once on `backend` (uncached) and time it by the best method it allows
    (`stream=False`: never by streaming, for a server that cannot stream)."""
    method = timing_method(backend, stream)
    if method == STREAM:
        return _streamed(backend, req)
    if method == PERF_COUNTERS:
        return _perf_counted(backend, req)
    cpu0, t0 = time.process_time(), time.perf_counter()
    gen = backend.generate([req])[0]
    e2e, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return gen, RequestTiming(e2e, gen.n_prompt_tokens, gen.n_tokens, gen.ttft_s, None, None, 0, cpu, E2E_ONLY)


def _streamed(backend: Any, req: GenerateRequest) -> tuple[Generation, RequestTiming]:
    pieces: list[str] = []
    stamps: list[float] = []  # arrival of each piece, seconds after the request
    final: Generation | None = None  # the stream's own summary (token counts), when it sends one
    retries = 0
    stream = backend.generate_stream(req)  # set-up (imports, tokens) before the clock; the request starts at next()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for item in stream:
        now = time.perf_counter() - t0
        if isinstance(item, Restart):  # a transient fault: the next attempt is timed afresh, its back-off not
            pieces.clear()
            stamps.clear()
            retries += 1
            cpu0, t0 = time.process_time(), time.perf_counter()
            continue
        if isinstance(item, Generation):
            final = item
            continue
        stamps.append(now)
        pieces.append(item)
    e2e, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if final is not None:
        n_prompt, n_out = final.n_prompt_tokens, final.n_tokens or len(pieces)
    else:
        prompt = req.prompt if req.prompt is not None else "\n".join(c for _, c in req.messages or ())
        n_prompt, n_out = len(backend.tokenize(prompt)), len(pieces)
    first = stamps[0] if stamps else None
    text = final.text if final is not None else "".join(pieces)  # the backend's text: stop strings cut, specials dropped
    gen = Generation(text, n_prompt, n_out, final.finish_reason if final else "stop", e2e, first,
                     final.n_truncated_tokens if final else 0)
    decode = e2e - first if first is not None else None
    itl = tuple(b - a for a, b in zip(stamps, stamps[1:]))
    return gen, RequestTiming(e2e, n_prompt, n_out, first, first, decode, max(0, n_out - 1), cpu, STREAM, itl,
                              retries)


def _llama_context(backend: Any) -> Any:
    from llmassay.backends import llama_internals

    llm = getattr(backend, "llm", None)
    ctx = llama_internals.perf_context(llm) if llm is not None else None
    return ctx if ctx is not None and hasattr(backend, "reset") else None


def _perf_counted(backend: Any, req: GenerateRequest) -> tuple[Generation, RequestTiming]:
    from llmassay.backends import llama_internals

    ctx = _llama_context(backend)
    backend.reset()  # the whole prompt is prefilled, as for a first request
    llama_internals.perf_reset(ctx)
    cpu0, t0 = time.process_time(), time.perf_counter()
    gen = backend.generate([req])[0]
    e2e, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    perf = llama_internals.perf_read(ctx)
    prefill = perf.t_p_eval_ms / 1000 if perf.n_p_eval else None
    decode = perf.t_eval_ms / 1000  # the single-token decodes: every output token after the first
    ttft = max(0.0, e2e - decode)
    timing = RequestTiming(e2e, int(perf.n_p_eval) or gen.n_prompt_tokens, gen.n_tokens, ttft, prefill,
                           decode if perf.n_eval else None, int(perf.n_eval), cpu, PERF_COUNTERS)
    return Generation(gen.text, gen.n_prompt_tokens, gen.n_tokens, gen.finish_reason, e2e, ttft,
                      gen.n_truncated_tokens), timing
