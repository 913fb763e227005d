"""Load-test curves: the Little's-law check against a local fake server with a known
service time (unlimited slots and one slot), then llama-cpp-python's own server, which
serves one request at a time (expect flat throughput and latency growing with load).

    PYTHONPATH=src:tests python bench/efficiency_loadtest.py --fake            # seconds, any machine
    PYTHONPATH=src:tests python bench/efficiency_loadtest.py --server smollm2-135m --repeats 3 --output-path runs/loadtest --write

The fake part's ratios do not depend on the machine's load; the server's timings do: run it
on a quiet machine.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from pathlib import Path

from llmassay.efficiency.loadtest import LoadPlan, run_loadtest

SERVICE_S = 0.05


def _fake_rows() -> list[str]:
    from fake_openai import FakeOpenAI

    rows = ["| server | mode | level | req/s | E2E p50 s | L | X·W | L / XW |", "|---|---|---|---|---|---|---|---|"]
    for slots in (None, 1):
        with FakeOpenAI() as fake:
            fake.service_s, fake.slots = SERVICE_S, slots
            plan = LoadPlan(fake.base_url, "fake-model", concurrency=(1, 2, 4, 8), rates=(10.0, 40.0), requests=120)
            for lv in run_loadtest(plan):
                m, li = lv.metrics, lv.little
                rows.append(f"| fake, S = {SERVICE_S} s, {'unlimited' if slots is None else slots} slot(s) | "
                            f"{lv.mode} | {lv.level:g} | {m['throughput_rps'].value:.1f} | "
                            f"{m['e2e_s[p50]'].value:.3f} | {li['L']:.2f} | {li['X_W']:.2f} | {li['ratio']:.3f} |")
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, seconds: float = 120.0) -> None:
    """Bounded wait until the server answers /v1/models (the model is loaded)."""
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"llama_cpp.server exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("llama_cpp.server did not come up in time")


def start_server(model: str, threads: int) -> tuple[subprocess.Popen, int]:
    """llama_cpp.server on a free loopback port with `threads` threads and one slot, loaded."""
    from llmassay.models import resolve_model_path

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model_path(model)),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                             "--n_threads", str(threads), "--n_threads_batch", str(threads),
                             # its default (True) cuts a streaming answer off when the next request
                             # arrives (the client sees RemoteProtocolError): queue them instead
                             "--interrupt_requests", "False"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, proc)
    except BaseException:
        proc.terminate()
        raise
    return proc, port


def _server(model: str, out: str, threads: int, repeats: int, requests: int, rates: str,
            concurrency: str = "1,2,4,8") -> list[str]:
    """Start llama_cpp.server (one slot, `threads` threads), load-test it `repeats` times
    through the CLI, and summarise: median [min–max] over repeats per level."""
    import json

    import numpy as np

    from llmassay.cli import main as cli

    proc, port = start_server(model, threads)
    records = []
    try:
        for r in range(repeats):
            folder = Path(out) / f"repeat{r}"
            rc = cli(["loadtest", "--model", "openai/local", "--model-args", f"base_url=http://127.0.0.1:{port}/v1",
                      "--concurrency", concurrency, "--rate", rates, "--requests", str(requests), "--max-tokens", "16",
                      "--stream", "--slo-e2e", "2", "--seed", str(r), "--output-path", str(folder)])
            if rc != 0:
                sys.exit(f"loadtest failed (exit {rc})")
            records.append(json.loads((folder / "loadtest.json").read_text()))
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    def cell(values: list[float], digits: int = 2) -> str:
        return f"{np.median(values):.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"

    rows = ["| mode | level | req/s | output tok/s | goodput (E2E ≤ 2 s) | E2E p50 s | E2E p95 s | TTFT p50 s | "
            "failed | L / X·W |", "|---|---|---|---|---|---|---|---|---|---|"]
    for i, first in enumerate(records[0]["levels"]):
        levels = [rec["levels"][i] for rec in records]

        def metric(name: str) -> list[float]:
            return [lv["metrics"][name]["value"] for lv in levels if name in lv["metrics"]]

        rows.append(f"| {first['mode']} | {first['level']:g} | {cell(metric('throughput_rps'))} | "
                    f"{cell(metric('output_tps'), 1)} | {cell(metric('goodput_rps'))} | {cell(metric('e2e_s[p50]'))} | "
                    f"{cell(metric('e2e_s[p95]'))} | {cell(metric('ttft_s[p50]'))} | "
                    f"{sum(metric('failed')):.0f} | {cell([lv['little']['ratio'] for lv in levels], 3)} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fake", action="store_true")
    ap.add_argument("--server", default=None, help="model alias or GGUF for llama_cpp.server")
    ap.add_argument("--threads", type=int, default=1, help="the server's llama.cpp threads")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--requests", type=int, default=16, help="requests per level")
    ap.add_argument("--rate", default="1,2", help="Poisson arrival rates, requests/s ('' for none)")
    ap.add_argument("--concurrency", default="1,2,4,8", help="closed-loop levels")
    ap.add_argument("--section", default="efficiency_loadtest_server", help="docs/benchmarks.md section name")
    ap.add_argument("--output-path", default="runs/loadtest")
    ap.add_argument("--write", action="store_true", help="write the docs/benchmarks.md section (with --server)")
    args = ap.parse_args()
    if args.fake:
        print("\n".join(_fake_rows()))
    if args.server:
        from _common import machine, write_section

        Path(args.output_path).mkdir(parents=True, exist_ok=True)
        rows = _server(args.server, args.output_path, args.threads, args.repeats, args.requests, args.rate,
                       args.concurrency)
        text = "\n".join([
            f"Machine: {machine()}; server and load generator alone on one core, the server with {args.threads} "
            f"llama.cpp thread(s) and one slot (`--interrupt_requests False`). `llama_cpp.server` with {args.server}, {args.requests} requests per "
            f"level, 16 output tokens, streamed, prompts from `arith_sample`; closed loop at concurrency {args.concurrency}, "
            f"then Poisson arrivals at {args.rate or 'no'} req/s. Median over {args.repeats} repeats [min–max]; "
            "L / X·W is Little's law over the arrival window (1 = holds).", "", *rows])
        print(text)
        if args.write:
            write_section(args.section, "## Load test of llama_cpp.server\n\n" + text + "\n")


if __name__ == "__main__":
    main()
