"""Issue #25, "the first hour": what a new user hit trying every README command — each
fix proved with a fake server, a scripted backend or a fixed-width console."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from fake_openai import FakeOpenAI
from fakes import ScriptedBackend
from llmassay.backends.openai_compat import OpenAIBackend
from llmassay.cli import main
from llmassay.engine.cache import RequestCache
from llmassay.evaluation import RunConfig, RunInterrupted, evaluate
from llmassay.types import GenerateRequest, LlmassayError

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 0.3}


def free_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- item 2: a refused connection fails at once; retries that happen are shown ------------
def test_a_refused_connection_fails_at_once_in_one_line():
    b = OpenAIBackend("m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=5, backoff_base=2.0)
    start = time.monotonic()
    with pytest.raises(LlmassayError) as info:
        b.generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert time.monotonic() - start < 1.5  # five retries at backoff_base 2 s would take > 30 s
    message = str(info.value)
    assert "\n" not in message and "cannot connect to" in message and "connection refused" in message
    assert b.retries == 0


def test_an_unknown_host_fails_at_once_naming_it():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    b = OpenAIBackend("m", base_url="http://no-such-host.invalid/v1", max_retries=5)
    b._client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(LlmassayError, match=r"cannot connect to http://no-such-host.invalid/v1/completions: "
                                            r"unknown host"):
        b.generate([GenerateRequest(prompt="x", max_tokens=2)])
    assert b.retries == 0


def test_the_cli_names_a_refused_server_before_any_retry(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    code = main(["run", "--model", "openai/m", "--model-args", f"base_url={url}", "--tasks", "arith_sample",
                 "--limit", "5", "--output-path", str(tmp_path / "o"), "--cache-path", str(tmp_path / "c.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and time.monotonic() - start < 5  # a runtime failure (exit 1), not a usage error (2)
    assert err.startswith("error: openai: cannot connect to") and "connection refused" in err and "\n" not in err


def test_retries_that_do_happen_are_said(caplog):
    with FakeOpenAI() as fake:
        fake.faults.extend(["503", "429"])
        b = OpenAIBackend("toy", base_url=fake.base_url, **FAST)
        with caplog.at_level(logging.WARNING, logger="llmassay"):
            assert b.generate([GenerateRequest(prompt="x", max_tokens=2)])[0].text == " 7"
    said = [r.getMessage() for r in caplog.records if r.name.startswith("llmassay")]
    assert len(said) == 2 and b.retries == 2
    assert said[0].startswith("openai: retrying in ") and said[0].endswith(": HTTP 503, attempt 2/6")
    assert said[1].endswith(": HTTP 429, attempt 3/6")


# -- item 4: an option of a probe the run does not include is an error ---------------------
@pytest.mark.parametrize("argv,names", [
    (["--perturbations", "typos_5"], "--perturbations is an option of --probe brittleness"),
    (["--modes", "strict"], "--modes is an option of --probe structured"),
    (["-P", "brittleness.repeats=3"], "-P brittleness.repeats: probe 'brittleness' is not in this run"),
    (["-P", "repeats=3"], "-P repeats=3: expected PROBE.KEY=VALUE"),
])
def test_an_option_of_an_unselected_probe_is_a_one_line_error(tmp_path, capsys, argv, names):
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--tasks", "arith_sample", "--limit", "2",
                 "--output-path", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and names in err and "\n" not in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("results_*"))


def test_the_python_api_refuses_a_bare_option_of_an_unselected_probe(tmp_path):
    cfg = RunConfig(model="test/x", tasks=["arith_sample"], output_path=str(tmp_path / "o"),
                    probe_options={"perturbations": "typos_5"})
    with pytest.raises(LlmassayError, match="option 'perturbations': it is an option of brittleness, "
                                            "and --probe is accuracy"):
        evaluate(cfg, backend=object())  # refused before the backend is touched


# -- item 1: progress moves with each answer; Ctrl-C says exactly what was kept ------------
class AnsweringBackend(ScriptedBackend):
    """Answers one request at a time through `on_answer`, as llamacpp and openai do; raises
    KeyboardInterrupt (a Ctrl-C) instead of computing request number `interrupt_at`."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        super().__init__(lambda c, x: -1.0, lambda r: " 7")
        self.interrupt_at, self.computed = interrupt_at, 0

    def generate(self, reqs, on_answer=None):
        out = []
        for i, r in enumerate(reqs):
            if self.computed == self.interrupt_at:
                raise KeyboardInterrupt
            self.computed += 1
            (answer,) = super().generate([r])
            out.append(answer)
            if on_answer is not None:
                on_answer(i, answer)
        return out


