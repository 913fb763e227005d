"""The public API type-checks (mypy, configured in pyproject's [tool.mypy]), and a user's
code that imports it is checked against the real signatures, under `--strict`.

mypy comes with the [dev] extra, which `make test` installs. A cold run takes seconds; the
cache (.mypy_cache/) makes reruns near-instant.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mypy", reason="mypy is in the [dev] extra: pip install -e '.[dev]'")


def _mypy(*args: str, cache: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache" / cache), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_public_api_type_checks():
    """`python -m mypy` at the repository root: the files and options in pyproject.toml."""
    done = _mypy(cache="api")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.stdout.startswith("Success:")


USER_CODE = '''
from llmassay import Metric, RunConfig, RunResults, evaluate, proportion
from llmassay.types import GenerateRequest


def accuracy_of(model: str) -> float:
    out: RunResults = evaluate(RunConfig(model=model, tasks=["mmlu_sample"], limit=5))
    return float(out.results["results"]["mmlu_sample"]["accuracy"]["acc"]["value"])


share: Metric = proportion([True, False, True])
low, high = share.interval()
request = GenerateRequest(prompt="2 + 2 =", max_tokens=4)
'''

MISUSE = '''
from llmassay import RunConfig, evaluate
from llmassay import no_such_name
evaluate("mmlu_sample")
RunConfig(model="m", tasks="mmlu_sample", limit="5")
'''


def test_users_code_is_checked_against_the_real_signatures(tmp_path):
    """What a user's --strict mypy sees: the lazy exports with their types (not Any, not the
    submodule that once shadowed `evaluate`), and a misspelt name is an error."""
    (tmp_path / "good.py").write_text(USER_CODE, encoding="utf-8")
    (tmp_path / "bad.py").write_text(MISUSE, encoding="utf-8")
    config = tmp_path / "mypy.ini"  # a user's strict settings; llmassay read, other packages skipped (speed)
    config.write_text("[mypy]\nstrict = True\nignore_missing_imports = True\nfollow_imports = skip\n"
                      "[mypy-llmassay,llmassay.*]\nfollow_imports = silent\n", encoding="utf-8")
    done = _mypy("--config-file", str(config), str(tmp_path / "good.py"), str(tmp_path / "bad.py"), cache="user")
    errors = [line for line in done.stdout.splitlines() if ": error: " in line]
    assert [e for e in errors if "good.py" in e] == []
    bad = [e.split(": error: ")[1] for e in errors if "bad.py" in e]
    assert any('has no attribute "no_such_name"' in e for e in bad), bad
    assert any('"evaluate" has incompatible type "str"; expected "RunConfig"' in e for e in bad), bad
    assert any('"tasks" to "RunConfig" has incompatible type "str"' in e for e in bad), bad
    assert any('"limit" to "RunConfig" has incompatible type "str"' in e for e in bad), bad


@pytest.fixture(autouse=True)
def _source_on_mypy_path(monkeypatch):
    """mypy finds llmassay in this source tree, as it would find an installed copy."""
    monkeypatch.setenv("MYPYPATH", str(ROOT / "src"))
