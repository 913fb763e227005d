"""Efficiency: what one answer costs — TTFT, prefill and decode rates, end-to-end latency,
CPU time, peak memory and energy — with the method of every figure stated.

Requests go to the backend directly, one at a time and never through the engine's cache:
a cached answer has no latency, and a batch would blur per-request times. Before each
chunk `warmup` requests run untimed (first-call allocations, page faults of the weights).
Percentiles (p50/p95/p99) carry order-statistic CIs over requests, a bound that too few
requests cannot give reported as not estimable (None), never as a number; energy is RAPL-measured or
estimated from CPU time, and says which (see `llmassay.efficiency.host`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmassay.efficiency.host import ESTIMATED, EnergyMeter, energy_caveat, host_facts, peak_rss_mb, thread_count
from llmassay.efficiency.stats import mean_metric, percentiles, pooled_percentiles, scaled
from llmassay.efficiency.timing import timed_generate
from llmassay.probes._options import option
from llmassay.probes.base import Analysis, Preset, Probe, ProbeConfig, Row, SampleMetric, SummaryLine
from llmassay.types import GenerateRequest, Metric, Sample

if TYPE_CHECKING:
    from llmassay.engine.engine import Engine
    from llmassay.tasks.loader import Task

PER_1K = 1000
NOT_ESTIMATED = "not estimated"


@dataclass(frozen=True)
class EfficiencyOptions:
    max_tokens: int = option(32, "output tokens per request (0: the task's max_gen_toks)", minimum=0)
    warmup: int = option(1, "untimed requests before each chunk's timed ones", minimum=0)
    watts_per_core: float = option(0.0, "power per busy logical core for estimated energy (0: 85 W / logical cores, "
                                        "CodeCarbon's TDP for an unknown CPU; give this host's figure)", minimum=0)
    stream: bool = option(True, "time streamed answers where the backend streams (openai, hf): TTFT and "
                                "inter-token latency; false: end-to-end only (a server that cannot stream)")
    usd_per_hour: float = option(0.0, "price of the machine per hour, for cost per 1k items (0: not priced)",
                                 minimum=0)


def _field(name: str, help_text: str) -> SampleMetric:
    return SampleMetric(lambda row: row[name], help_text, binary=False)


def _served(backend: Any) -> bool:
    """The model answers from another process (an OpenAI-compatible server): CPU time and
    peak RSS here are the client's."""
    return str(getattr(backend, "name", "")).startswith("openai/")


