"""hf/ placement and origin (issue #38): device, device_map and dtype (lm-eval's spellings)
reach transformers and the fingerprint; a hub id loads through transformers' own cache and
offline flag, never forced process-wide.

The model is a tiny random Llama saved in a temporary folder; "the hub" is a hub cache
folder laid out as huggingface_hub writes it (models--org--name/snapshots/<commit>, refs/main),
read under HF_HUB_OFFLINE=1 (conftest), so nothing reaches a network.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from llmassay.backends.base import load_backend, parse_model_args
from llmassay.types import LlmassayError, LoglikelihoodRequest

pytestmark = pytest.mark.hf
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

COMMIT = "0123456789abcdef0123456789abcdef01234567"
WORDS = ["<s>", "</s>", "<unk>", "the", "cat", "sat", "on", "a", "mat", "dog", "ran", "."]
REQ = LoglikelihoodRequest("the cat sat on", " a mat")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with a word-level tokenizer, saved with save_pretrained."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    path = tmp_path_factory.mktemp("tiny-llama")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                         unk_token="<unk>").save_pretrained(path)
    config = transformers.LlamaConfig(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                      max_position_embeddings=64, bos_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return path


@pytest.fixture
def hub_cache(tmp_path, tiny_dir, monkeypatch) -> Path:
    """`llmassay-test/tiny` in a hub cache (as a download leaves it), made the cache in use."""
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--llmassay-test--tiny"
    shutil.copytree(tiny_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert constants.HF_HUB_OFFLINE  # conftest: the test process never reaches the hub
    return repo


# -- dtype, device, device_map ----------------------------------------------------------------
@pytest.mark.slow
def test_dtype_reaches_transformers_and_the_fingerprint(tiny_dir):
    default = load_backend(f"hf/{tiny_dir}")
    half = load_backend(f"hf/{tiny_dir}", **parse_model_args("dtype=bfloat16"))
    assert default.model.dtype == torch.float32 and half.model.dtype == torch.bfloat16
    assert default.fingerprint()["dtype"] == "float32" and half.fingerprint()["dtype"] == "bfloat16"
    # the CPU default adds nothing to the fingerprint: cache keys of CPU runs do not change
    assert not {"device", "device_map", "hub_id"} & set(default.fingerprint())
    full, low = default.loglikelihood([REQ])[0].logprob, half.loglikelihood([REQ])[0].logprob
    assert low != full and abs(low - full) < 0.1  # the same model, rounded to bfloat16


@pytest.mark.slow
def test_device_map_reaches_transformers_and_is_recorded(tiny_dir, monkeypatch):
    handed: list[dict] = []
    real = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def recording(cls, source, **kwargs):  # the real loader, after noting what it was given
        handed.append(kwargs)
        return real(cls, source, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(recording))
    mapped = load_backend(f"hf/{tiny_dir}", **parse_model_args("device_map=auto,dtype=float16"))
    plain = load_backend(f"hf/{tiny_dir}", **parse_model_args("device=cpu"))
    assert handed == [{"dtype": torch.float16, "device_map": "auto"}, {"dtype": torch.float32}]
    assert mapped.fingerprint()["device_map"] == "auto" and mapped.fingerprint()["device"] == "cpu"
    assert "device" not in plain.fingerprint()  # device=cpu is the default, spelt out
    assert mapped.model.dtype == torch.float16 and mapped.loglikelihood([REQ])[0].n_tokens == 2


@pytest.mark.parametrize("args, says", [
    ("dtype=float8", "hf: dtype 'float8' is not one of auto, float16, bfloat16, float32"),
    ("dtype=int8", "hf: dtype 'int8' is not one of auto"),
    ("device=gpu", "hf: device 'gpu' is not cpu, cuda, cuda:N or mps"),
    ("device_map=everywhere", "hf: device_map 'everywhere' is not one of auto, balanced"),
    ("device=cpu,device_map=auto,batch_size=0", "hf: batch_size must be a positive integer"),
    ("revision=main", "hf: revision applies to hub ids; '.*' is a local directory"),
])
def test_bad_placement_values_are_one_line_naming_the_field(args, says, tiny_dir):
    with pytest.raises(LlmassayError, match=says):
        load_backend(f"hf/{tiny_dir}", **parse_model_args(args))


def test_a_cuda_request_without_cuda_is_one_line(tiny_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, on any machine
    for args in ("device=cuda", "device=cuda:1", "device_map=cuda:0"):
        field = args.split("=")[0]
        with pytest.raises(LlmassayError) as err:
            load_backend(f"hf/{tiny_dir}", **parse_model_args(args))
        message = str(err.value)
        assert "\n" not in message and f"{args} asks for a CUDA GPU" in message and field in message


def test_this_machine_refuses_device_cuda_in_one_line_through_the_cli(tiny_dir, tmp_path, capsys):
    from llmassay.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    code = main(["run", "--model", f"hf/{tiny_dir}", "--model-args", "device=cuda", "--tasks", "arith_sample",
                 "--limit", "1", "--output-path", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1, err
    assert "device=cuda asks for a CUDA GPU" in err


# -- the hub -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_hub_id_loads_from_the_hub_cache_like_its_local_folder(tiny_dir, hub_cache):
    local = load_backend(f"hf/{tiny_dir}")
    hub = load_backend("hf/llmassay-test/tiny")
    assert hub.name == "hf/llmassay-test/tiny" and hub.path == hub_cache / "snapshots" / COMMIT
    assert hub.loglikelihood([REQ]) == local.loglikelihood([REQ])
    print_ = hub.fingerprint()
    assert print_["weights_sha256"] == local.fingerprint()["weights_sha256"]
    assert (print_["hub_id"], print_["hub_commit"], print_["revision"]) == ("llmassay-test/tiny", COMMIT, None)
    pinned = load_backend("hf/llmassay-test/tiny", revision=COMMIT)
    assert pinned.fingerprint()["revision"] == COMMIT and pinned.path == hub.path


def test_a_hub_id_missing_offline_needs_a_network_or_a_local_path(hub_cache):
    with pytest.raises(LlmassayError) as err:
        load_backend("hf/llmassay-test/not-downloaded")
    message = str(err.value)
    assert "\n" not in message
    assert message == ("hf: 'llmassay-test/not-downloaded' is not a local directory and not in the hub cache "
                       "(HF_HUB_OFFLINE is set): it needs a network, or a local path (hf/<dir>)")


def test_a_missing_local_folder_is_not_taken_for_a_hub_id(tmp_path):
    for name in (str(tmp_path / "nowhere"), "./nowhere", "~/nowhere/at/all"):
        with pytest.raises(LlmassayError, match=r"is not a local directory \(nor a hub id"):
            load_backend(f"hf/{name}")


def test_loading_never_sets_the_hub_offline_flag_for_the_process(tiny_dir, hub_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(LlmassayError):
        load_backend("hf/llmassay-test/not-downloaded")
    with pytest.raises(LlmassayError):
        load_backend(f"hf/{tiny_dir}", dtype="float8")
    assert "HF_HUB_OFFLINE" not in os.environ
