"""lm-eval's command-line spellings on `llmassay run`, translated to llmassay's own.

So that a user's `lm_eval --model hf --model_args pretrained=DIR --tasks … --num_fewshot 5
--batch_size auto --output_path out --log_samples` runs unchanged as `llmassay run …`:
the underscore spellings are aliases of the dashed flags (run.py); this module adds the
flags llmassay has no own spelling for and maps lm-eval's model types, `--device`,
`--gen_kwargs`, `--apply_chat_template` and `--batch_size auto` onto the run's settings.
Anything that cannot be mapped is a one-line usage error naming what is accepted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

from llmassay.backends.base import parse_model_args
from llmassay.types import LlmassayError

log = logging.getLogger("llmassay.cli")

DEFAULT_BATCH_SIZE = 64

# lm-eval 0.4's registered model names (lm_eval/models) that name one of llmassay's backends
HF_TYPES = ("hf", "hf-auto", "huggingface")
COMPLETIONS_TYPES = ("local-completions", "openai-completions")
CHAT_TYPES = ("local-chat-completions", "openai-chat-completions")
GGUF_TYPES = ("gguf", "ggml")  # lm-eval's client of a llama.cpp server (base_url)
LM_EVAL_TYPES = (*HF_TYPES, *COMPLETIONS_TYPES, *CHAT_TYPES, *GGUF_TYPES)

# lm-eval's API model args and what they are here (None: not needed, llmassay sends text)
API_ARGS = {"num_concurrent": "concurrency", "max_retries": "max_retries", "timeout": "timeout",
            "base_url": "base_url", "tokenizer_backend": None, "tokenized_requests": None, "tokenizer": None,
            "batch_size": None, "max_length": None, "max_gen_toks": None, "seed": None, "eos_string": None,
            "verify_certificate": None}

SECRET_NAME = re.compile(r"key|token|secret|password", re.IGNORECASE)
GEN_KWARGS = ("temperature", "max_gen_toks", "until", "do_sample")
VERBOSITY = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def limit_value(text: str) -> int | float:
    """--limit N, or a fraction 0 < f < 1 of each task (lm-eval: ceil(f × n)); 2.0 reads as 2.
    A number out of range is left for evaluate() to refuse in one line."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    return int(value) if math.isfinite(value) and value >= 1 else value


def batch_size_value(text: str) -> int:
    """--batch-size N, or lm-eval's `auto` / `auto:N`: the default, since the engine batches what it is given."""
    if text == "auto" or text.startswith("auto:"):
        return DEFAULT_BATCH_SIZE
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': give a positive integer, or auto") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}': give a positive integer, or auto")
    return value


def add_lmeval_only_flags(run: argparse.ArgumentParser) -> None:
    """lm-eval's flags that have no llmassay spelling of their own."""
    group = run.add_argument_group("lm-eval's flags (a `lm_eval …` command line runs as `llmassay run …`)")
    group.add_argument("--device", default=None, metavar="DEVICE",
                       help="lm-eval's --device (cuda, cuda:0, cpu, mps): passed to the backend as model arg "
                            "device= (a server's openai/ backend has none: ignored there, and said)")
    group.add_argument("--gen_kwargs", "--gen-kwargs", default=None, metavar="K=V,…",
                       help=f"lm-eval's generation settings for generation tasks: {', '.join(GEN_KWARGS)} "
                            "(k=v,… or JSON); others are refused by name")
    group.add_argument("--apply_chat_template", "--apply-chat-template", nargs="?", const=True, default=False,
                       metavar="TEMPLATE", help="free generation through the model's chat template, the bare prompt as "
                                        "the user turn (= -P accuracy.chat_template=on -P accuracy.chat_format=bare); "
                                        "without it llmassay's default is chat_template=auto; log-likelihood "
                                        "scoring always reads the raw prompt")
    group.add_argument("--log_samples", "--log-samples", "-s", action="store_true",
                       help="accepted for lm-eval command lines and does nothing: llmassay always writes every "
                            "sample (samples_<task>_*.jsonl; with --lm-eval-results also lm-eval's samples files)")
    group.add_argument("--verbosity", type=str.upper, choices=VERBOSITY, default=None, metavar="LEVEL",
                       help="lm-eval's log level (CRITICAL, ERROR, WARNING, INFO, DEBUG); same as -q / -v")


@dataclass
class Translated:
    """The run's settings once lm-eval's spellings are mapped."""

    model: str
    model_args: dict[str, Any]
    temperature: float
    generation_kwargs: dict[str, Any] | None = None
    probe_options: dict[str, str] = field(default_factory=dict)


def translate(args: argparse.Namespace, probes: list[str]) -> Translated:
    """--model / --model_args / --device / --gen_kwargs / --apply_chat_template → llmassay's settings."""
    model_args = _model_args(args.model_args)
    model, model_args, chat = _model(args.model, model_args)
    if model != args.model:
        shown = ",".join(f"{k}={'[redacted]' if SECRET_NAME.search(k) else v}" for k, v in model_args.items())
        log.info("--model %s runs as --model %s%s", args.model, model, f" --model-args {shown}" if shown else "")
    if args.device:
        if args.model_args and "device" in model_args and model_args["device"] != args.device:
            raise LlmassayError(f"--device {args.device} and --model-args device={model_args['device']} disagree: "
                                "give one")
        if model.startswith("openai/"):
            log.info("--device %s: ignored, openai/ models run on their server", args.device)
        else:
            model_args["device"] = args.device
    temperature, generation = _gen_kwargs(args.gen_kwargs, args.temperature)
    options = {}
    template = args.apply_chat_template or chat
    if isinstance(template, str):
        raise LlmassayError(f"--apply_chat_template {template}: a named template is not supported; the model's own "
                            "chat template is used (give --apply_chat_template without a name)")
    if template:
        if "accuracy" not in probes:
            raise LlmassayError("--apply_chat_template sets the accuracy probe's chat options and --probe has no "
                                "accuracy; use -P PROBE.chat_template=on for "
                                f"{', '.join(probes)}")
        options = {"accuracy.chat_template": "on", "accuracy.chat_format": "bare"}
    return Translated(model, model_args, temperature, generation, options)


