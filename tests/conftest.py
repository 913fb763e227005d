"""Shared fixtures: an isolated LLMASSAY_HOME and one loaded embedded model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Hash memo, default cache and assembled models go to a temp dir, never ~/.cache.
    os.environ["LLMASSAY_HOME"] = str(tmp_path_factory.mktemp("llmassay_home"))
    os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def smollm2():
    from llmassay.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend("smollm2-135m")
    yield backend
    backend.llm.close()  # before interpreter shutdown, where llama-cpp-python's __del__ fails


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from llmassay.models import resolve_model_path

    return resolve_model_path("smollm2-135m")


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray cluster of 2 CPUs (as on the CI machine) for `--executor ray` tests."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
