"""A user's `lm_eval …` command line runs as `llmassay run …`: lm-eval's spellings, model
types, fractional --limit, --gen_kwargs, --device, --apply_chat_template and --log_samples
map onto llmassay's settings; what cannot be mapped is a one-line usage error (exit 2)."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest

import llmassay.evaluation
from fake_openai import FakeOpenAI
from fakes import RuleBackend, knows_everything
from llmassay.cli import main
from llmassay.tasks.loader import load_task


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture()
def loaded(monkeypatch):
    """load_executor replaced by a scripted backend; what it was asked to load is recorded."""
    asked: list[tuple] = []

    def load(executor, model, model_args, workers):
        asked.append((model, dict(model_args)))
        return RuleBackend(knows_everything)

    monkeypatch.setattr(llmassay.evaluation, "load_executor", load)
    return asked


def results(out: Path) -> dict:
    return json.loads(max(out.glob("results_*.json")).read_text())


def rows(out: Path, task: str) -> list[dict]:
    (path,) = out.glob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def lm_eval(command: str) -> int:
    """`lm_eval ARGS` run as `llmassay run ARGS`."""
    argv = shlex.split(command)
    assert argv[0] == "lm_eval"
    return main(["run", *argv[1:]])


def test_an_lm_eval_command_line_against_a_server_runs_unchanged(fake, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache.sqlite"
    code = lm_eval(
        f"lm_eval --model local-completions --model_args model=fake,base_url={fake.base_url}/completions,"
        "num_concurrent=2,max_retries=1,tokenized_requests=False --tasks arith_sample,mmlu_sample "
        f"--num_fewshot 0 --batch_size auto --limit 0.1 --gen_kwargs temperature=0,max_gen_toks=8 "
        f"--output_path {out} --log_samples --use_cache {cache} --seed 0"
    )
    err = capsys.readouterr().err
    assert code == 0, err
    doc = results(out)
    assert doc["model"]["spec"] == "openai/fake"
    assert doc["config"]["model_args"] == {"concurrency": 2, "max_retries": 1, "base_url": fake.base_url}
    assert "model args tokenized_requests ignored" in err  # said, not silently dropped
    for task in ("arith_sample", "mmlu_sample"):  # 10 % of each task, rounded up, as lm-eval
        n = len(load_task(task).samples)
        assert len(rows(out, task)) == math.ceil(0.1 * n) < n
    generated = [r["body"] for r in fake.requests if r["path"].endswith("/completions") and not r["body"].get("echo")]
    assert generated and {b["max_tokens"] for b in generated} == {8}  # --gen_kwargs max_gen_toks
    assert {b["temperature"] for b in generated} == {0.0}
    assert cache.exists()  # --use_cache is the cache file


def test_hf_with_pretrained_is_hf_slash_dir_and_device_is_a_model_arg(loaded, tmp_path):
    out = tmp_path / "o"
    assert lm_eval(f"lm_eval --model hf --model_args pretrained=/models/tiny,dtype=float32 --device cuda:0 "
                   f"--tasks mmlu_sample --limit 3 --batch_size 8 --output_path {out} --use_cache {tmp_path / 'c'}") == 0
    assert loaded == [("hf//models/tiny", {"dtype": "float32", "device": "cuda:0"})]
    doc = results(out)
    assert doc["model"]["spec"] == "hf//models/tiny" and doc["config"]["limit"] == 3 and len(rows(out, "mmlu_sample")) == 3


def test_the_json_form_of_model_args_and_gguf_servers(loaded, tmp_path, capsys):
    common = ["--tasks", "mmlu_sample", "--limit", "1", "--no-cache"]
    assert main(["run", "--model", "hf", "--model_args", '{"pretrained": "/m", "batch_size": 4}', *common,
                 "--output-path", str(tmp_path / "a")]) == 0
    assert main(["run", "--model", "gguf", "--model_args", "base_url=http://host:8080/", *common,
                 "--output-path", str(tmp_path / "b")]) == 0
    assert loaded == [("hf//m", {"batch_size": 4}), ("openai/gguf", {"base_url": "http://host:8080/v1"})]
    assert main(["run", "--model", "hf", "--model_args", "pretrained=/m,token=hf_SECRET", *common,
                 "--output-path", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "--model hf runs as --model hf//m --model-args token=[redacted]" in err and "hf_SECRET" not in err


@pytest.mark.parametrize("argv,says", [
    (["--model", "vllm", "--model_args", "pretrained=x"],
     "--model vllm: expected KIND/NAME (llamacpp/FILE.gguf, hf/DIR, openai/MODEL) or one of lm-eval's model types "
     "hf, hf-auto, huggingface, local-completions"),
    (["--model", "hf", "--model_args", "dtype=float16"], "--model hf: give the model as --model_args pretrained=DIR"),
    (["--model", "openai-chat-completions"], "give the served model as --model_args model=NAME,base_url=URL"),
    (["--model", "gguf"], "--model gguf: give the llama.cpp server as --model_args base_url=URL"),
    (["--model", "local-completions", "--model_args", "model=m,base_url=http://h/v1,auth_token=SECRET-123"],
     "--model_args auth_token: a key on the command line shows in ps and shell history"),
    (["--model", "hf/x", "--model_args", "{broken"], "--model-args: not valid JSON"),
    (["--model", "hf/x", "--model_args", "device=cpu", "--device", "cuda"], "--device cuda and --model-args device=cpu disagree"),
    (["--model", "hf/x", "--gen_kwargs", "top_p=0.9,top_k=5,temperature=0"],
     "--gen_kwargs: top_p, top_k not supported (supported: temperature, max_gen_toks, until, do_sample)"),
    (["--model", "hf/x", "--gen_kwargs", "do_sample=true"], "do_sample=true: give temperature=T > 0 as well"),
    (["--model", "hf/x", "--gen_kwargs", "do_sample=false,temperature=0.7"], "do_sample=false and temperature=0.7 disagree"),
    (["--model", "hf/x", "--gen_kwargs", "temperature=0.5", "--temperature", "0.2"], "disagree: give one"),
    (["--model", "hf/x", "--gen_kwargs", "max_gen_toks=0"], "max_gen_toks must be a positive integer"),
    (["--model", "hf/x", "--apply_chat_template", "chatml"], "--apply_chat_template chatml: a named template is not supported"),
    (["--model", "hf/x", "--apply_chat_template", "--probe", "brittleness"], "--probe has no accuracy"),
    (["--model", "hf/x", "--output_path", "out/results.json"], "names a folder for the run's files"),
])
def test_what_cannot_be_mapped_is_one_usage_line(loaded, tmp_path, capsys, argv, says):
    assert main(["run", "--tasks", "arith_sample", "--limit", "1", "--no-cache", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and "\n" not in err, err
    assert "SECRET-123" not in err
    assert loaded == []  # refused before any model loads


def test_an_unknown_lm_eval_flag_is_an_argparse_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--model", "hf/x", "--tasks", "arith_sample", "--wandb_args", "project=x"])
    assert exit_.value.code == 2 and "unrecognized arguments: --wandb_args" in capsys.readouterr().err


def test_apply_chat_template_sends_the_bare_prompt_through_the_chat_route(fake, tmp_path):
    for model, extra in (("local-completions", ["--apply_chat_template"]), ("local-chat-completions", [])):
        before = len(fake.requests)
        out = tmp_path / model
        assert main(["run", "--model", model, "--model_args", f"model=fake,base_url={fake.base_url}",
                     "--tasks", "arith_sample", "--limit", "2", "--output_path", str(out), "--no-cache", *extra]) == 0
        sent = fake.requests[before:]
        chats = [r["body"] for r in sent if r["path"].endswith("/chat/completions")]
        assert len(chats) == 2 and not [r for r in sent if r["path"].endswith("/v1/completions")]
        prompts = {r["prompt"] for r in rows(out, "arith_sample")}
        assert {c["messages"][-1]["content"] for c in chats} == prompts  # bare: no answer-format line added
        assert results(out)["probes"]["accuracy"]["options"]["chat_template"] == "on"


def test_without_apply_chat_template_a_completions_model_gets_raw_prompts(fake, tmp_path):
    before = len(fake.requests)
    assert main(["run", "--model", "local-completions", "--model_args", f"model=fake,base_url={fake.base_url}",
                 "--tasks", "arith_sample", "--limit", "2", "--output_path", str(tmp_path / "o"), "--no-cache"]) == 0
    assert not [r for r in fake.requests[before:] if r["path"].endswith("/chat/completions")]


def test_gen_kwargs_until_and_max_gen_toks_change_the_resume_key(loaded, tmp_path):
    """A run with other generation settings must not resume rows made with the old ones."""
    out = tmp_path / "o"
    base = ["run", "--model", "hf/x", "--tasks", "arith_sample", "--limit", "2", "--output-path", str(out), "--no-cache"]
    assert main(base) == 0
    assert main([*base, "--gen_kwargs", '{"until": ["\\n", "Q:"], "max_gen_toks": 5}']) == 0
    progress = list((out / ".llmassay").rglob("*.jsonl"))
    assert len(progress) == 2  # two resume keys, two progress logs
    from llmassay.evaluation import RunConfig

    cfg = RunConfig(model="m", tasks=["t"], generation_kwargs={"max_gen_toks": 5})
    assert cfg.result_affecting()["generation_kwargs"] == {"max_gen_toks": 5}
    assert "generation_kwargs" not in RunConfig(model="m", tasks=["t"]).result_affecting()  # old hashes kept


def test_log_samples_is_accepted_and_changes_nothing(loaded, tmp_path):
    for name, extra in (("a", []), ("b", ["--log_samples"]), ("c", ["-s"])):
        assert main(["run", "--model", "hf/x", "--tasks", "mmlu_sample", "--limit", "2", "--no-cache",
                     "--output-path", str(tmp_path / name), *extra]) == 0
    assert rows(tmp_path / "a", "mmlu_sample") == rows(tmp_path / "b", "mmlu_sample") == rows(tmp_path / "c", "mmlu_sample")


@pytest.mark.parametrize("limit,n,expected", [(0.1, 25, 3), (0.5, 3, 2), (0.01, 10, 1), (3, 10, 3), (2.0, 10, 2)])
def test_a_fractional_limit_is_a_share_of_each_task_rounded_up(limit, n, expected):
    from llmassay.cli.lmeval_args import limit_value
    from llmassay.evaluation import sample_count

    assert sample_count(limit_value(str(limit)), n) == expected
    assert sample_count(None, n) is None


def test_lm_eval_short_flags_and_underscore_spellings_parse_to_the_same_settings():
    from llmassay.cli.app import _build_parser

    parse = _build_parser().parse_args
    dashed = parse(["run", "--model", "hf/x", "--model-args", "a=1", "--tasks", "t", "--num-fewshot", "2",
                    "--output-path", "o", "--batch-size", "4", "--limit", "5", "--include-path", "d"])
    lm = parse(["run", "-m", "hf/x", "-a", "a=1", "-t", "t", "-f", "2", "-o", "o", "-b", "4", "-L", "5",
                "--include_path", "d"])
    keys = ("model", "model_args", "tasks", "num_fewshot", "output_path", "batch_size", "limit", "include_path")
    assert {k: getattr(dashed, k) for k in keys} == {k: getattr(lm, k) for k in keys}
    assert parse(["run", "--model", "m/x", "--tasks", "t", "--batch_size", "auto:4"]).batch_size == 64