def _model_args(text: str) -> dict[str, Any]:
    """k=v,… (llmassay and lm-eval) or lm-eval's JSON object form."""
    if text.strip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LlmassayError(f"--model-args: not valid JSON ({exc.msg} at character {exc.pos})") from None
        if not isinstance(value, dict):
            raise LlmassayError("--model-args: JSON must be an object of key: value")
        return value
    return parse_model_args(text)


def _model(model: str, args: dict[str, Any]) -> tuple[str, dict[str, Any], bool]:
    """KIND/NAME as is; lm-eval's model types mapped (the spec, its args, whether chat endpoints are meant)."""
    if "/" in model:
        return model, args, False
    args = dict(args)
    if model in HF_TYPES:
        pretrained = args.pop("pretrained", None)
        if not pretrained:
            raise LlmassayError(f"--model {model}: give the model as --model_args pretrained=DIR (or --model hf/DIR)")
        return f"hf/{pretrained}", args, False
    if model in COMPLETIONS_TYPES or model in CHAT_TYPES:
        name = args.pop("model", None)
        if not name:
            raise LlmassayError(f"--model {model}: give the served model as --model_args model=NAME,base_url=URL "
                                "(or --model openai/NAME)")
        mapped = _api_args(model, args)
        if "base_url" in mapped:  # lm-eval's base_url is the endpoint; llmassay's the API root (…/v1)
            url = str(mapped["base_url"]).rstrip("/")
            for endpoint in ("/chat/completions", "/completions"):
                url = url[: -len(endpoint)] if url.endswith(endpoint) else url
            mapped["base_url"] = url
        return f"openai/{name}", mapped, model in CHAT_TYPES
    if model in GGUF_TYPES:
        url = args.pop("base_url", None)
        if not url:
            raise LlmassayError(f"--model {model}: give the llama.cpp server as --model_args base_url=URL")
        name = args.pop("model", "gguf")
        return f"openai/{name}", {**_api_args(model, args), "base_url": str(url).rstrip("/") + "/v1"}, False
    raise LlmassayError(
        f"--model {model}: expected KIND/NAME (llamacpp/FILE.gguf, hf/DIR, openai/MODEL) "
        f"or one of lm-eval's model types {', '.join(LM_EVAL_TYPES)} with its --model_args"
    )


def _api_args(model: str, args: dict[str, Any]) -> dict[str, Any]:
    out, ignored = {}, []
    for key, value in args.items():
        if key in ("api_key", "auth_token"):  # lm-eval takes a key here; its value is never echoed
            raise LlmassayError(f"--model_args {key}: a key on the command line shows in ps and shell history; "
                                "put it in an environment variable and give api_key_env=NAME (OPENAI_API_KEY)")
        if key in API_ARGS and API_ARGS[key] is None:
            ignored.append(key)
        else:
            out[API_ARGS.get(key) or key] = value  # anything else: the openai backend names it if unknown
    if ignored:
        log.info("--model %s: model args %s ignored (llmassay sends text and counts tokens from the server's "
                 "answers)", model, ", ".join(ignored))
    return out


def _gen_kwargs(text: str | None, temperature: float | None) -> tuple[float, dict[str, Any] | None]:
    """--gen_kwargs → (the run's temperature, the tasks' until / max_gen_toks overrides)."""
    if not text:
        return (temperature or 0.0), None
    try:
        given = _model_args(text)
    except LlmassayError as exc:
        raise LlmassayError(str(exc).replace("--model-args", "--gen_kwargs", 1)) from None
    unknown = [k for k in given if k not in GEN_KWARGS]
    if unknown:
        raise LlmassayError(f"--gen_kwargs: {', '.join(unknown)} not supported (supported: {', '.join(GEN_KWARGS)})")
    if "temperature" in given:
        value = given["temperature"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LlmassayError(f"--gen_kwargs: temperature must be a number, not {value!r}")
        if temperature is not None and float(temperature) != float(value):
            raise LlmassayError(f"--gen_kwargs temperature={value} and --temperature {temperature} disagree: give one")
        temperature = float(value)
    sample = given.get("do_sample")
    if sample is not None:
        if not isinstance(sample, bool):
            raise LlmassayError(f"--gen_kwargs: do_sample must be true or false, not {sample!r}")
        if sample and not temperature:
            raise LlmassayError("--gen_kwargs do_sample=true: give temperature=T > 0 as well (llmassay samples "
                                "when the temperature is above 0)")
        if not sample and temperature:
            raise LlmassayError(f"--gen_kwargs do_sample=false and temperature={temperature} disagree: greedy "
                                "decoding is temperature 0")
    overrides: dict[str, Any] = {}
    if "max_gen_toks" in given:
        value = given["max_gen_toks"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LlmassayError(f"--gen_kwargs: max_gen_toks must be a positive integer, not {value!r}")
        overrides["max_gen_toks"] = value
    if "until" in given:
        until = given["until"]
        until = [until] if isinstance(until, str) else until
        if not isinstance(until, list) or not all(isinstance(u, str) for u in until):
            raise LlmassayError("--gen_kwargs: until must be a string or a list of strings (JSON form)")
        overrides["until"] = until
    return (temperature or 0.0), overrides or None
