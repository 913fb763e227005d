"""Load-test curves: the Little's-law check against a local fake server with a known
service time (unlimited slots and one slot), then llama-cpp-python's own server, which
serves one request at a time (expect flat throughput and latency growing with load).

    PYTHONPATH=src:tests python bench/efficiency_loadtest.py --fake            # seconds, any machine
    PYTHONPATH=src:tests python bench/efficiency_loadtest.py --server smollm2-135m --output-path runs/loadtest

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


def _server(model: str, out: str) -> None:
    from llmassay.models import resolve_model_path

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model_path(model)),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # bounded wait for the model to load
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run([sys.executable, "-c", "from llmassay.cli import main; main()", "loadtest",
                        "--model", "openai/local", "--model-args", f"base_url=http://127.0.0.1:{port}/v1",
                        "--concurrency", "1,2,4,8", "--requests", "16", "--max-tokens", "16", "--stream",
                        "--output-path", out], check=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fake", action="store_true")
    ap.add_argument("--server", default=None, help="model alias or GGUF for llama_cpp.server")
    ap.add_argument("--output-path", default="runs/loadtest")
    args = ap.parse_args()
    if args.fake:
        print("\n".join(_fake_rows()))
    if args.server:
        Path(args.output_path).mkdir(parents=True, exist_ok=True)
        _server(args.server, args.output_path)


if __name__ == "__main__":
    main()
