"""Load test of an OpenAI-compatible endpoint on this machine: fixed concurrency (closed
loop) and Poisson arrivals at set rates (open loop), as `vllm bench serve` does.

Per level: throughput (completed requests/s, output tokens/s), latency percentiles with
order-statistic CIs (E2EL; TTFT and TPOT when streaming), goodput (requests/s meeting the SLO)
and a Little's-law check over the window in which requests arrive: L, the time-average of
requests in flight (integrated from their start and end times), against λW, the arrival
rate in the window times the mean latency of the requests that arrived in it. They agree
up to edge effects of order W / window; against a server with a known service time S, L
must also equal λS (tests/test_efficiency_loadtest.py), which checks that the generator
offers the load it claims.

A request that times out is censored, not dropped: E2EL percentiles count it at the time it
timed out (its true latency is longer), so a p99 can reach the timeout and show that requests
hit it; `timed_out` says how many. Dropping them would cap every percentile below the timeout.
TTFT percentiles are over completed requests only.

A failed request (an HTTP error, a broken stream, an `{"error": …}` event, a timeout) is a
result, counted in `failed`, but never a completion: throughput, goodput and the Little's-law
figures count successful requests only (Little's law holds for any class of requests). A
connection that cannot be made at all (nothing listens on the port) is no load-test result:
the load test stops with a one-line error, as `llmassay run` does.

Bounded: only loopback addresses, at most `requests` per level, every level stops after
`max_seconds` (outstanding requests are cancelled and counted as failed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np

from llmassay.efficiency.stats import mean_metric, percentiles
from llmassay.types import LlmassayError, Metric

MAX_REQUESTS = 10_000


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    model: str
    prompts: tuple[str, ...] = ("Write one sentence about the sea.",)
    max_tokens: int = 16
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    rates: tuple[float, ...] = ()
    requests: int = 32
    slo_e2e_s: float = 2.0
    slo_ttft_s: float | None = None  # only with stream
    stream: bool = False
    timeout_s: float = 60.0
    max_seconds: float = 300.0
    seed: int = 0
    api_key: str | None = None

    def check(self) -> None:
        check_loopback(self.base_url)
        if not 1 <= self.requests <= MAX_REQUESTS:
            raise LlmassayError(f"loadtest: --requests must be 1..{MAX_REQUESTS}, not {self.requests}")
        if any(c < 1 for c in self.concurrency) or any(r <= 0 for r in self.rates):
            raise LlmassayError("loadtest: --concurrency values must be ≥ 1 and --rate values > 0")
        if not self.concurrency and not self.rates:
            raise LlmassayError("loadtest: give --concurrency or --rate levels")
        if self.slo_ttft_s is not None and not self.stream:
            raise LlmassayError("loadtest: --slo-ttft needs --stream (TTFT is unknown without streaming)")


def check_loopback(base_url: str) -> None:
    """Refuse any endpoint that is not this machine: a load test is a flood."""
    host = urlparse(base_url).hostname
    if not host:
        raise LlmassayError(f"loadtest: base_url {base_url!r} has no host")
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise LlmassayError(f"loadtest: base_url host {host!r} does not resolve ({exc})") from None
    if not addresses or not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise LlmassayError(f"loadtest: base_url host {host!r} is not a loopback address; only local endpoints are load-tested")


@dataclass
class RequestRecord:
    start: float
    end: float
    ok: bool
    n_out: int = 0
    ttft_s: float | None = None
    error: str = ""
    timed_out: bool = False  # the client's timeout cut it off: its latency is at least e2e_s (censored)

    @property
    def e2e_s(self) -> float:
        return self.end - self.start


@dataclass
class LevelResult:
    mode: str  # "concurrency" | "rate"
    level: float
    records: list[RequestRecord]
    duration_s: float
    stopped_early: bool
    metrics: dict[str, Metric] = field(default_factory=dict)
    little: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "level": self.level, "duration_s": self.duration_s, "stopped_early": self.stopped_early,
            "metrics": {k: m.as_dict() for k, m in self.metrics.items()}, "little": self.little,
            "requests": [{**asdict(r), "e2e_s": r.e2e_s} for r in self.records],
        }


class _Client:
    def __init__(self, plan: LoadPlan, limit: int) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {plan.api_key}"} if plan.api_key else {}
        self.plan = plan
        self.http = httpx.AsyncClient(timeout=plan.timeout_s, headers=headers,
                                      limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit))
        self.url = plan.base_url.rstrip("/") + "/completions"
        self.timeout_error, self.connect_error = httpx.TimeoutException, httpx.ConnectError

    async def one(self, i: int, t0: float) -> RequestRecord:
        plan = self.plan
        body = {"model": plan.model, "prompt": plan.prompts[i % len(plan.prompts)], "max_tokens": plan.max_tokens,
                "temperature": 0.0, "stream": plan.stream}
        start = time.perf_counter()
        try:
            if plan.stream:
                return await self._streamed(body, start, t0)
            resp = await self.http.post(self.url, json=body)
            end = time.perf_counter()
            if resp.status_code != 200:
                return RequestRecord(start - t0, end - t0, False, error=f"HTTP {resp.status_code}")
            usage = resp.json().get("usage") or {}
            return RequestRecord(start - t0, end - t0, True, int(usage.get("completion_tokens") or 0))
        except self.connect_error as exc:  # nothing listens there: no load test can run
            from llmassay.backends.openai_compat import _connect_reason

            raise LlmassayError(f"loadtest: cannot connect to {self.url}: {_connect_reason(exc)}") from None
        except Exception as exc:  # a failed request is a result of the load test, not a crash
            return RequestRecord(start - t0, time.perf_counter() - t0, False, error=type(exc).__name__,
                                 timed_out=isinstance(exc, self.timeout_error))

    async def _streamed(self, body: dict[str, Any], start: float, t0: float) -> RequestRecord:
        first, n = None, 0
        async with self.http.stream("POST", self.url, json=body) as resp:
            if resp.status_code != 200:
                return RequestRecord(start - t0, time.perf_counter() - t0, False, error=f"HTTP {resp.status_code}")
            async for line in resp.aiter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                chunk = json.loads(line[5:])
                if chunk.get("error") is not None:  # the server gave up mid-stream: no completion
                    return RequestRecord(start - t0, time.perf_counter() - t0, False, n, first, error="error event")
                if (chunk.get("choices") or [{}])[0].get("text"):
                    first = first if first is not None else time.perf_counter() - start
                    n += 1
        return RequestRecord(start - t0, time.perf_counter() - t0, True, n, first)


async def _level(plan: LoadPlan, mode: str, level: float) -> LevelResult:
    limit = int(level) if mode == "concurrency" else plan.requests
    client = _Client(plan, max(1, limit))
    t0 = time.perf_counter()
    records: list[RequestRecord] = []
    tasks: list[asyncio.Task[Any]] = []
    if mode == "concurrency":
        counter = iter(range(plan.requests))

        async def worker() -> None:
            for i in counter:
                records.append(await client.one(i, t0))

        tasks = [asyncio.create_task(worker()) for _ in range(int(level))]
    else:
        gaps = np.random.default_rng(plan.seed).exponential(1.0 / level, plan.requests)
        gaps[0] = 0.0

        async def arrivals() -> None:
            due = 0.0
            for i, gap in enumerate(gaps):
                due += gap
                await asyncio.sleep(max(0.0, due - (time.perf_counter() - t0)))
                tasks.append(asyncio.create_task(_keep(client.one(i, t0), records)))

        tasks = [asyncio.create_task(arrivals())]
    stopped = False
    try:
        try:
            await asyncio.wait_for(_all(tasks), timeout=plan.max_seconds)
        except asyncio.TimeoutError:
            stopped = True
        duration = time.perf_counter() - t0
    finally:  # stopped early, or a request could not connect: nothing is left running
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.http.aclose()
    result = LevelResult(mode, level, sorted(records, key=lambda r: r.start), duration, stopped)
    _analyse(result, plan)
    return result


async def _keep(coro: Any, records: list[RequestRecord]) -> None:
    records.append(await coro)


async def _all(tasks: list[asyncio.Task[Any]]) -> None:
    done = 0
    while done < len(tasks):  # arrivals() appends tasks while we wait
        await tasks[done]
        done += 1


def _analyse(result: LevelResult, plan: LoadPlan) -> None:
    recs = result.records
    ok = [r for r in recs if r.ok]
    m: dict[str, Metric] = {}
    n = len(recs)
    span = max((r.end for r in recs), default=0.0) - min((r.start for r in recs), default=0.0)
    if ok and span > 0:
        m["throughput_rps"] = _exact(len(ok) / span, n, "completed requests / (last end − first start)")
        m["output_tps"] = _exact(sum(r.n_out for r in ok) / span, n, "output tokens / (last end − first start)")
        good = [r for r in ok if r.e2e_s <= plan.slo_e2e_s and (plan.slo_ttft_s is None or (
            r.ttft_s is not None and r.ttft_s <= plan.slo_ttft_s))]
        m["goodput_rps"] = _exact(len(good) / span, n, f"requests meeting the SLO / span (E2EL ≤ {plan.slo_e2e_s} s"
                                  + (f", TTFT ≤ {plan.slo_ttft_s} s)" if plan.slo_ttft_s is not None else ")"))
        ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
        if ttfts:
            m.update({f"ttft_s[{k}]": v for k, v in percentiles(ttfts).items()})
            tpots = [(r.e2e_s - r.ttft_s) / (r.n_out - 1) for r in ok if r.ttft_s is not None and r.n_out > 1]
            if tpots:
                m["tpot_s"] = mean_metric(tpots, plan.seed)
    timed_out = [r for r in recs if r.timed_out]
    if ok or timed_out:
        # Censored, not dropped: a timed-out request counts at the time it was cut off.
        m.update({f"e2e_s[{k}]": v for k, v in percentiles([r.e2e_s for r in ok + timed_out], len(timed_out)).items()})
    m["timed_out"] = _exact(float(len(timed_out)), plan.requests,
                            f"requests cut off by the {plan.timeout_s:g} s client timeout (in E2E percentiles at that time)")
    m["failed"] = _exact(float(plan.requests - len(ok)), plan.requests, "requests failed, cut off or never sent")
    result.metrics = m
    result.little = little_check(ok)


def little_check(records: list[RequestRecord]) -> dict[str, float]:
    """Little's law L = XW for `records` (the successful requests: a failure is no
    completion) over their arrival window [first start, last start]: L is the
    time-average in flight, X the completions per second in the window (in steady state the
    arrival rate; for a closed loop, arrivals in the window over-count by the c that are still
    in flight), W the mean latency. `offered_rps` is the arrival rate in the window. Edge
    effects (requests in flight at the window's ends; faster requests as a closed loop
    drains) shrink as requests per level grow."""
    if len(records) < 2:
        return {}
    lo, hi = records[0].start, max(r.start for r in records)
    if hi <= lo:
        return {}
    span = hi - lo
    x = sum(1 for r in records if lo < r.end <= hi) / span
    w = float(np.mean([r.e2e_s for r in records]))
    l_measured = sum(max(0.0, min(r.end, hi) - max(r.start, lo)) for r in records) / span
    return {"L": l_measured, "X_rps": x, "W_s": w, "X_W": x * w, "offered_rps": (len(records) - 1) / span,
            "ratio": l_measured / (x * w) if x * w else float("nan")}


def _exact(value: float, n: int, method: str) -> Metric:
    return Metric(value, value, value, n, None, method)


def run_loadtest(plan: LoadPlan) -> list[LevelResult]:
    """Every level in turn (concurrency levels, then rates); each starts from no load."""
    plan.check()

    async def main() -> list[LevelResult]:
        out = [await _level(plan, "concurrency", c) for c in plan.concurrency]
        return out + [await _level(plan, "rate", r) for r in plan.rates]

    return asyncio.run(main())
