"""The reliability suite (issue #9): every test records the cases it tried.

`reliability.case(category, name)` wraps the assertions of one case and records
(category, case, passed) when the block ends. With `soft=True` a failed assertion is
recorded and swallowed so a loop can try all its cases; the test then calls
`reliability.assert_all_passed()`. At session end, if LLMASSAY_RELIABILITY_REPORT names a
file, the records and every reliability test's outcome are written there as JSON
(`scripts/reliability_report.py` turns that into docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from reliability_helpers import ARITH_N, arith_reference_run

RECORDS: list[dict[str, Any]] = []
OUTCOMES: dict[str, dict[str, Any]] = {}


@dataclass
class Case:
    category: str
    name: str
    detail: str = ""


@dataclass
class Recorder:
    test: str
    failures: list[str] = field(default_factory=list)

    @contextmanager
    def case(self, category: str, name: str, soft: bool = False) -> Iterator[Case]:
        case = Case(category, name)
        started = time.perf_counter()
        passed = False
        try:
            yield case
            passed = True
        except AssertionError as exc:
            self.failures.append(f"{case.name}: {str(exc).splitlines()[0] if str(exc) else 'assertion failed'}")
            if not soft:
                raise
        finally:
            RECORDS.append(
                {
                    "category": case.category,
                    "case": case.name,
                    "detail": case.detail,
                    "passed": passed,
                    "test": self.test,
                    "seconds": round(time.perf_counter() - started, 3),
                }
            )

    def assert_all_passed(self) -> None:
        assert not self.failures, f"{len(self.failures)} case(s) failed: " + "; ".join(self.failures[:5])


@pytest.fixture()
def reliability(request: pytest.FixtureRequest) -> Recorder:
    return Recorder(request.node.nodeid)


@pytest.fixture(scope="session")
def rel_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One LLMASSAY_HOME for every subprocess, so the model's sha256 is hashed once."""
    return tmp_path_factory.mktemp("rel_home")


@pytest.fixture(scope="session")
def arith_reference(tmp_path_factory: pytest.TempPathFactory, rel_home: Path) -> dict[str, Path]:
    """An uninterrupted CLI run of arith_sample (limit ARITH_N, chunk size 2) with a cold
    cache: its samples file and its cache file are what killed runs must reproduce."""
    return arith_reference_run(tmp_path_factory.mktemp("arith_reference"), rel_home, ARITH_N)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "reliability" not in report.keywords:
        return
    entry = OUTCOMES.setdefault(report.nodeid, {"outcome": "passed", "seconds": 0.0})
    entry["seconds"] = round(entry["seconds"] + report.duration, 3)
    if report.failed:
        entry["outcome"] = "failed"
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        entry["reason"] = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get("LLMASSAY_RELIABILITY_REPORT")
    if not target:
        return
    Path(target).write_text(
        json.dumps({"records": RECORDS, "tests": OUTCOMES, "exitstatus": int(exitstatus)}, indent=1) + "\n"
    )