def arith_run(tmp_path: Path, limit: int, chunk_size: int = 32, cache: bool = True) -> RunConfig:
    return RunConfig(model="test/answering", tasks=["arith_sample"], limit=limit, chunk_size=chunk_size,
                     output_path=str(tmp_path / "out"), use_cache=cache, cache_path=str(tmp_path / "c.sqlite"))


def test_the_bar_moves_with_every_answer_inside_one_chunk(tmp_path, monkeypatch):
    import llmassay.evaluation as ev

    seen: list[tuple[float, int]] = []

    class Recording(ev.RunMeter):
        def _show(self, **fields):
            super()._show(**fields)
            seen.append((self.position, self.done))

    monkeypatch.setattr(ev, "RunMeter", Recording)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    evaluate(arith_run(tmp_path, limit=4), backend=AnsweringBackend(), console=console)
    assert "4/4 requests" in screen.getvalue() and "samples" in screen.getvalue()  # the bar was drawn
    during = [pos for pos, done in seen if done == 0]
    # Four samples in one chunk of 32: before, the bar sat at 0/4 until the chunk ended.
    assert [round(p, 6) for p in during] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert seen[-1] == (4.0, 4)
    assert all(a <= b for (a, _), (b, _) in zip(seen, seen[1:]))  # never backwards


def test_ctrl_c_counts_the_saved_samples_and_cached_answers(tmp_path):
    cfg = arith_run(tmp_path, limit=20, chunk_size=8)
    with pytest.raises(RunInterrupted) as info:
        evaluate(cfg, backend=AnsweringBackend(interrupt_at=11))
    out = Path(cfg.output_path)
    (log,) = out.glob(".llmassay/*/arith_sample__accuracy.jsonl")
    assert len(log.read_text().splitlines()) == 8 and len(RequestCache(cfg.cache_path)) == 11
    assert str(info.value) == (f"interrupted: 8 of 20 samples are saved in {out / '.llmassay'}; 11 answers kept "
                               f"in the cache {cfg.cache_path}; rerun the same command to resume")
    backend = AnsweringBackend()
    done = evaluate(cfg, backend=backend)  # the rerun computes only what was not kept
    assert backend.computed == 20 - 11 and done.results["results"]["arith_sample"]["accuracy"]["exact_match"]["n"] == 20


def test_ctrl_c_with_nothing_kept_says_so(tmp_path, monkeypatch, capsys):
    cfg = arith_run(tmp_path, limit=20, cache=False)  # the run: 20 samples, chunk 32, --no-cache
    with pytest.raises(RunInterrupted) as info:
        evaluate(cfg, backend=AnsweringBackend(interrupt_at=15))
    said = str(info.value)
    assert said == ("interrupted: no sample is saved (0 of 20: a sample is saved when its chunk of 32 finishes; "
                    "see --chunk-size); no answers are kept (--no-cache); nothing to resume")
    assert not list(Path(cfg.output_path).glob(".llmassay/*/*.jsonl")) or not any(
        p.read_text() for p in Path(cfg.output_path).glob(".llmassay/*/*.jsonl"))

    import llmassay.cli.run as cli

    def interrupted(*args, **kwargs):
        raise RunInterrupted(said)

    monkeypatch.setattr(cli, "_run", interrupted)
    assert main(["run", "--model", "llamacpp/x", "--tasks", "arith_sample"]) == 130
    assert capsys.readouterr().err.strip() == said


@pytest.mark.slow
def test_llamacpp_reports_each_answer_as_it_is_computed(smollm2):
    from llmassay.types import LoglikelihoodRequest

    reqs = [LoglikelihoodRequest("The sky is", c) for c in (" blue", " green")] + [LoglikelihoodRequest("2+2=", " 4")]
    heard: dict[int, object] = {}
    assert smollm2.loglikelihood(reqs, on_answer=heard.__setitem__) == [heard[i] for i in range(3)]
    gens: dict[int, object] = {}
    out = smollm2.generate([GenerateRequest(prompt="Hi", max_tokens=2)] * 2, on_answer=gens.__setitem__)
    assert out == [gens[0], gens[1]]


