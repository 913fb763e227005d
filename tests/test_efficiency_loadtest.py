"""The load generator offers the load it claims: against a local fake server with a known
service time, throughput, latency and Little's law come out as queueing theory says."""

from __future__ import annotations

import pytest

from fake_openai import FakeOpenAI
from llmassay.efficiency.loadtest import LoadPlan, check_loopback, run_loadtest
from llmassay.types import LlmassayError

SERVICE_S = 0.05


def _plan(fake: FakeOpenAI, **kw) -> LoadPlan:
    return LoadPlan(base_url=fake.base_url, model="fake-model", **{"requests": 24, "concurrency": (), **kw})


# Little's law over the arrival window [first start, last start] is exact but for one edge:
# the k requests still in flight at the last start count fully in W but only partly in L
# (ratio − 1 ≈ (k − residual/W) / completions). On a quiet machine a closed loop stays in
# lockstep and the edge cancels; under CPU contention the requests drift apart and the edge
# reaches (c − 1) / (2 · completions): 7.5 % for c = 4 and 24 requests, so each level below
# has enough requests to keep it near 2 %, and no level offers more than the in-process fake
# server can serve while the machine is loaded (an overloaded queue ends with many in flight).
def test_closed_loop_on_an_unlimited_server_scales_throughput_with_concurrency():
    with FakeOpenAI() as fake:
        fake.service_s = SERVICE_S
        one = run_loadtest(_plan(fake, concurrency=(1,)))[0]
        four = run_loadtest(_plan(fake, concurrency=(4,), requests=80))[0]
        assert fake.max_in_service == 4  # the server itself saw c = 4 at once, never more
    for lv, c in ((one, 1), (four, 4)):
        m = lv.metrics
        assert m["failed"].value == 0
        assert m["e2e_s[p50]"].value >= SERVICE_S  # never faster than the planted service time
        assert m["throughput_rps"].value <= c / SERVICE_S * 1.05
        # A closed loop keeps c requests in flight: X = c / W (the machine's load only stretches W).
        assert m["throughput_rps"].value == pytest.approx(c / lv.little["W_s"], rel=0.15)
        assert lv.little["ratio"] == pytest.approx(1.0, abs=0.10)  # Little's law within 10 %
    assert four.metrics["throughput_rps"].value > 2 * one.metrics["throughput_rps"].value


def test_a_one_slot_server_gives_flat_throughput_and_growing_latency():
    # Against the planted truth, not against c = 1: at c = 1 the client's own overhead between
    # requests lowers throughput (more so on a loaded machine), at c = 4 it is hidden.
    with FakeOpenAI() as fake:
        fake.service_s, fake.slots = SERVICE_S, 1
        (four,) = run_loadtest(_plan(fake, concurrency=(4,), requests=40))
        assert fake.max_in_service == 1
    assert four.metrics["failed"].value == 0
    assert four.metrics["throughput_rps"].value <= 1.05 / SERVICE_S  # one slot: at most 1 / S, flat in c
    assert four.metrics["e2e_s[p50]"].value >= 3 * SERVICE_S  # each waits behind the 3 others: W ≈ 4 S
    assert four.little["ratio"] == pytest.approx(1.0, abs=0.10)


def test_poisson_arrivals_offer_the_rate_and_satisfy_littles_law():
    # 15 requests/s × 50 ms: L ≈ 0.75, a load the fake serves even on a loaded machine.
    with FakeOpenAI() as fake:
        fake.service_s = SERVICE_S
        (level,) = run_loadtest(_plan(fake, rates=(15.0,), requests=60, seed=3))
    little = level.little
    assert little["offered_rps"] == pytest.approx(15.0, rel=0.35)  # 60 exponential gaps: sd ≈ 13 %
    assert little["ratio"] == pytest.approx(1.0, abs=0.10)
    # Against the planted service time: L = λS, up to the client's own overhead (W ≥ S).
    assert little["W_s"] >= SERVICE_S
    assert little["L"] == pytest.approx(little["offered_rps"] * little["W_s"], rel=0.10)
    assert little["L"] >= 0.9 * little["offered_rps"] * SERVICE_S


def test_streaming_measures_ttft_and_tpot_and_goodput_applies_the_slo():
    with FakeOpenAI() as fake:
        fake.service_s, fake.token_s, fake.completion = SERVICE_S, 0.02, " a b c d e"
        (level,) = run_loadtest(_plan(fake, concurrency=(2,), requests=8, stream=True, slo_e2e_s=10.0,
                                      slo_ttft_s=0.001))
    m = level.metrics
    assert SERVICE_S <= m["ttft_s[p50]"].value < SERVICE_S + 0.1
    assert m["tpot_s"].value == pytest.approx(0.02, abs=0.02)
    assert m["goodput_rps"].value == 0.0  # no first token can come within 1 ms
    assert m["output_tps"].value == pytest.approx(5 * m["throughput_rps"].value)


def test_failures_are_counted_not_raised():
    with FakeOpenAI() as fake:
        fake.faults.extend(["500", "500"])
        (level,) = run_loadtest(_plan(fake, concurrency=(1,), requests=6))
    assert level.metrics["failed"].value == 2