class EfficiencyProbe(Probe):
    name = "efficiency"
    description = "latency (TTFT, E2E percentiles), prefill/decode tokens/s, CPU, memory, energy and cost per answer"
    challenge = "inference cost"
    Options = EfficiencyOptions
    # 2: percentile CIs are order-statistic intervals (None where not estimable), not a
    # percentile bootstrap that could not pass the sample maximum.
    schema_version = 2
    sample_metrics = {
        "e2e_s": _field("e2e_s", "end-to-end latency of the request, seconds"),
        "ttft_s": _field("ttft_s", "time to first token, seconds"),
        "prefill_tps": _field("prefill_tps", "prompt tokens per second of prefill"),
        "decode_tps": _field("decode_tps", "output tokens per second after the first"),
        "cpu_s": _field("cpu_s", "process CPU seconds of the request"),
        "energy_wh": _field("energy_wh", "energy of the request, Wh (measured or estimated: see details)"),
    }
    presets = {
        "quick": Preset(("arith_sample",), limit=12, options=(("max_tokens", 16),)),
        "full": Preset(("arith_sample", "json_sample"), limit=100),
    }

    def evaluate(self, task: Task, samples: list[Sample], engine: Engine, opts: Any, cfg: ProbeConfig) -> list[Row]:
        backend = engine.backend  # not the engine: its cache would answer without running the model
        max_tokens = opts.max_tokens or int(task.generation_kwargs.get("max_gen_toks", 32))
        requests = [self._request(s, max_tokens, cfg) for s in samples]
        for req in requests[: opts.warmup]:
            timed_generate(backend, req, opts.stream)
        meter = EnergyMeter(opts.watts_per_core or None)
        served = _served(backend)
        rows = []
        for sample, req in zip(samples, requests):
            meter.start()
            gen, timing = timed_generate(backend, req, opts.stream)
            energy = meter.stop(timing.cpu_s)
            engine.count_direct(gen.n_prompt_tokens + gen.n_tokens)
            wh: float | None = energy.wh
            kind, method = energy.kind, energy.method
            if served and kind == ESTIMATED:  # this process's CPU time is the client's, not the model's
                wh, kind, method = None, NOT_ESTIMATED, "the model runs in a server process: no CPU-time estimate"
            rows.append({"id": sample.id, "text": gen.text, **timing.as_dict(), "energy_wh": wh,
                         "energy_kind": kind, "energy_method": method, "served": served,
                         "peak_rss_mb": peak_rss_mb(), "threads": thread_count()})
        return rows

    @staticmethod
    def _request(sample: Sample, max_tokens: int, cfg: ProbeConfig) -> GenerateRequest:
        common: dict[str, Any] = {"max_tokens": max_tokens, "temperature": cfg.temperature, "seed": cfg.seed}
        if cfg.chat_model:
            return GenerateRequest(messages=(("user", sample.prompt),), **common)
        return GenerateRequest(prompt=sample.prompt, **common)

    def analyse(self, task: Task, rows: list[Row], opts: Any, cfg: ProbeConfig) -> Analysis:
        metrics: dict[str, Metric] = {}
        for name in ("e2e_s", "ttft_s"):
            values = [r[name] for r in rows if r.get(name) is not None]
            if values:
                metrics.update({f"{name}[{k}]": m for k, m in percentiles(values).items()})
        itl = pooled_percentiles([r.get("itl_s") or () for r in rows])
        metrics.update({f"itl_s[{k}]": m for k, m in itl.items()})
        for name in ("prefill_tps", "decode_tps", "tpot_s", "cpu_s", "energy_wh"):
            values = [r[name] for r in rows if r.get(name) is not None]
            if values:
                metrics[name] = mean_metric(values, cfg.seed)
        if "e2e_s" in {k.split("[")[0] for k in metrics}:
            e2e = mean_metric([r["e2e_s"] for r in rows], cfg.seed)
            metrics["seconds_per_1k"] = scaled(e2e, PER_1K, "mean E2E × 1000, one request at a time")
            if opts.usd_per_hour:
                metrics["usd_per_1k"] = scaled(e2e, PER_1K * opts.usd_per_hour / 3600,
                                               f"seconds per 1k × {opts.usd_per_hour} USD/h")
        if "energy_wh" in metrics:
            metrics["energy_wh_per_1k"] = scaled(metrics["energy_wh"], PER_1K, "mean energy per answer × 1000")
        peaks = [float(r["peak_rss_mb"]) for r in rows if r.get("peak_rss_mb") is not None]  # None: not on this OS
        if peaks:
            peak = max(peaks)
            metrics["peak_rss_mb"] = Metric(peak, peak, peak, len(peaks), None, "max ru_maxrss of the process: one reading")
        kinds = sorted({r.get("energy_kind", "") for r in rows})
        details = {
            "timing_method": sorted({r["method"] for r in rows}),
            "energy": {"kind": kinds, "method": sorted({r.get("energy_method", "") for r in rows}),
                       **energy_caveat(kinds, opts.watts_per_core)},
            "threads": max((r.get("threads", 0) for r in rows), default=0),
            "host": host_facts(),
            "max_tokens": opts.max_tokens,
            "warmup": opts.warmup,
            "cache": "bypassed: every request ran on the backend",
            **({"stream_retries": f"{n} streamed attempt(s) dropped after a transient fault; each timing is of "
                                  "the attempt that completed"}
               if (n := sum(int(r.get("retries") or 0) for r in rows)) else {}),
            **({"served": "the model runs in a server process: cpu_s and peak_rss_mb are this client's"}
               if any(r.get("served") for r in rows) else {}),
        }
        return Analysis(metrics, details)

    def summary(self, task: Task, analysis: Analysis, opts: Any) -> SummaryLine | None:
        m = analysis.metrics.get("e2e_s[p50]")
        if m is None:
            return None
        rate = analysis.metrics.get("decode_tps")
        tail = f", {rate.value:.0f} tokens/s decode" if rate else ""
        return self.line(task, analysis, "e2e_s[p50]", f"median answer takes {m.value:.2f} s{tail}", "info")
