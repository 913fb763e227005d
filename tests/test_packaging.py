"""Dependencies (issue #38): the core installs without a compiler and runs a probe against the
scripted OpenAI server with llama-cpp-python absent; llama.cpp is an extra whose absence is a
one-line error naming it; torch is one range, stated once; the dropped packages stay dropped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
NO_LLAMA = [sys.executable, str(ROOT / "tests" / "no_llama.py")]
# Core dependencies, each with wheels for every platform (pure Python or binary wheels): a new one
# is a deliberate change here. llama-cpp-python, the one that compiles, is only in extras.
WHEEL_ONLY_CORE = {"httpx", "rich", "jinja2", "pyyaml", "numpy", "jsonschema", "json-repair"}
BUILDS_FROM_SOURCE = {"llama-cpp-python"}


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11 reads pyproject.toml")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(req: str) -> str:
    return re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower()


def test_the_core_needs_no_compiler_and_llama_cpp_is_an_extra():
    project = _project()
    core = {_name(r) for r in project["dependencies"]}
    assert core == WHEEL_ONLY_CORE and not core & BUILDS_FROM_SOURCE
    assert "jsonschema[format-nongpl]>=4.18" in project["dependencies"]  # formats are checked (test_schema_formats)
    extras = project["optional-dependencies"]
    pins = {e: r for e, reqs in extras.items() for r in reqs if _name(r) == "llama-cpp-python"}
    assert pins["llamacpp"] == "llama-cpp-python==0.3.36"
    assert all("==" not in r for e, r in pins.items() if e != "llamacpp")  # the pin is stated once
    assert "llmassay[llamacpp]" in extras["server"]


def test_the_pinned_llama_cpp_is_the_one_the_adapter_was_tested_on():
    from llmassay.backends.llama_internals import TESTED_VERSIONS

    pin = next(r for r in _project()["optional-dependencies"]["llamacpp"] if _name(r) == "llama-cpp-python")
    assert pin.split("==")[1] == TESTED_VERSIONS[0]
    script = (ROOT / "scripts" / "install.sh").read_text()
    assert "0.3.36" not in script  # install.sh reads the pin from pyproject.toml


def test_torch_is_one_range_stated_once_and_dropped_packages_stay_dropped():
    extras = _project()["optional-dependencies"]
    torch = [(e, r) for e, reqs in extras.items() for r in reqs if _name(r) == "torch"]
    assert torch == [("torch", "torch>=2.4,<3")]
    assert "llmassay[torch]" in extras["hf"] and "llmassay[torch]" in extras["facts"]  # sentence-transformers
    every = {_name(r) for reqs in extras.values() for r in reqs} | {_name(r) for r in _project()["dependencies"]}
    assert not every & {"scikit-learn", "alt-profanity-check", "joblib"}
    assert "pydantic" not in {_name(r) for r in _project()["dependencies"]} and "pydantic>=2.5" in extras["judge"]


def test_pydantic_is_imported_only_by_the_review_app():
    users = sorted(str(p.relative_to(ROOT / "src")) for p in (ROOT / "src").rglob("*.py")
                   if re.search(r"^\s*(from|import) pydantic", p.read_text(), re.M))
    assert users == ["llmassay/review/app.py"]


def test_only_the_adapter_imports_llama_cpp_or_touches_its_internals():
    pattern = re.compile(r"^\s*(import llama_cpp|from llama_cpp)|\._ctx\b|\._batch\b|\._model\.vocab|llama_cpp\.llama_cpp",
                         re.M)
    users = sorted(str(p.relative_to(ROOT / "src")) for p in (ROOT / "src").rglob("*.py") if pattern.search(p.read_text()))
    assert users == ["llmassay/backends/llama_internals.py"]


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "LLMASSAY_HOME": str(tmp_path / "home")}
    return subprocess.run([*NO_LLAMA, *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


def test_an_openai_probe_runs_with_llama_cpp_unimportable(tmp_path):
    """The structured probe with every mode, constrained included (its enforced schema is
    computed without llama.cpp's grammar converter), against the scripted server."""
    with FakeOpenAI() as fake:
        fake.chat_content = '{"name": "Ann"}'
        out = _run(["run", "--model", "openai/m", "--model-args", f"base_url={fake.base_url}", "--tasks",
                    "json_sample", "--probe", "structured", "--limit", "2", "-P", "structured.instructions=0",
                    "--output-path", str(tmp_path / "o"), "--cache-path", str(tmp_path / "c.sqlite")], tmp_path)
        constrained = [r for r in fake.requests if "response_format" in r["body"]]
    assert out.returncode == 0, out.stderr[-2000:]
    (results,) = (tmp_path / "o").glob("results_*.json")
    doc = json.loads(results.read_text())
    assert len(constrained) == 2 and "schema_valid[constrained]" in json.dumps(doc)
    assert doc["environment"]["llama_cpp_system_info"] is None
    # The only attempt is the environment block's optional llama.cpp system info (None above).
    assert set(re.findall(r"refused: (\S+)", out.stderr)) == {"llama_cpp"}


@pytest.mark.parametrize("args", [["--help"], ["probes"], ["audit", "--help"], ["tasks"]])
def test_the_cli_works_with_llama_cpp_unimportable(tmp_path, args):
    out = _run(args, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_a_llamacpp_model_without_the_extra_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    """In-process (a None entry in sys.modules makes `import llama_cpp` fail): the error comes
    before any model file is read."""
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.cli import main
    from llmassay.types import LlmassayError

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(LlmassayError, match=re.escape("pip install 'llmassay[llamacpp]'")):
        LlamaCppBackend("smollm2-135m")
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--tasks", "arith_sample", "--limit", "1",
                 "--output-path", str(tmp_path / "o"), "--cache-path", str(tmp_path / "c.sqlite")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "\n" not in err, err
    assert err.startswith("error: ") and err.endswith("pip install 'llmassay[llamacpp]'")