def test_a_level_stops_itself_after_max_seconds():
    with FakeOpenAI() as fake:
        fake.service_s = 0.3
        (level,) = run_loadtest(_plan(fake, concurrency=(1,), requests=50, max_seconds=0.5))
    assert level.stopped_early and level.metrics["failed"].value >= 45


@pytest.mark.parametrize("url", ["http://example.com/v1", "http://8.8.8.8:8000/v1", "nohost"])
def test_only_loopback_endpoints_are_load_tested(url):
    with pytest.raises(LlmassayError, match="loadtest"):
        check_loopback(url)


def test_bad_plans_are_one_line_errors():
    with pytest.raises(LlmassayError, match="--requests"):
        LoadPlan("http://127.0.0.1:1/v1", "m", requests=0).check()
    with pytest.raises(LlmassayError, match="--stream"):
        LoadPlan("http://127.0.0.1:1/v1", "m", slo_ttft_s=0.1).check()


def test_cli_writes_the_record_and_curves_and_refuses_remote_hosts(tmp_path, capsys):
    import json

    from llmassay.cli import main

    with FakeOpenAI() as fake:
        fake.service_s = 0.01
        rc = main(["loadtest", "--model", "openai/fake-model", "--model-args", f"base_url={fake.base_url}",
                   "--concurrency", "1,2", "--rate", "50", "--requests", "6", "--output-path", str(tmp_path)])
    assert rc == 0
    record = json.loads((tmp_path / "loadtest.json").read_text())
    assert [(lv["mode"], lv["level"]) for lv in record["levels"]] == [("concurrency", 1), ("concurrency", 2),
                                                                       ("rate", 50.0)]
    assert all(len(lv["requests"]) == 6 for lv in record["levels"]) and "api_key" not in record["plan"]
    assert (tmp_path / "loadtest.svg").read_text().startswith("<svg")
    assert "L/XW" in capsys.readouterr().out
    rc = main(["loadtest", "--model", "openai/m", "--model-args", "base_url=http://10.0.0.1:8000/v1",
               "--output-path", str(tmp_path / "x")])
    assert rc == 2 and "not a loopback address" in capsys.readouterr().err


def test_timed_out_requests_are_censored_at_the_timeout_not_dropped():
    # Planted: 20 requests answered in 0.1 s and 4 that hit the 1 s client timeout. Over
    # successful requests only, every percentile is 0.1 s (the old analysis); counting the
    # timed-out ones at their timeout, p95 and p99 reach it and the count is reported.
    from llmassay.efficiency.loadtest import LevelResult, RequestRecord, _analyse

    ok = [RequestRecord(i * 0.2, i * 0.2 + 0.1, True, 8) for i in range(20)]
    cut = [RequestRecord(4.0 + i, 5.0 + i, False, error="ReadTimeout", timed_out=True) for i in range(4)]
    level = LevelResult("concurrency", 1, ok + cut, 9.0, False)
    _analyse(level, LoadPlan(base_url="http://127.0.0.1:1/v1", model="m", requests=24, timeout_s=1.0))
    m = level.metrics
    assert m["e2e_s[p50]"].value == pytest.approx(0.1) and m["e2e_s[p50]"].n == 24
    assert m["e2e_s[p95]"].value == pytest.approx(1.0) and m["e2e_s[p99]"].value == pytest.approx(1.0)
    assert "4 timed-out request(s) counted at the timeout" in m["e2e_s[p99]"].method
    assert m["timed_out"].value == 4 and m["failed"].value == 4
    assert m["e2e_s[p99]"].ci_high is None  # 24 requests cannot bound a p99 from above
    from llmassay.efficiency.plots import loadtest_curves

    assert "n.e." in loadtest_curves([level])  # the curve marks it instead of drawing a whisker


def test_a_client_timeout_is_recorded_as_timed_out():
    with FakeOpenAI() as fake:
        fake.service_s = 0.4
        (level,) = run_loadtest(_plan(fake, concurrency=(1,), requests=2, timeout_s=0.1))
    assert level.metrics["timed_out"].value == 2 and level.metrics["failed"].value == 2
    assert all(r.timed_out and r.e2e_s >= 0.1 for r in level.records)
    assert level.metrics["e2e_s[p50]"].value >= 0.1  # at least the timeout, never dropped


def _free_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("mode", [{"concurrency": (1, 2)}, {"rates": (20.0,), "stream": True}], ids=["closed", "open"])
def test_a_refused_connection_is_a_one_line_error_not_a_finished_table(mode):
    # Before: every request "failed", yet X_rps, L/XW and the table came out as if completed.
    url = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(LlmassayError) as info:
        run_loadtest(LoadPlan(base_url=url, model="m", requests=4, **mode))
    assert str(info.value) == f"loadtest: cannot connect to {url}/completions: connection refused (is the server " \
                              "running, on this port?)"


