"""GGUF LoRA (issue #33): a PEFT adapter converted for llama.cpp must give llama.cpp the same
model PEFT gives torch.

Planted truth: a tiny random Llama (GQA: 4 query heads, 2 key/value heads) written here both as
a transformers folder and as an F32 GGUF (its q/k rows permuted as llama.cpp's converter does),
and a PEFT adapter with random A and B on every linear layer. Fast tests read the converted
GGUF back (metadata, names, shapes, the permuted B of q/k against the rope-pairing order) and
check the one-line errors; the slow ones load the tiny GGUF into llama.cpp with the adapter
(sub-second) and compare log-likelihoods with torch+PEFT, and move SmolLM2 with a trained
adapter the way hf+adapter moves it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from llmassay.tune.gguf_lora import adapter_sha256, cached_gguf_lora, convert, permute_rows
from llmassay.types import LlmassayError

N_HEAD, N_HEAD_KV, HIDDEN, VOCAB = 4, 2, 32, 64
WORDS = ["<unk>", "<s>", "</s>"] + [f"\u2581w{i}" for i in range(VOCAB - 3)]


def _config():
    transformers = pytest.importorskip("transformers")
    return transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=48, num_hidden_layers=2,
                                    num_attention_heads=N_HEAD, num_key_value_heads=N_HEAD_KV,
                                    max_position_embeddings=64, rms_norm_eps=1e-5,
                                    bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, initializer_range=0.2)


def write_base_gguf(model, path: Path) -> None:
    """The tiny model as llama.cpp's converter writes an F32 Llama: gguf-py's names, q/k rows
    permuted, an SPM vocabulary of WORDS."""
    import gguf

    cfg = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(10000.0)  # transformers' default rope theta for Llama
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(VOCAB)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(WORDS)
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([2, 3, 3] + [1] * (VOCAB - 3))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    for name, tensor in model.state_dict().items():
        data = tensor.detach().float().numpy()
        if name.endswith("q_proj.weight"):
            data = permute_rows(data, N_HEAD)
        elif name.endswith("k_proj.weight"):
            data = permute_rows(data, N_HEAD_KV)
        w.add_tensor(names.get_name(name, try_suffixes=(".weight",)), np.ascontiguousarray(data))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A tiny Llama (torch folder + F32 GGUF) and a PEFT adapter on it with random A and B."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    pytest.importorskip("gguf")
    root = tmp_path_factory.mktemp("tiny-gguf-lora")
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(_config()).eval()
    model.save_pretrained(root / "base")
    write_base_gguf(model, root / "base.gguf")
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    torch.manual_seed(1)
    tuned = peft.get_peft_model(model, lora)
    with torch.no_grad():  # a visible effect: PEFT's non-default init is small
        for name, p in tuned.named_parameters():
            if "lora_B" in name:
                p.mul_(3.0)
    tuned.save_pretrained(root / "run" / "adapter")
    return {"base": root / "base", "gguf": root / "base.gguf", "run": root / "run",
            "adapter": root / "run" / "adapter"}


def _read(path: Path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    fields = {k: reader.fields[k].contents() for k in reader.fields if not k.startswith("GGUF.")}
    return fields, {t.name: t for t in reader.tensors}


# -- conversion, read back (fast) -------------------------------------------------------------
def test_the_gguf_has_llamacpp_metadata_names_and_shapes(tiny, tmp_path):
    out = convert(tiny["run"], tiny["gguf"], tmp_path / "a.gguf")  # the tune output folder: adapter/ found
    fields, tensors = _read(out.path)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama" and fields["adapter.lora.alpha"] == 8.0
    assert fields["llmassay.adapter_sha256"] == out.adapter_sha256 == adapter_sha256(tiny["adapter"])
    _, base = _read(tiny["gguf"])
    kinds = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    assert sorted(tensors) == sorted(f"blk.{b}.{k}.weight.lora_{ab}" for b in (0, 1) for k in kinds for ab in "ab")
    for b in (0, 1):
        for k in kinds:
            n_in, n_out = (int(d) for d in base[f"blk.{b}.{k}.weight"].shape)  # GGUF dims: input first
            assert [int(d) for d in tensors[f"blk.{b}.{k}.weight.lora_a"].shape] == [n_in, 4]
            assert [int(d) for d in tensors[f"blk.{b}.{k}.weight.lora_b"].shape] == [4, n_out]


def test_q_and_k_lora_b_rows_are_permuted_into_ropes_pairs_and_nothing_else_is(tiny, tmp_path):
    from safetensors.numpy import load_file

    peft_weights = load_file(str(tiny["adapter"] / "adapter_model.safetensors"))
    _, tensors = _read(convert(tiny["adapter"], tiny["gguf"], tmp_path / "a.gguf").path)

    def peft(module: str, ab: str) -> np.ndarray:
        return peft_weights[f"base_model.model.model.layers.1.{module}.lora_{ab}.weight"]

    head = HIDDEN // N_HEAD
    # within each head llama.cpp's rope pairs rows (0, 1), (2, 3), …; HF's pairs (i, i + head/2)
    order = [h * head + j // 2 + (j % 2) * (head // 2) for h in range(N_HEAD) for j in range(head)]
    assert np.array_equal(tensors["blk.1.attn_q.weight.lora_b"].data, peft("self_attn.q_proj", "B")[order])
    order_kv = [h * head + j // 2 + (j % 2) * (head // 2) for h in range(N_HEAD_KV) for j in range(head)]
    assert np.array_equal(tensors["blk.1.attn_k.weight.lora_b"].data, peft("self_attn.k_proj", "B")[order_kv])
    assert not np.array_equal(tensors["blk.1.attn_q.weight.lora_b"].data, peft("self_attn.q_proj", "B"))
    for module, name in (("self_attn.q_proj", "attn_q"), ("self_attn.v_proj", "attn_v"), ("mlp.down_proj", "ffn_down")):
        assert np.array_equal(tensors[f"blk.1.{name}.weight.lora_a"].data, peft(module, "A"))  # A: never permuted
    assert np.array_equal(tensors["blk.1.attn_v.weight.lora_b"].data, peft("self_attn.v_proj", "B"))


def test_the_conversion_is_cached_by_the_adapters_hash(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMASSAY_HOME", str(tmp_path / "home"))
    first = cached_gguf_lora(tiny["adapter"], tiny["gguf"])
    assert first.path.parent == tmp_path / "home" / "gguf-lora" and first.path.name.startswith(first.adapter_sha256[:16])
    stamp = first.path.stat().st_mtime_ns
    assert cached_gguf_lora(tiny["run"], tiny["gguf"]).path == first.path and first.path.stat().st_mtime_ns == stamp
    other = tmp_path / "other"
    shutil.copytree(tiny["adapter"], other)
    config = json.loads((other / "adapter_config.json").read_text())
    (other / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": 4}))
    changed = cached_gguf_lora(other, tiny["gguf"])
    assert changed.path != first.path and changed.alpha == 4.0


# -- bad input (fast) -------------------------------------------------------------------------
def _edited(tiny, tmp_path, **changes) -> Path:
    folder = tmp_path / "edited"
    shutil.copytree(tiny["adapter"], folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, **changes}))
    return folder


@pytest.mark.parametrize("changes,message", [
    ({"use_dora": True}, "use_dora=True has no llama.cpp equivalent"),
    ({"peft_type": "IA3"}, "only LORA converts"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"lora_alpha": "big"}, "field 'lora_alpha' must be a positive number"),
])
def test_settings_llamacpp_cannot_carry_are_one_line_errors(tiny, tmp_path, changes, message):
    with pytest.raises(LlmassayError, match=message) as err:
        convert(_edited(tiny, tmp_path, **changes), tiny["gguf"], tmp_path / "a.gguf")
    assert "\n" not in str(err.value) and not (tmp_path / "a.gguf").exists()


def test_missing_files_and_other_bases_are_one_line_errors(tiny, tmp_path):
    import gguf

    with pytest.raises(LlmassayError, match="is not a folder"):
        convert(tmp_path / "nowhere", tiny["gguf"], tmp_path / "a.gguf")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "adapter_config.json").write_text("{}")
    with pytest.raises(LlmassayError, match="has no adapter_model.safetensors"):
        convert(empty, tiny["gguf"], tmp_path / "a.gguf")
    gemma = tmp_path / "gemma.gguf"  # another architecture
    w = gguf.GGUFWriter(str(gemma), "gemma3")
    w.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    with pytest.raises(LlmassayError, match="is a 'gemma3' model; GGUF LoRA conversion knows llama"):
        convert(tiny["adapter"], gemma, tmp_path / "a.gguf")


def test_an_adapter_for_another_shape_or_an_unmapped_module_is_refused(tiny, tmp_path):
    from safetensors.numpy import load_file, save_file

    def planted(edit) -> Path:
        folder = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
        shutil.copytree(tiny["adapter"], folder)
        weights = load_file(str(folder / "adapter_model.safetensors"))
        edit(weights)
        save_file(weights, str(folder / "adapter_model.safetensors"))
        return folder

    key = "base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"
    wide = planted(lambda w: w.update({key: np.zeros((96, 4), np.float32)}))
    with pytest.raises(LlmassayError, match=r"'model.layers.0.mlp.up_proj' is 32→96 .* is 32→48 \(another base model\?\)"):
        convert(wide, tiny["gguf"], tmp_path / "a.gguf")
    deep = planted(lambda w: w.update({k.replace("layers.1.", "layers.7."): v for k, v in list(w.items())}))
    with pytest.raises(LlmassayError, match="adapts 'model.layers.7.*has no weight for"):
        convert(deep, tiny["gguf"], tmp_path / "a.gguf")
    norm = planted(lambda w: w.update({"base_model.model.model.norm.weight": np.ones(32, np.float32)}))
    with pytest.raises(LlmassayError, match="'base_model.model.model.norm.weight' is not a LoRA A/B weight"):
        convert(norm, tiny["gguf"], tmp_path / "a.gguf")
    half = planted(lambda w: w.pop(key))
    with pytest.raises(LlmassayError, match="up_proj' has lora_A but not both"):
        convert(half, tiny["gguf"], tmp_path / "a.gguf")


def test_the_fingerprint_gains_the_adapters_hash_and_an_untuned_one_is_unchanged(tiny, tmp_path, monkeypatch):
    from llmassay.backends.llamacpp import LlamaCppBackend

    monkeypatch.setenv("LLMASSAY_HOME", str(tmp_path / "home"))
    untuned = LlamaCppBackend.__new__(LlamaCppBackend)  # no model load: only the lora arguments
    untuned.model_path, untuned._load_params = tiny["gguf"], {"n_ctx": 64}
    assert untuned._lora_args(None, 1.0) == {} and untuned._load_params == {"n_ctx": 64}
    tuned = LlamaCppBackend.__new__(LlamaCppBackend)
    tuned.model_path, tuned._load_params = tiny["gguf"], {"n_ctx": 64}
    args = tuned._lora_args(str(tiny["run"]), 0.5)
    assert Path(args["lora_path"]).is_file() and args["lora_scale"] == 0.5
    assert tuned._load_params["adapter_sha256"] == adapter_sha256(tiny["adapter"]) and tuned._load_params["lora_scale"] == 0.5
    with pytest.raises(LlmassayError, match="lora_scale needs lora=DIR"):
        untuned._lora_args(None, 0.5)
    with pytest.raises(LlmassayError, match="lora_scale must be a number"):
        tuned._lora_args(str(tiny["run"]), "half")


# -- llama.cpp against torch + PEFT (slow: loads the tiny GGUF into llama.cpp) ------------------
def _torch_logprobs(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(logits, -1)[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0].numpy()


@pytest.mark.slow
def test_llamacpp_with_the_converted_adapter_scores_as_torch_with_peft(tiny, tmp_path, monkeypatch):
    import transformers
    from peft import PeftModel

    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.engine.rolling import TokenLoglikelihoodRequest

    monkeypatch.setenv("LLMASSAY_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    seqs = [[1, *map(int, rng.integers(3, VOCAB, size=n))] for n in (6, 11, 17)]
    reqs = [TokenLoglikelihoodRequest(tuple(s[:2]), tuple(s[2:])) for s in seqs]
    base = transformers.LlamaForCausalLM.from_pretrained(tiny["base"]).eval()
    want_base = [_torch_logprobs(base, s)[1:].sum() for s in seqs]
    tuned = PeftModel.from_pretrained(base, str(tiny["adapter"])).eval()
    want_tuned = [_torch_logprobs(tuned, s)[1:].sum() for s in seqs]
    got = {}
    for name, args in (("base", {}), ("tuned", {"lora": str(tiny["run"])})):
        backend = LlamaCppBackend(str(tiny["gguf"]), n_ctx=64, n_threads=1, **args)
        got[name] = [r.logprob for r in backend.loglikelihood_tokens(reqs)]
        got[name + "_fp"] = backend.fingerprint()
        backend.llm.close()
    # F32 weights on both sides: agreement to float rounding, while the adapter moves each
    # sequence's log-likelihood by far more (a wrong permutation or scale breaks this)
    assert np.allclose(got["base"], want_base, atol=2e-3)
    assert np.allclose(got["tuned"], want_tuned, atol=2e-3)
    assert min(abs(t - b) for t, b in zip(want_tuned, want_base)) > 0.1
    assert "adapter_sha256" not in got["base_fp"]
    assert got["tuned_fp"] == {**got["base_fp"], "adapter_sha256": adapter_sha256(tiny["adapter"]),
                               "lora_gguf": "llmassay-gguf-lora-1"}


def write_random_adapter(model_path: Path, folder: Path, rank: int = 4, scale: float = 0.02) -> None:
    """A PEFT LoRA adapter (the files `save_pretrained` writes) with seeded random A and B on
    every attention and MLP projection of the Llama GGUF at `model_path`: no torch needed."""
    from safetensors.numpy import save_file

    from llmassay.tune.gguf_lora import read_base

    base = read_base(model_path)
    modules = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
               "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
               "ffn_down": "mlp.down_proj"}
    rng = np.random.default_rng(0)
    weights = {}
    for b in range(base.n_blocks):
        for gguf_name, hf_name in modules.items():
            n_in, n_out = base.shapes[f"blk.{b}.{gguf_name}.weight"][:2]
            key = f"base_model.model.model.layers.{b}.{hf_name}"
            weights[f"{key}.lora_A.weight"] = (rng.normal(size=(rank, n_in)) / np.sqrt(n_in)).astype(np.float32)
            weights[f"{key}.lora_B.weight"] = (rng.normal(size=(n_out, rank)) * scale).astype(np.float32)
    folder.mkdir(parents=True)
    save_file(weights, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank, "target_modules": sorted(set(modules.values())),
        "bias": "none", "task_type": "CAUSAL_LM", "base_model_name_or_path": str(model_path.parent)}))


def test_smollm2_with_a_lora_moves_as_hf_with_the_adapter(smollm2, smollm2_path, tmp_path):
    """The real model: llama.cpp computes in Q4_1, hf in fp32 from the same GGUF, so the two
    disagree by themselves (bench/gguf_lora_parity.py: mean |Δ| 0.29 per request untuned);
    what must agree is how far and which way the adapter moves each score."""
    pytest.importorskip("peft")
    from llmassay.backends._hf_load import with_adapter
    from llmassay.backends.hf import HFBackend
    from llmassay.backends.llamacpp import LlamaCppBackend
    from llmassay.types import LoglikelihoodRequest

    write_random_adapter(smollm2_path, tmp_path / "adapter", scale=0.08)
    reqs = [LoglikelihoodRequest(c, t) for c, t in (
        ("The capital of France is", " Paris"), ("Text: Ana is 30.\nJSON:", ' {"name": "Ana", "age": 30}'),
        ("2 + 2 =", " 4"), ("The opposite of hot is", " cold"), ("Question: Is water wet?\nAnswer:", " Yes"),
        ("Once upon a", " time there was a king"))]
    tuned = LlamaCppBackend("smollm2-135m", n_threads=1, lora=str(tmp_path / "adapter"))
    d_cpp = np.array([r.logprob for r in tuned.loglikelihood(reqs)]) - [r.logprob for r in smollm2.loglikelihood(reqs)]
    tuned.llm.close()
    hf = HFBackend(str(smollm2_path.parent), gguf_file=smollm2_path.name)
    base_ll = [r.logprob for r in hf.loglikelihood(reqs)]
    hf.model, _ = with_adapter(hf.model, str(tmp_path / "adapter"))  # what adapter= does at load, one load fewer
    hf._kv_prefix = None  # no prefix cache of the untuned model
    d_hf = np.array([r.logprob for r in hf.loglikelihood(reqs)]) - base_ll
    assert np.abs(d_hf).mean() > 1.0  # the planted adapter moves the scores
    clear = np.abs(d_hf) > 0.5  # below, the engines' own gap (bench: ≈0.3 per request) can flip a sign
    assert clear.sum() >= 3 and np.array_equal(np.sign(d_cpp[clear]), np.sign(d_hf[clear]))
    assert np.corrcoef(d_cpp, d_hf)[0, 1] > 0.95 and np.abs(d_cpp - d_hf).max() < 1.5  # the measured bound


def test_tune_export_gguf_writes_the_file_and_refuses_bad_input_in_one_line(tiny, tmp_path, capsys):
    from llmassay.cli.app import main

    out = tmp_path / "x.gguf"
    assert main(["tune", "export-gguf", str(tiny["run"]), "--model", f"llamacpp/{tiny['gguf']}", "--output", str(out)]) == 0
    assert _read(out)[0]["adapter.type"] == "lora" and "wrote" in capsys.readouterr().out
    assert main(["tune", "export-gguf", str(tmp_path / "nowhere"), "--model", f"llamacpp/{tiny['gguf']}"]) == 2
    assert main(["tune", "export-gguf", str(tiny["run"]), "--model", "hf/x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "is not a folder" in err[0] and "--model must be llamacpp/" in err[1]
