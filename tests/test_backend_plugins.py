"""The backend contract: a backend from another package plugs in through the
`llmassay.backends` entry-point group and runs from the command line as `--model KIND/NAME`
with no edit to llmassay; a plug-in that clashes with a built-in, is declared twice, fails
to import or misses a method is refused in one line naming its package."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from llmassay.backends.base import backend_targets, load_backend, split_model_spec
from llmassay.types import LlmassayError

TOY_BACKEND = '''
"""A backend that lives in another package: it does the arithmetic of arith_sample."""
import re
import time

from llmassay.types import Generation, LoglikelihoodResult


class ToyBackend:
    def __init__(self, model: str, offset: int = 0) -> None:
        self.name = f"toy/{model}"
        self.offset = offset

    def generate(self, reqs):
        out = []
        for r in reqs:
            expr = re.findall(r"Calculate (.+?)\\.\\n", r.prompt + "\\n")[-1]  # the last question
            assert set(expr) <= set("0123456789+-*/() ")
            value = int(eval(expr)) + self.offset  # noqa: S307 - digits and operators only
            start = time.perf_counter()
            out.append(Generation(f" {value}", len(r.prompt.split()), 1, "stop", time.perf_counter() - start))
        return out

    def loglikelihood(self, reqs):
        return [LoglikelihoodResult(-float(len(r.continuation)), False, 1, 1) for r in reqs]

    def tokenize(self, text):
        return list(text.encode())

    def fingerprint(self):
        return {"backend": self.name, "offset": self.offset, "toy_version": 1}
'''


def _install(site: Path, package: str, module: str, code: str, entry_points: str) -> None:
    """A separately 'installed' package: its module and a dist-info with the entry points,
    as `pip install --target` would leave it."""
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[llmassay.backends]\n{entry_points}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture
def toy_package(site: Path) -> Path:
    _install(site, "toybackend", "toybackend", TOY_BACKEND, "toy = toybackend:ToyBackend")
    return site


def cli(*argv: str) -> int:
    from llmassay.cli import main

    return main(list(argv))


def _results(folder: Path) -> tuple[dict, list[dict]]:
    results = json.loads(next(folder.glob("results_*.json")).read_text())
    rows = [json.loads(line) for line in next(folder.glob("samples_*.jsonl")).read_text().splitlines()]
    return results, rows


def test_a_backend_from_another_package_runs_from_the_command_line(tmp_path, toy_package):
    assert backend_targets()["toy"] == "toybackend:ToyBackend"
    common = ("--tasks", "arith_sample", "--limit", "3", "--cache-path", str(tmp_path / "cache.sqlite"))
    assert cli("run", "--model", "toy/x", "--output-path", str(tmp_path / "right"), *common) == 0
    results, rows = _results(tmp_path / "right")
    exact = results["results"]["arith_sample"]["accuracy"]["exact_match"]
    assert (exact["value"], exact["n"]) == (1.0, 3)
    assert [r["generation"].strip() for r in rows] == [r["target"] for r in rows] == ["-1", "0", "44"]
    assert results["model"]["spec"] == "toy/x"
    assert results["model"]["fingerprint"] == {"backend": "toy/x", "offset": 0, "toy_version": 1}

    # its typed model args are checked like a built-in's, and reach the constructor
    assert cli("run", "--model", "toy/x", "--model-args", "offset=1", "--output-path", str(tmp_path / "wrong"),
               *common) == 0
    results, rows = _results(tmp_path / "wrong")
    assert results["results"]["arith_sample"]["accuracy"]["exact_match"]["value"] == 0.0
    assert [r["generation"].strip() for r in rows] == ["0", "1", "45"]
    with pytest.raises(LlmassayError, match="^--model-args offset=abc: toy expects an integer for offset$"):
        load_backend("toy/x", offset="abc")


def _one_line_error(capsys, *argv: str) -> str:
    assert cli("run", *argv, "--tasks", "arith_sample", "--limit", "1", "--no-cache") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_a_plugin_taking_a_builtin_name_is_refused_naming_its_package(tmp_path, site, capsys):
    _install(site, "rogue-backends", "rogue", TOY_BACKEND, "hf = rogue:ToyBackend\ntoy2 = rogue:ToyBackend")
    err = _one_line_error(capsys, "--model", "hf/some-model", "--output-path", str(tmp_path / "o"))
    assert err == ("error: --model 'hf/some-model': backend 'hf' is built into llmassay, and the plug-in package "
                   "rogue-backends 0.1 declares it too (entry point hf = rogue:ToyBackend): rename the plug-in's "
                   "entry point or uninstall it")
    assert split_model_spec("llamacpp/m") == ("llamacpp", "m")  # other kinds are unaffected
    assert split_model_spec("toy2/m") == ("toy2", "m")  # and so are the package's other kinds


def test_a_kind_declared_by_two_packages_is_refused_naming_both(tmp_path, site, capsys):
    _install(site, "toy-one", "toy_one", TOY_BACKEND, "toy = toy_one:ToyBackend")
    _install(site, "toy-two", "toy_two", TOY_BACKEND, "toy = toy_two:ToyBackend")
    err = _one_line_error(capsys, "--model", "toy/x", "--output-path", str(tmp_path / "o"))
    assert "backend 'toy' is declared by two plug-in packages" in err
    assert "toy-one 0.1" in err and "toy-two 0.1" in err


def test_a_plugin_that_fails_to_import_is_one_line_naming_its_package(tmp_path, site, capsys):
    _install(site, "vllm-llmassay", "vllm_llmassay", "import vllm_is_not_installed\n",
             "vllm = vllm_llmassay:VLLMBackend")
    err = _one_line_error(capsys, "--model", "vllm/meta-llama/Llama-3-8B", "--output-path", str(tmp_path / "o"))
    assert err == ("error: backend 'vllm' (plug-in package vllm-llmassay 0.1, entry point vllm = "
                   "vllm_llmassay:VLLMBackend) cannot be imported: ModuleNotFoundError: No module named "
                   "'vllm_is_not_installed'")
    # any exception raised while importing, and a missing attribute, are one line too
    _install(site, "broken", "broken_backend", "raise RuntimeError('needs CUDA')\n", "broken = broken_backend:B")
    assert "(plug-in package broken 0.1" in _one_line_error(capsys, "--model", "broken/x")
    _install(site, "noattr", "noattr_backend", "X = 1\n", "noattr = noattr_backend:Missing")
    assert _one_line_error(capsys, "--model", "noattr/x").endswith("module noattr_backend has no callable Missing")


def test_a_plugin_missing_part_of_the_contract_is_refused_before_any_request(tmp_path, site, capsys):
    partial = TOY_BACKEND.replace("def fingerprint(self):", "def _fingerprint(self):")
    _install(site, "partial", "partial_backend", partial, "partial = partial_backend:ToyBackend")
    err = _one_line_error(capsys, "--model", "partial/x", "--output-path", str(tmp_path / "o"))
    assert err == ("error: --model 'partial/x': ToyBackend from partial_backend is not a backend (lacks fingerprint; "
                   "see llmassay.backends.base)")