def test_the_cli_fails_in_one_line_on_a_refused_port(tmp_path, capsys):
    from llmassay.cli import main

    url = f"http://127.0.0.1:{_free_port()}/v1"
    rc = main(["loadtest", "--model", "openai/m", "--model-args", f"base_url={url}", "--concurrency", "1,2",
               "--requests", "2", "--output-path", str(tmp_path / "lt")])
    printed = capsys.readouterr()
    assert rc != 0 and "L/XW" not in printed.out and not (tmp_path / "lt" / "loadtest.json").exists()
    # (an earlier test's fake server thread may still print a BrokenPipe report here: not ours)
    (line,) = [ln for ln in printed.err.splitlines() if "loadtest" in ln]
    assert printed.err.strip().splitlines()[-1] == line
    assert "cannot connect to" in line and "connection refused" in line


@pytest.mark.parametrize("fault,stream", [("500", False), ("stream-error", True)])
def test_failed_requests_never_count_as_completions(fault, stream):
    # Planted: 8 requests served in SERVICE_S and 8 failures alternating with them, one at a
    # time. Successful requests alone give W ≥ S and X ≤ 1/S; counting the failures as
    # completions (fast 500s, or streams that broke off with an error event) breaks both.
    with FakeOpenAI() as fake:
        fake.service_s = SERVICE_S
        fake.completion = " a b c"
        fake.faults.extend([fault, "ok"] * 8)
        (level,) = run_loadtest(_plan(fake, concurrency=(1,), requests=16, stream=stream))
    m, little = level.metrics, level.little
    assert m["failed"].value == 8 and sum(r.ok for r in level.records) == 8
    assert {r.error for r in level.records if not r.ok} == {"error event" if stream else "HTTP 500"}
    assert little["W_s"] >= SERVICE_S and little["X_rps"] <= 1.05 / SERVICE_S
    assert little["ratio"] == pytest.approx(1.0, abs=0.10)
    assert m["throughput_rps"].value <= 1.05 / SERVICE_S and m["e2e_s[p50]"].value >= SERVICE_S
    assert m["output_tps"].value == pytest.approx(3 * m["throughput_rps"].value)


def _table_cells(out: str) -> dict[str, list[str]]:
    """Column header → cells, over every part of a (possibly split) rich table; a line with
    no mode is the previous row's wrapped continuation."""
    columns: dict[str, list[str]] = {}
    for part in out.split("┏")[1:]:
        lines = [ln for ln in part.splitlines() if ln.startswith(("┃", "│"))]
        heads = [h.strip() for h in lines[0].strip("┃").split("┃")]
        for ln in lines[1:]:
            cells = [c.strip() for c in ln.strip("│").split("│")]
            for head, cell in zip(heads, cells):
                if cells[0]:
                    columns.setdefault(head, []).append(cell)
                elif cell:
                    columns[head][-1] += " " + cell
    return columns


def test_the_stream_table_shows_ttft_and_tpot(tmp_path, capsys):
    import json

    from llmassay.cli import main

    with FakeOpenAI() as fake:
        fake.service_s, fake.token_s, fake.completion = SERVICE_S, 0.02, " a b c d e"
        rc = main(["loadtest", "--model", "openai/fake-model", "--model-args", f"base_url={fake.base_url}",
                   "--concurrency", "1", "--requests", "6", "--stream", "--output-path", str(tmp_path)])
    assert rc == 0
    cells = _table_cells(capsys.readouterr().out)
    metrics = json.loads((tmp_path / "loadtest.json").read_text())["levels"][0]["metrics"]
    ttft, ttft95, tpot = (cells[h][0].split()[0] for h in ("TTFT p50 s", "TTFT p95 s", "TPOT s"))
    assert float(ttft) == pytest.approx(metrics["ttft_s[p50]"]["value"], abs=5e-4) and float(ttft) >= SERVICE_S
    assert float(ttft95) == pytest.approx(metrics["ttft_s[p95]"]["value"], abs=5e-4)
    assert float(tpot) == pytest.approx(metrics["tpot_s"]["value"], abs=5e-4) and float(tpot) >= 0.02
    assert cells["level"] == ["1"] and cells["failed"] == ["0"]


def test_the_cli_sends_the_named_key_and_refuses_an_unset_one(tmp_path, capsys, monkeypatch):
    from llmassay.cli import main

    monkeypatch.setenv("LT_KEY", "sk-loadtest-1a2b")
    monkeypatch.delenv("LT_UNSET", raising=False)
    with FakeOpenAI() as fake:
        argv = ["loadtest", "--model", "openai/fake-model", "--concurrency", "1", "--requests", "2",
                "--output-path", str(tmp_path)]
        assert main([*argv, "--model-args", f"base_url={fake.base_url},api_key_env=LT_KEY"]) == 0
        assert {r["auth"] for r in fake.requests} == {"Bearer sk-loadtest-1a2b"}
        assert main([*argv, "--model-args", f"base_url={fake.base_url},api_key_env=LT_UNSET"]) != 0
        assert fake.seen() == 2
    printed = capsys.readouterr()
    assert "environment variable LT_UNSET (api_key_env) is not set" in printed.err
    assert "sk-loadtest-1a2b" not in printed.out + printed.err + (tmp_path / "loadtest.json").read_text()
