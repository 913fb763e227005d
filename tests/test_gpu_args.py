"""GPU arguments (issue #38): llamacpp's n_gpu_layers / main_gpu and hf's device, device_map
and dtype reach the library, are recorded in the fingerprint only when they leave the CPU,
and a request this machine cannot serve is a one-line error naming the argument.

No GPU is needed: llama-cpp-python's `Llama` is replaced by a recorder where the arguments'
arrival is the point, and the hf tests load a tiny model made in the test (on the CPU).
"""

from __future__ import annotations

import pytest

from llmassay.backends.base import load_backend, parse_model_args
from llmassay.types import LlmassayError


class RecordedLlama:
    """Stands in for `llama_cpp.Llama`: keeps the keyword arguments it was opened with."""

    opened: list[dict] = []

    def __init__(self, **kwargs):
        RecordedLlama.opened.append(kwargs)
        self.n_threads = kwargs["n_threads"]

    def n_vocab(self) -> int:
        return 10


@pytest.fixture
def recorded(monkeypatch):
    import llama_cpp

    from llmassay.backends import llama_internals

    RecordedLlama.opened = []
    monkeypatch.setattr(llama_cpp, "Llama", RecordedLlama)
    monkeypatch.setattr(llama_internals, "check_internals", lambda llm: None)  # a recorder has no internals
    return RecordedLlama.opened


@pytest.fixture
def gguf_stub(tmp_path, monkeypatch):
    """A model file the backend will open through the recorder (its header is not read)."""
    import llmassay.backends.llamacpp as llamacpp

    monkeypatch.setattr(llamacpp, "check_gguf", lambda path, name: None)
    path = tmp_path / "stub.gguf"
    path.write_bytes(b"GGUF stub")
    return path


def gpu_build(monkeypatch, supported: bool) -> None:
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: supported)


# -- llamacpp -------------------------------------------------------------------------------
def test_open_llama_hands_n_gpu_layers_and_main_gpu_to_llama(recorded, monkeypatch):
    from llmassay.backends.llama_load import open_llama

    gpu_build(monkeypatch, True)
    open_llama("m.gguf", n_threads=1, use_extra_bufts=True, n_gpu_layers=-1, main_gpu=1, n_ctx=64)
    open_llama("m.gguf", n_threads=1, use_extra_bufts=True)
    offloaded, default = recorded
    assert (offloaded["n_gpu_layers"], offloaded["main_gpu"], offloaded["n_ctx"]) == (-1, 1, 64)
    assert (default["n_gpu_layers"], default["main_gpu"]) == (0, 0)  # the CPU unless asked


def test_llamacpp_backend_passes_gpu_args_through_and_records_them(recorded, gguf_stub, monkeypatch):
    gpu_build(monkeypatch, True)
    gpu = load_backend(f"llamacpp/{gguf_stub}", n_threads=1, **parse_model_args("n_gpu_layers=20,main_gpu=1"))
    cpu = load_backend(f"llamacpp/{gguf_stub}", n_threads=1)
    assert (recorded[0]["n_gpu_layers"], recorded[0]["main_gpu"]) == (20, 1)
    assert (recorded[1]["n_gpu_layers"], recorded[1]["main_gpu"]) == (0, 0)
    assert gpu.fingerprint()["n_gpu_layers"] == 20 and gpu.fingerprint()["main_gpu"] == 1
    # a CPU run's fingerprint (its cache key) is what it was before GPU arguments existed
    assert {k: v for k, v in cpu.fingerprint().items() if k not in ("llama_cpp_python", "model_sha256")} == {
        "backend": "llamacpp", "model_file": "stub.gguf", "n_ctx": 2048, "n_batch": 512}


def test_a_gpu_request_on_a_cpu_only_llama_cpp_build_is_one_line(recorded, gguf_stub, monkeypatch):
    gpu_build(monkeypatch, False)
    with pytest.raises(LlmassayError) as err:
        load_backend(f"llamacpp/{gguf_stub}", n_gpu_layers=-1)
    message = str(err.value)
    assert "\n" not in message and "n_gpu_layers=-1" in message and "CPU only" in message
    assert recorded == []  # nothing was opened


def test_this_machines_llama_cpp_refuses_a_gpu_request_it_cannot_serve_in_one_line(tmp_path, capsys):
    """The real build, through the CLI: on a CPU-only llama-cpp-python the run stops before
    any model is read."""
    import llama_cpp

    from llmassay.cli import main

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python can offload to a GPU")
    code = main(["run", "--model", "llamacpp/smollm2-135m", "--model-args", "n_gpu_layers=-1",
                 "--tasks", "arith_sample", "--limit", "1", "--output-path", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1, err
    assert "n_gpu_layers=-1" in err and "CPU only" in err


@pytest.mark.parametrize("args, says", [
    ("n_gpu_layers=abc", "n_gpu_layers=abc: llamacpp expects an integer for n_gpu_layers"),
    ("n_gpu_layers=-2", "n_gpu_layers must be an integer >= -1, not -2"),
    ("main_gpu=-1", "main_gpu must be an integer >= 0, not -1"),
    ("main_gpu=first", "main_gpu=first: llamacpp expects an integer for main_gpu"),
])
def test_bad_llamacpp_gpu_values_name_the_field(args, says, recorded, gguf_stub):
    with pytest.raises(LlmassayError, match=says):
        load_backend(f"llamacpp/{gguf_stub}", **parse_model_args(args))
    assert recorded == []