# -- item 5: a folder of several runs is refused unless a file is named; the file used is said --
def test_a_folder_of_two_runs_is_refused_and_one_run_rerun_is_read_with_a_note(tmp_path, capsys):
    first = evaluate(arith_run(tmp_path, limit=3), backend=AnsweringBackend())
    again = evaluate(arith_run(tmp_path, limit=3), backend=AnsweringBackend())  # the same command, rerun
    folder = tmp_path / "out"
    assert main(["report", str(folder), "--output", str(tmp_path / "r.html")]) == 0
    err = capsys.readouterr().err
    assert f"reading {again.results_path} (the newest of 2 results files of the same run)" in err
    other = RunConfig(**{**arith_run(tmp_path, limit=3).__dict__, "model": "test/other"})
    third = evaluate(other, backend=AnsweringBackend())
    capsys.readouterr()
    for argv in (["report", str(folder)], ["compare", str(folder), str(first.results_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {folder}: holds results of 2 different runs (test/answering: "
                              f"{again.results_path.name}; test/other: {third.results_path.name}); name one")
        assert "\n" not in err
    assert main(["report", str(third.results_path), "--output", str(tmp_path / "r3.html")]) == 0


def test_the_default_output_path_and_a_shared_folder_are_said(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="llmassay"):
        evaluate(RunConfig(model="test/a", tasks=["arith_sample"], limit=2, use_cache=False), backend=AnsweringBackend())
        evaluate(RunConfig(model="test/b", tasks=["arith_sample"], limit=2, use_cache=False), backend=AnsweringBackend())
    said = [r.getMessage() for r in caplog.records]
    assert said.count(f"wrote {tmp_path / 'runs' / 'latest'} (the default output path; give --output-path "
                      "/ output_path to choose)") == 2
    assert [m for m in said if m.startswith("note: ")] == [
        f"note: runs/latest now holds results of several runs; name the results file "
        f"({sorted((tmp_path / 'runs' / 'latest').glob('results_*.json'))[-1].name}) to report or compare it, "
        "or give each run its own --output-path"]


# -- item 3: tables fit 80 columns without cutting a name or a number ----------------------
def ci(value: float, low: float, high: float, n: int = 50) -> dict:
    return {"value": value, "ci_low": low, "ci_high": high, "n": n}


NARROW_RESULTS = {
    "results": {"mmlu_sample": {
        "accuracy": {"acc": ci(0.31, 0.2, 0.45), "acc_norm": ci(0.33, 0.21, 0.47)},
        "brittleness": {f"acc[options_rot{i}]": ci(0.25 + i / 100, 0.1234, 0.3999) for i in range(1, 4)}}},
    "details": {"mmlu_sample": {"brittleness": {"scoring": "acc", "variants": [
        {"variant": f"options_rot{i}", "acc": ci(0.3, 0.2, 0.4), "flip_rate": ci(0.5, 0.4, 0.6),
         "delta": ci(-0.05, -0.1, 0.01), "mcnemar_p_acc": 0.0312} for i in range(1, 4)]}}},
}


def printed_at(width: int, tables) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    for table in tables:
        console.print(table)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 60])
def test_result_tables_fit_a_narrow_console_whole(width):
    from llmassay.report.table import details_tables, metrics_table

    text = printed_at(width, [*metrics_table(NARROW_RESULTS, "llamacpp/smollm2-135m", width),
                              *details_tables(NARROW_RESULTS, width)])
    assert max(map(len, text.splitlines())) <= width and "…" not in text
    for i in range(1, 4):  # each name whole on one line: three rows are told apart
        assert f"acc[options_rot{i}]" in text and f"{0.25 + i / 100:.4f}" in text
    assert text.count("[0.1234, 0.3999]") == 3 and "[0.2000, 0.4500]" in text
    assert text.count("0.5000 [0.4000, 0.6000]") == 3 and text.count("-0.0500 [-0.1000, 0.0100]") == 3
    assert text.count("0.0312") == 3


def test_a_wide_console_keeps_one_table():
    from llmassay.report.table import metrics_table

    (table,) = metrics_table(NARROW_RESULTS, "m", 200)
    assert [c.header.plain for c in table.columns] == ["task", "probe", "metric", "value", "95% CI", "n"]


# -- item 8: small things ------------------------------------------------------------------
def test_version_flag(capsys):
    from llmassay import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"llmassay {__version__}"


@pytest.mark.parametrize("args,says", [
    ("n_ctx=abc", "--model-args n_ctx=abc: llamacpp expects an integer for n_ctx"),
    ("prefix_reuse=maybe", "--model-args prefix_reuse=maybe: llamacpp expects true or false for prefix_reuse"),
    ("n_threads=2.5", "--model-args n_threads=2.5: llamacpp expects an integer for n_threads"),
])
def test_a_model_arg_of_the_wrong_type_is_named(tmp_path, capsys, args, says):
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--model-args", args, "--tasks", "arith_sample",
                 "--output-path", str(tmp_path / "o")])
    assert code == 2 and capsys.readouterr().err.strip() == f"error: {says}"


