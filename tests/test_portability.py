"""Issue #31: the embedded backend on any x86_64 CPU (AMX included), the install smoke
check, the native-crash guard, the thread default under load, the environment block."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmassay import machine, selfcheck
from llmassay.backends import llama_load
from llmassay.report.compare import build_warnings

SEGFAULTING_CHILD = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
AMX_INFO = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 |"
NO_AMX_INFO = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | REPACK = 1 |"


# -- the install smoke check -------------------------------------------------------------
def test_a_build_that_segfaults_gives_one_line_naming_the_cpu_and_the_fix():
    check = selfcheck.run_selfcheck(SEGFAULTING_CHILD)
    assert not check.ok
    assert "\n" not in check.message
    assert "crashed (SIGSEGV)" in check.message
    assert machine.cpu_model() in check.message
    assert "use_extra_bufts=false" in check.message and "-mno-amx" in check.message


def test_the_selfcheck_command_exits_1_with_one_line_on_a_crashing_build():
    """What scripts/install.sh runs last: a crashing build stops the install in one line."""
    env = {"LLMASSAY_SELFCHECK_CHILD": shlex.join(SEGFAULTING_CHILD), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "llmassay.selfcheck"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "SIGSEGV" in done.stderr


def test_wrong_numbers_from_a_build_fail_the_check(tmp_path):
    child = [sys.executable, "-c", "print('{\"logprob\": -9.0, \"text\": \"x\", \"n_threads\": 1}')"]
    check = selfcheck.run_selfcheck(child)
    assert not check.ok and "wrong numbers" in check.message and "-9.000" in check.message
    fine = [sys.executable, "-c",
            f"print('{{\"logprob\": {selfcheck.REFERENCE_LOGPROB + 0.1}, \"text\": \"x\", \"n_threads\": 1}}')"]
    assert selfcheck.run_selfcheck(fine).ok


def test_install_script_runs_the_smoke_check_before_stamping():
    script = Path(__file__).resolve().parents[1] / "scripts" / "install.sh"
    text = script.read_text()
    assert text.index("-m llmassay.selfcheck || exit 1") < text.index('stamp_of > "$stamp_file"')
    assert "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" in text
    assert 'echo "$LLAMA_CMAKE_ARGS") | sha256sum' in text  # the flags key the cached wheel


@pytest.mark.slow
def test_the_real_smoke_check_passes_on_this_machine():
    check = selfcheck.run_selfcheck()
    assert check.ok, check.message


# -- AMX: where repacking is turned off ---------------------------------------------------
@pytest.mark.parametrize("info, flags, expected", [
    (AMX_INFO, {"avx2", "avx512f", "amx_tile", "amx_int8"}, False),  # the crashing case
    (AMX_INFO, {"avx2", "avx512f"}, True),  # an AMX build on a CPU without AMX never takes that path
    (NO_AMX_INFO, {"avx2", "avx512f", "amx_tile", "amx_int8"}, True),  # our build: keep the other repacks
    (NO_AMX_INFO, {"avx2"}, True),
])
def test_extra_buffers_are_off_only_for_an_amx_build_on_an_amx_cpu(monkeypatch, info, flags, expected):
    monkeypatch.setattr(llama_load, "llama_build_has_amx", lambda: machine.llama_build_has_amx(info))
    monkeypatch.setattr(llama_load, "cpu_has_amx", lambda: machine.cpu_has_amx(flags))
    assert llama_load.extra_bufts_default() is expected


@pytest.mark.slow
@pytest.mark.parametrize("extra", [False, True])
def test_use_extra_bufts_reaches_llama_cpp(smollm2_path, extra):
    import llama_cpp

    before = llama_cpp.llama_cpp.llama_model_default_params
    llm = llama_load.open_llama(str(smollm2_path), n_threads=1, use_extra_bufts=extra, n_ctx=64, verbose=False)
    try:
        assert llm.model_params.use_extra_bufts is extra
        assert llm.n_threads == 1
    finally:
        llm.close()
    assert llama_cpp.llama_cpp.llama_model_default_params is before  # the swap is undone


@pytest.mark.slow
def test_the_backend_refuses_a_non_boolean_use_extra_bufts():
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.types import LlmassayError

    with pytest.raises(LlmassayError, match="use_extra_bufts must be true or false"):
        LlamaCppBackend("smollm2-135m", use_extra_bufts="maybe")


# -- threads under contention --------------------------------------------------------------
@pytest.mark.parametrize("cores, busy, expected", [(2, 0.0, 2), (2, 1.0, 1), (2, 2.0, 1), (8, 2.6, 5), (2, None, 2)])
def test_default_threads_leave_busy_cores_alone(monkeypatch, cores, busy, expected):
    monkeypatch.setattr(machine, "usable_cores", lambda: cores)
    monkeypatch.setattr(machine, "_busy_cpus", lambda interval_s: busy)
    assert machine.default_threads() == expected


def test_a_busy_loop_neighbour_is_seen_as_one_busy_core():
    if machine.usable_cores() < 2:
        pytest.skip("needs two cores")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        busy = machine._busy_cpus(1.0)
    finally:
        hog.kill()
        hog.wait()
    assert busy is not None and 0.7 <= busy <= 2.0


# -- the environment block and compare ------------------------------------------------------
def test_environment_names_the_cpu_and_the_llama_build():
    env = machine.environment_facts()
    assert env["cpu_model"] == machine.cpu_model() and env["cpu_model"]
    assert env["logical_cores"] >= 1
    assert "CPU :" in env["llama_cpp_system_info"]  # llama.cpp's own line
    flags = machine.cpu_flags()
    assert set(env["cpu_features"]) <= flags | {"neon", "asimd", "sve"}


def test_compare_warns_when_two_runs_used_different_builds():
    a = {"environment": {"llama_cpp_system_info": AMX_INFO, "cpu_model": "X"}, "versions": {"llama_cpp_python": "1"}}
    b = {"environment": {"llama_cpp_system_info": NO_AMX_INFO, "cpu_model": "Y"}, "versions": {"llama_cpp_python": "1"}}
    (warning,) = build_warnings(a, b)
    assert "different llama.cpp builds" in warning and "X vs Y" in warning
    assert build_warnings(a, a) == []
    assert build_warnings(a, {}) == []  # an older results file without the block: nothing to say


# -- a native crash mid-run -----------------------------------------------------------------
@pytest.mark.slow
def test_a_native_crash_mid_run_says_where_keeps_rows_and_resumes(tmp_path):
    """SIGSEGV delivered to a running CLI takes the same path as a crash inside llama.cpp:
    faulthandler's stack and the hint on stderr, the rows written so far kept, and the same
    command finishing the run with no row computed twice."""
    home, out = tmp_path / "home", tmp_path / "out"
    args = [sys.executable, "-m", "llmassay.cli", "run", "--model", "llamacpp/smollm2-135m", "--tasks",
            "arith_sample", "--limit", "40", "--chunk-size", "2", "--output-path", str(out),
            "--model-args", "n_threads=1"]
    env = {**os.environ, "LLMASSAY_HOME": str(home)}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        logs = list(out.glob(".llmassay/*/arith_sample__accuracy.jsonl"))
        if logs and len(logs[0].read_bytes().splitlines()) >= 4:
            break
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGSEGV)
    _, err = proc.communicate(timeout=60)
    stderr = err.decode(errors="replace")
    assert proc.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in stderr
    assert "llmassay: the process crashed in native code" in stderr and "llmassay.selfcheck" in stderr
    kept = [json.loads(line)["id"] for line in logs[0].read_text().splitlines() if line.endswith("}")]
    assert len(kept) >= 4
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line)["id"] for line in logs[0].read_text().splitlines()]
    assert len(rows) == len(set(rows)) == 40
    assert rows[: len(kept)] == kept
