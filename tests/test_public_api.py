"""The package root as a user meets it: `from llmassay import …` gives the documented
objects whatever was imported before, type checkers see the same names, and the version
the CLI prints is the one the built distribution carries."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

import llmassay
from llmassay.cli import main

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(llmassay.__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter that sees this source tree and tests/fakes.py."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_evaluate_from_the_package_is_the_function_after_the_cli_modules_load(tmp_path):
    """#37: `from llmassay import RunConfig, evaluate` bound the *module* llmassay.evaluate
    ('module' object is not callable) because an export and a submodule shared the name."""
    code = f"""
import llmassay.cli.app, llmassay.cli.run, llmassay.cli.lmeval, llmassay.assess  # assess imports the run loop module
from llmassay import RunConfig, evaluate
from fakes import answer_key_backend
from llmassay.tasks.loader import load_task
key = {{s.prompt: "ABCD"[int(s.target)] for s in load_task("mmlu_sample").samples[:4]}}
backend = answer_key_backend(lambda prompt: next((v for k, v in key.items() if k in prompt), None))
cfg = RunConfig(model="test/x", tasks=["mmlu_sample"], limit=4, output_path={str(tmp_path / "run")!r}, use_cache=False)
acc = evaluate(cfg, backend=backend).results["results"]["mmlu_sample"]["accuracy"]["acc"]
print(acc["value"], acc["n"])
"""
    done = _python(code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1.0", "4"]  # the planted key's answers, all four scored


def test_no_public_name_is_also_a_module_of_the_package_that_exports_it():
    """The import system binds a submodule over its package's attribute of the same name
    once it is imported: an export must never share its name with a submodule."""
    clashes = []
    for package in sorted({"llmassay", *llmassay._EXPORTS.values()}):
        module = importlib.import_module(package)
        if not hasattr(module, "__path__"):
            continue
        submodules = {m.name for m in pkgutil.iter_modules(module.__path__)}
        public = set(llmassay.__all__) if package == "llmassay" else {
            n for n, m in llmassay._EXPORTS.items() if m == package}
        clashes += [f"{package}.{n}" for n in sorted(public & submodules)]
    assert clashes == []


def test_every_export_resolves_to_its_object_not_a_module():
    for module in sorted(set(llmassay._EXPORTS.values())):  # load everything first, as a long session would
        importlib.import_module(module)
    modules = [n for n in llmassay.__all__ if isinstance(getattr(llmassay, n), ModuleType)]
    assert modules == []
    assert llmassay.evaluate is importlib.import_module("llmassay.evaluation").evaluate


def test_type_checkers_see_exactly_the_lazy_exports():
    """The TYPE_CHECKING block of __init__.py re-exports (`X as X`) each name from the
    module `_EXPORTS` names, and nothing else."""
    tree = ast.parse((SRC / "llmassay" / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    seen: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: write `{alias.name} as {alias.name}` (explicit re-export)"
            seen[alias.name] = node.module
    assert seen == llmassay._EXPORTS


def test_version_is_written_once_and_the_built_distribution_carries_it(tmp_path, capsys):
    """pyproject.toml has no version of its own: setuptools reads llmassay.__version__. A
    wheel built from this tree carries that version, py.typed and the Typed classifier."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pytest.importorskip("setuptools", minversion="77")  # what pyproject's build-system asks for
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "llmassay.__version__"}

    copy = tmp_path / "tree"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (copy / name).write_bytes((ROOT / name).read_bytes())
    shutil.copytree(SRC / "llmassay", copy / "src" / "llmassay",  # a copy: the build writes egg-info beside it
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (tmp_path / "dist").mkdir()
    build = subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta as b; print(b.build_wheel({str(tmp_path / 'dist')!r}))"],
        cwd=copy, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = tmp_path / "dist" / build.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    fields = [line.split(": ", 1) for line in metadata.splitlines() if ": " in line and not line.startswith(" ")]
    built_version = next(v for k, v in fields if k == "Version")
    classifiers = {v for k, v in fields if k == "Classifier"}

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"llmassay {built_version}" == f"llmassay {llmassay.__version__}"
    assert "llmassay/py.typed" in names and "llmassay/evaluation.py" in names
    assert {"Typing :: Typed", "Operating System :: POSIX :: Linux"} <= classifiers
    floor = tuple(int(p) for p in project["project"]["requires-python"].removeprefix(">=").split("."))
    versions = [tuple(int(p) for p in c.rsplit(" ", 1)[1].split(".")) for c in classifiers
                if c.startswith("Programming Language :: Python :: 3.")]
    assert versions and min(versions) == floor  # the classifiers start where requires-python does


def test_the_package_imports_without_the_unix_only_resource_module():
    """Windows has no `resource`: the package and the efficiency probe's host module still
    import, and peak RSS is None there (the probe then reports no peak_rss_mb)."""
    done = _python("import sys; sys.modules['resource'] = None\n"
                   "import llmassay, llmassay.efficiency.host as host, llmassay.probes.efficiency\n"
                   "print(host.peak_rss_mb())")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "None"