def test_openai_model_args_are_checked_too():
    from llmassay.backends.base import load_backend

    with pytest.raises(LlmassayError, match="--model-args timeout=soon: openai expects a number for timeout"):
        load_backend("openai/m", base_url="http://127.0.0.1:9/v1", timeout="soon")
    assert load_backend("openai/m", base_url="http://127.0.0.1:9/v1", timeout=5, repeat_penalty=None).model == "m"


@pytest.fixture(scope="module")
def broken_ggufs(tmp_path_factory) -> dict[str, Path]:
    """Three files a user may hold: a cut download, a cut header, an HTML page."""
    from llmassay.models import resolve_model_path

    root = tmp_path_factory.mktemp("gguf")
    with resolve_model_path("smollm2-135m").open("rb") as handle:
        head = handle.read(2_000_000)
    files = {"cut": head, "header": head[:300], "html": b"<!DOCTYPE html><p>404</p>", "empty": b""}
    for name, data in files.items():
        (root / f"{name}.gguf").write_bytes(data)
    return {name: root / f"{name}.gguf" for name in files}


@pytest.mark.parametrize("which,says", [
    ("cut", "is a truncated GGUF file: its tensors need 98,362,432 bytes, the file has 2,000,000 "
            "(96,362,432 missing; an interrupted download?)"),
    ("header", "is a truncated GGUF file: its header ends early, at byte 300"),
    ("html", "is not a GGUF file (it starts with b'<!DO', not b'GGUF'; a download error page or another format?)"),
    ("empty", "is empty, not a GGUF file"),
])
def test_a_broken_gguf_is_named_before_llama_cpp_sees_it(broken_ggufs, tmp_path, capsys, which, says):
    path = broken_ggufs[which]
    code = main(["run", "--model", f"llamacpp/{path}", "--tasks", "arith_sample", "--output-path", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: model '{path}': {path} {says}") and "\n" not in err


def test_whole_ggufs_pass_the_check():
    from llmassay.backends._gguf_check import check_gguf
    from llmassay.models import resolve_model_path

    for name in ("smollm2-135m", "gemma3-270m"):
        check_gguf(resolve_model_path(name), name)  # raises on a problem


# -- item 7: the sample browser shows what matters -------------------------------------------
def test_brittleness_rows_show_the_picked_label_and_the_right_one_per_variant():
    from llmassay.report.section import SectionContext
    from llmassay.report.sections.brittleness import browser_rows

    variant = {"prompt": "Q?\nA. x\nB. y\nC. z\nD. w\nAnswer:", "choices": [" A", " B", " C", " D"],
               "order": [1, 2, 3, 0], "loglikelihoods": [-3.0, -1.0, -2.0, -4.0], "pred_slot": 1, "pred": 2,
               "correct": False}
    generated = {**variant, "generation": " B", "pred_slot": 1}
    rows = [{"id": "q1", "target": 3, "variants": {"canonical": variant, "options_rot1": generated}}]
    out = browser_rows(SectionContext("t", "brittleness", {}, {}, rows))
    assert [(r.variant, r.output, r.gold) for r in out] == [
        ("canonical", "picked 'B' (slot 1) = option 2", "'C' = option 3"),  # option 3 is shown in slot 2
        ("options_rot1", "' B' → picked 'B' (slot 1) = option 2", "'C' = option 3"),
    ]


def test_generation_and_choice_rows_carry_their_gold():
    from llmassay.report.sections.generic import gold_text

    assert gold_text({"generation": "8", "target": "7"}) == "7"
    assert gold_text({"choices": [" Paris", " Rome"], "target": 1}) == "Rome (choice 1)"
    assert gold_text({"target": {"name": "Ada"}}) == '{"name": "Ada"}'
    assert gold_text({"id": 1}) == ""


@pytest.mark.parametrize("engine,says", [
    ({"tokens": 0, "computed": 0, "cache_hits": 120, "tokens_evaluated_by_backend": 944},
     "none computed: every answer (120) came from the cache; the backend evaluated 944 "
     "(checks outside the counted requests included)"),
    ({"tokens": 2672, "computed": 32, "cache_hits": 0, "tokens_evaluated_by_backend": 580},
     "2,672 in 32 computed requests; 580 evaluated after prefix reuse"),
    ({"tokens": 1336, "computed": 16, "cache_hits": 16, "tokens_evaluated_by_backend": None},
     "1,336 in 16 computed requests (16 cached answers cost none)"),
])
def test_the_token_line_explains_a_cached_run(engine, says):
    from llmassay.report.table import token_line

    assert token_line(engine) == says


def test_structured_instruction_names_are_whole():
    import json as _json

    from llmassay.probes.structured import INSTRUCTIONS

    stored = _json.loads((Path(__file__).parent / "data" / "regression" / "structured.json").read_text())
    shown = {r["wording"]: r["instruction"] for r in stored["details"]["json_sample"]["instructions"]}
    assert shown and all(text == INSTRUCTIONS[int(k)].split("\n")[0] for k, text in shown.items())
    assert any(len(text) > 60 for text in shown.values())  # the old cut at 60 characters is gone


def scripted_brittleness_run(root: Path) -> tuple[Path, Path]:
    """Two runs on scripted backends, their results files: brittleness on position-biased
    choices (rotations flip answers) and arithmetic generation answered by rule."""
    from fakes import position_bias_backend

    mmlu = evaluate(RunConfig(model="test/position", tasks=["mmlu_sample"], probes=["accuracy", "brittleness"],
                              limit=12, output_path=str(root / "mmlu"), use_cache=False,
                              probe_options={"brittleness.perturbations": "options_rot1,options_rot2,labels_numeric"}),
                    backend=position_bias_backend(slot=0))
    arith = evaluate(RunConfig(model="test/rule", tasks=["arith_sample"], limit=6, output_path=str(root / "arith"),
                               use_cache=False), backend=AnsweringBackend())
    return mmlu.results_path, arith.results_path


def test_the_report_labels_mcnemar_and_keeps_the_spread_ci_non_negative(tmp_path):
    from llmassay.report.html import build_report
    from llmassay.report.rundir import load_run

    first, second = scripted_brittleness_run(tmp_path)
    run = load_run(first)
    spread = run.results["results"]["mmlu_sample"]["brittleness"]["spread"]
    assert 0.0 <= spread["ci_low"] <= spread["value"] <= spread["ci_high"]
    html = build_report(run)
    assert "McNemar p (accuracy vs canonical)" in html and ">mcnemar_p<" not in html
    rows = json.loads(re.search(r'id="llmassay-samples">(.*?)</script>', html, re.S).group(1))
    brittle = [r for r in rows if r["p"] == "brittleness"]
    assert len(brittle) == 12 * 4
    for r in brittle:  # the position-biased backend always picks slot 0
        assert re.fullmatch(r"picked '(A|1)' \(slot 0\) = option [0-3]", r["out"]), r["out"]
        assert re.fullmatch(r"'[A-D1-4]' = option [0-3]", r["g"]) and (r["c"] is True) == (r["g"][1] in "A1"), r
    arith = load_run(second)
    gen = json.loads(re.search(r'id="llmassay-samples">(.*?)</script>', build_report(arith), re.S).group(1))
    assert [r["g"] for r in gen] == [row["target"] for row in arith.samples["arith_sample"]]
    assert all(r["g"] for r in gen)


# -- item 9: a large run's samples travel gzipped inside the one file -------------------------
def test_large_sample_sets_are_embedded_gzipped_and_round_trip(tmp_path, monkeypatch):
    import base64
    import gzip

    import llmassay.report.html as report_html
    from llmassay.report.html import build_report, embedded_samples
    from llmassay.report.rundir import load_run

    rows = [{"id": str(i), "prompt": "Question: <b>2+2</b>?\nAnswer:" * 20, "out": "4", "v": f"variant_{i % 14}"}
            for i in range(700)]
    small = embedded_samples(rows[:3])
    assert small["kind"] == "json" and json.loads(str(small["text"])) == rows[:3]
    packed = embedded_samples(rows, inline_limit=10_000)
    assert packed["kind"] == "gzip" and packed["rows"] == 700
    assert json.loads(gzip.decompress(base64.b64decode(str(packed["text"])))) == rows
    assert len(str(packed["text"])) * 10 < len(json.dumps(rows))  # repeated prompts shrink > 10×
    assert set(str(packed["text"])) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

    first, _ = scripted_brittleness_run(tmp_path)
    plain = build_report(load_run(first))
    monkeypatch.setattr(report_html, "INLINE_LIMIT", 1000)
    html = build_report(load_run(first))
    assert 'id="llmassay-samples"' in plain and 'id="llmassay-samples-gzip" data-rows="60"' in html
    assert 'id="llmassay-samples"' not in html and len(html) < len(plain)


# -- item 8: plain multiple-choice files can show their options ------------------------------
def test_a_plain_mc_file_renders_cloze_by_default_and_lettered_on_request(tmp_path):
    from llmassay.tasks.loader import load_task

    path = tmp_path / "mc.jsonl"
    path.write_text('{"question": "Capital of France?", "choices": ["Rome", "Paris", "Oslo"], "answer": 1}\n'
                    '{"question": "2+2?", "choices": ["3", "4"], "answer": "4"}\n', encoding="utf-8")
    cloze, lettered = load_task(str(path)), load_task(str(path), mc_format="lettered")
    assert [(s.prompt, s.choices, s.target) for s in cloze.samples] == [
        ("Question: Capital of France?\nAnswer:", ["Rome", "Paris", "Oslo"], 1), ("Question: 2+2?\nAnswer:", ["3", "4"], 1)]
    assert [(s.prompt, s.choices, s.target) for s in lettered.samples] == [
        ("Capital of France?\nA. Rome\nB. Paris\nC. Oslo\nAnswer:", ["A", "B", "C"], 1),
        ("2+2?\nA. 3\nB. 4\nAnswer:", ["A", "B"], 1)]
    assert cloze.content_hash != lettered.content_hash  # cache and resume keys tell them apart


def test_lettered_is_scored_on_the_letters_and_refused_for_a_yaml_task(tmp_path, capsys):
    from fakes import answer_key_backend

    path = tmp_path / "mc.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "choices": ["x", "y", "z"], "answer": i % 3}) + "\n"
                            for i in range(6)), encoding="utf-8")
    # answers every second item with its right letter, the others with a wrong one: 3/6 on the letters
    key = {f"q{i}": "ABC"[(i + i % 2) % 3] for i in range(6)}
    backend = answer_key_backend(lambda prompt: key[prompt.split("\n")[0]])
    done = evaluate(RunConfig(model="test/key", tasks=[str(path)], mc_format="lettered", use_cache=False,
                              output_path=str(tmp_path / "o"), metrics=["acc"]), backend=backend)
    assert done.results["results"]["mc"]["accuracy"]["acc"]["value"] == pytest.approx(0.5)
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--tasks", "mmlu_sample", "--mc-format", "lettered",
                 "--output-path", str(tmp_path / "p")])
    assert code == 2 and capsys.readouterr().err.strip() == (
        "error: --mc-format applies to plain .jsonl/.csv files; task 'mmlu_sample' has its own prompt "
        "(doc_to_text in its YAML)")
