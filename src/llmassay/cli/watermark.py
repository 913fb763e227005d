"""`llmassay watermark generate|detect|null|zeroshot`: argument wiring and output only; the
work is in `llmassay.watermark` (imported lazily). The key never needs the command line:
`--key-env VAR` or `--key-file FILE` (`--key` still works, with a warning)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from llmassay.jsonlines import json_lines
from llmassay.terminal import stdout_console as _stdout
from llmassay.types import LlmassayError

DEFAULT_OUTPUT_DIR = Path("runs/watermark")


def add_watermark_commands(sub: Any) -> None:
    wm = sub.add_parser("watermark", help="green-list watermark: detect it from the tokenizer alone, calibrate its null")
    kinds = wm.add_subparsers(dest="watermark_command", required=True)
    gen = kinds.add_parser("generate", help="watermarked text from a local model (llamacpp/ or hf/), one per prompt")
    gen.add_argument("--model", required=True, help="e.g. llamacpp/smollm2-135m or hf/<local dir>")
    gen.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the backend")
    _key_args(gen)
    gen.add_argument("--prompts", required=True, help="JSONL with a prompt field per line, or a text file (one prompt per line)")
    gen.add_argument("--prompt-field", default="prompt", help="JSONL field holding the prompt (a dotted path; default prompt)")
    _scheme_args(gen, tokenizer=False)
    gen.add_argument("--delta", type=float, default=2.0, help="logit bias added to green tokens (default 2.0)")
    gen.add_argument("--max-tokens", type=int, default=200, help="tokens per text (default 200)")
    gen.add_argument("--temperature", type=float, default=0.7, help="sampling temperature; 0 is greedy (default 0.7)")
    gen.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    gen.add_argument("--prompt-format", default="chat", choices=("chat", "raw"),
                     help="chat: the model's chat template, when it has one (default); raw: the prompt as text")
    gen.add_argument("--output", default=None, help="JSONL of prompt and text (default runs/watermark/generate_<prompts>.jsonl)")
    detect = kinds.add_parser("detect", help="z-score, p-value and green fraction of each text (no model weights)")
    detect.add_argument("file", help="JSONL with a text field per line (a run's samples file too), or a plain text file (one text)")
    _key_args(detect)
    _scheme_args(detect)
    detect.add_argument("--text-field", default="text",
                        help="JSONL field holding the text, a dotted path for nested fields (the watermark probe's "
                             "samples: texts.marked_sampled; default text)")
    detect.add_argument("--fpr", type=float, default=1e-3, help="false-positive rate of the per-length threshold (default 1e-3)")
    detect.add_argument("--output", default=None, help="JSON results (default runs/watermark/detect_<file>.json)")
    null = kinds.add_parser("null", help="empirical false-positive rate: human text under many random keys")
    _scheme_args(null)
    null.add_argument("--keys", type=int, default=1000, help="random keys (default 1000)")
    null.add_argument("--window", type=int, default=200, help="scored tokens per text (default 200)")
    null.add_argument("--text", default=None, help="human text file (default: the bundled News from Nowhere)")
    null.add_argument("--output", default=None, help="JSON summary (default runs/watermark/null.json)")
    zs = kinds.add_parser("zeroshot", help="zero-shot detectors (likelihood, log-rank, Fast-DetectGPT) under a scoring model")
    zs.add_argument("file", help="JSONL with a text field per line (and optionally a label: machine or human)")
    zs.add_argument("--model", required=True, help="scoring model, e.g. llamacpp/smollm2-135m (logrank, fastdetectgpt: llamacpp/ or hf/)")
    zs.add_argument("--model-args", default="", help="k=v,k2=v2 passed to the backend")
    zs.add_argument("--baseline", default="likelihood,logrank,fastdetectgpt", help="detectors, comma-separated")
    zs.add_argument("--text-field", default="text", help="JSONL field holding the text (default text)")
    zs.add_argument("--label-field", default="label", help="JSONL field: machine or human; absent on every line: all "
                    "texts are machine and human spans of the same lengths come from the bundled News from Nowhere")
    zs.add_argument("--seed", type=int, default=0, help="seed of the human spans and the bootstrap (default 0)")
    zs.add_argument("--no-cache", action="store_true", help="bypass the request cache")
    zs.add_argument("--cache-path", default=None, help="SQLite cache file (default ~/.cache/llmassay/cache.sqlite)")
    zs.add_argument("--output", default=None, help="JSON results (default runs/watermark/zeroshot_<file>.json)")


def _key_args(parser: argparse.ArgumentParser) -> None:
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--key-env", metavar="VAR", help="environment variable holding the watermark key")
    key.add_argument("--key-file", metavar="FILE", help="file holding the watermark key (one trailing newline dropped)")
    key.add_argument("--key", help="the key itself: visible in the process list, so a warning (prefer --key-env)")


def _scheme_args(parser: argparse.ArgumentParser, tokenizer: bool = True) -> None:
    if tokenizer:
        parser.add_argument("--tokenizer", required=True, help="llamacpp/<model or .gguf> (vocabulary only) or hf/<local dir>")
    parser.add_argument("--scheme", default="selfhash", choices=("prev", "selfhash"), help="seeding scheme (default selfhash)")
    parser.add_argument("--h", type=int, default=4, help="selfhash window in tokens, the token included (default 4)")
    parser.add_argument("--gamma", type=float, default=0.25, help="green share of the vocabulary (default 0.25)")


def run_watermark_command(args: argparse.Namespace) -> None:
    if args.watermark_command == "generate":
        _generate(args)
    elif args.watermark_command == "detect":
        _detect(args)
    elif args.watermark_command == "zeroshot":
        _zeroshot(args)
    else:
        _null(args)


def field_at(record: Any, path: str) -> Any:
    """`record[path]`, or for a dotted path the nested field (`texts.marked_sampled`); a key
    that itself holds a dot is read whole first. None when absent."""
    if not isinstance(record, dict):
        return None
    if path in record:
        return record[path]
    head, dot, rest = path.partition(".")
    return field_at(record.get(head), rest) if dot else None


def read_texts(path: Path, field: str) -> list[str]:
    """JSONL (`.jsonl`, or a first line that is a JSON object) → its `field` (a dotted path)
    per line; anything else is one text."""
    raw = _read(path)
    first = raw.lstrip()[:1]
    if path.suffix != ".jsonl" and first != "{":
        return [raw]
    texts = []
    for where, _, record in json_lines(raw, path):
        value = field_at(record, field)
        if not isinstance(value, str):
            raise LlmassayError(f"{where}: no string field '{field}'")
        texts.append(value)
    if not texts:
        raise LlmassayError(f"{path}: no texts")
    return texts


def read_prompts(path: Path, field: str) -> list[str]:
    """JSONL → its `field` per line; a text file → one prompt per non-empty line."""
    raw = _read(path)
    if path.suffix == ".jsonl" or raw.lstrip()[:1] == "{":
        return read_texts(path, field)
    prompts = [line for line in raw.splitlines() if line.strip()]
    if not prompts:
        raise LlmassayError(f"{path}: no prompts")
    return prompts


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmassayError(f"{path}: cannot read ({exc})") from None


def _key(args: argparse.Namespace) -> str:
    from llmassay.watermark.keys import read_key

    return read_key(args.key_env, args.key_file, args.key)


def _config(args: argparse.Namespace, key: str) -> Any:
    from llmassay.watermark import WatermarkConfig

    return WatermarkConfig(key, gamma=args.gamma, scheme=args.scheme, h=args.h)


def _generate(args: argparse.Namespace) -> None:
    from llmassay.backends.base import load_backend, parse_model_args
    from llmassay.backends.chat import is_chat_model
    from llmassay.engine.engine import Engine
    from llmassay.watermark import WatermarkConfig
    from llmassay.watermark.generate import generate_watermarked

    if args.max_tokens < 1 or args.temperature < 0:
        raise LlmassayError("--max-tokens must be at least 1 and --temperature at least 0")
    path = Path(args.prompts)
    prompts = read_prompts(path, args.prompt_field)
    wm = WatermarkConfig(_key(args), gamma=args.gamma, delta=args.delta, scheme=args.scheme, h=args.h)
    model_args = parse_model_args(args.model_args)
    backend = load_backend(args.model, **model_args)
    chat = args.prompt_format == "chat" and is_chat_model(backend, args.model, model_args)
    # No request cache: its keys are hashes over the request, the key included.
    texts = generate_watermarked(Engine(backend), prompts, wm, chat, args.max_tokens, args.temperature, args.seed)
    out = Path(args.output) if args.output else DEFAULT_OUTPUT_DIR / f"generate_{path.stem}.jsonl"
    _write_text(out, "".join(json.dumps({"prompt": p, "text": t}, ensure_ascii=False) + "\n" for p, t in zip(prompts, texts)))
    _stdout().print(f"{len(texts)} watermarked texts ({wm.scheme}, h {wm.h}, gamma {wm.gamma:g}, delta {wm.delta:g}, "
                    f"{'chat template' if chat else 'raw prompts'}, temperature {args.temperature:g}): wrote {out}",
                    markup=False, soft_wrap=True)


def _detect(args: argparse.Namespace) -> None:
    from llmassay.watermark import detect_ids, flagged, z_threshold
    from llmassay.watermark.tokenizers import load_tokenizer

    if not 0 < args.fpr < 1:
        raise LlmassayError(f"--fpr {args.fpr} must lie strictly between 0 and 1")
    path = Path(args.file)
    texts = read_texts(path, args.text_field)
    cfg = _config(args, _key(args))
    tok = load_tokenizer(args.tokenizer)
    rows = []
    for i, text in enumerate(texts):
        d = detect_ids(tok.encode(text), cfg)
        threshold = z_threshold(d.n_scored, cfg.gamma, args.fpr)  # to reach: flagged means z >= it
        rows.append({"index": i, **d.as_dict(), "threshold_z": threshold,
                     "watermarked": flagged(d, cfg.gamma, args.fpr)})
    out = Path(args.output) if args.output else DEFAULT_OUTPUT_DIR / f"detect_{path.stem}.json"
    record = {"file": str(path), "text_field": args.text_field, "tokenizer": args.tokenizer, "scheme": cfg.scheme, "h": cfg.h, "gamma": cfg.gamma,
              "fpr": args.fpr, "texts": rows}
    _write(out, record)
    table = Table(title=f"watermark detect {path.name} ({cfg.scheme}, gamma {cfg.gamma}, FPR {args.fpr:g})")
    for column in ("#", "tokens", "green", "z", "p", "z (all positions)", "z needed", "watermarked"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["index"]), str(r["n_scored"]), f"{r['green_fraction']:.3f}", f"{r['z']:.2f}",
                      f"{r['p_value']:.2g}", f"{r['z_all']:.2f}", f"{r['threshold_z']:.2f}", "yes" if r["watermarked"] else "no")
    _stdout().print(table)
    _stdout().print(f"wrote {out}", markup=False, soft_wrap=True)


def _null(args: argparse.Namespace) -> None:
    from llmassay.watermark.null import human_text, null_zscores
    from llmassay.watermark.tokenizers import load_tokenizer

    if args.keys < 1 or args.window < 1:
        raise LlmassayError("--keys and --window must be at least 1")
    text = read_texts(Path(args.text), "text")[0] if args.text else human_text()
    tok = load_tokenizer(args.tokenizer)
    try:
        cal = null_zscores(tok.encode(text), _config(args, "unused"), n_keys=args.keys, window=args.window)
    except ValueError as exc:
        raise LlmassayError(f"watermark null: {exc}") from None
    summary = {"tokenizer": args.tokenizer, "scheme": args.scheme, "h": args.h, "gamma": args.gamma, **cal.summary()}
    out = Path(args.output) if args.output else DEFAULT_OUTPUT_DIR / "null.json"
    _write(out, summary)
    fpr, fpr_all = summary["fpr"], summary["fpr_all_positions"]
    _stdout().print(
        f"{summary['n_z']} null z-scores ({args.keys} keys x {cal.n_windows} windows of {args.window} tokens): "
        f"FPR at z > 4 = {fpr['value']:.2g} [{fpr['ci_low']:.2g}, {fpr['ci_high']:.2g}] "
        f"(all positions: {fpr_all['value']:.2g} [{fpr_all['ci_low']:.2g}, {fpr_all['ci_high']:.2g}]); "
        f"theory {summary['theoretical_fpr']:.2g}; z sd {summary['z_sd']:.3f} (all positions {summary['z_all_sd']:.3f})",
        markup=False, soft_wrap=True,
    )
    _stdout().print(f"wrote {out}", markup=False, soft_wrap=True)


LABELS = {"machine": True, "model": True, "human": False}


def read_labelled(path: Path, text_field: str, label_field: str) -> tuple[list[str], list[bool] | None]:
    """Texts and, when every line has one, their labels (True: machine); a label on only
    some lines, or an unknown one, is an error naming the line."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LlmassayError(f"{path}: cannot read ({exc})") from None
    texts, labels = [], []
    for where, _, record in json_lines(raw, path):
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str) or not record[text_field].strip():
            raise LlmassayError(f"{where}: no non-empty string field '{text_field}'")
        label = record.get(label_field)
        if label is not None and str(label).lower() not in LABELS:
            raise LlmassayError(f"{where}: {label_field} {label!r} is not one of {', '.join(LABELS)}")
        texts.append(record[text_field])
        labels.append(None if label is None else LABELS[str(label).lower()])
    if not texts:
        raise LlmassayError(f"{path}: no texts")
    if all(x is None for x in labels):
        return texts, None
    if any(x is None for x in labels):
        raise LlmassayError(f"{path}:{labels.index(None) + 1}: no '{label_field}' (label every line or none)")
    return texts, [bool(x) for x in labels]


def _zeroshot(args: argparse.Namespace) -> None:
    from llmassay.backends.base import load_backend, parse_model_args
    from llmassay.engine.cache import RequestCache
    from llmassay.engine.engine import Engine
    from llmassay.home import llmassay_home
    from llmassay.watermark.null import human_text
    from llmassay.watermark.zeroshot import BASELINES, DETECTORS, compare, human_spans

    detectors = [d.strip() for d in args.baseline.split(",") if d.strip()]
    bad = [d for d in detectors if d not in DETECTORS]
    if bad or not detectors:
        raise LlmassayError(f"--baseline {args.baseline!r}: choose from {', '.join(BASELINES)}")
    path = Path(args.file)
    texts, labels = read_labelled(path, args.text_field, args.label_field)
    if labels is None:
        machine = texts
        human = human_spans(human_text(), [len(t) for t in texts], seed=args.seed)
        source = "News from Nowhere (William Morris, 1890; public domain), spans as long as the machine texts"
    else:
        machine = [t for t, m in zip(texts, labels) if m]
        human = [t for t, m in zip(texts, labels) if not m]
        source = str(path)
        if not machine or not human:
            raise LlmassayError(f"{path}: labels must include both machine and human texts")
    cache = None if args.no_cache else RequestCache(args.cache_path or llmassay_home() / "cache.sqlite")
    engine = Engine(load_backend(args.model, **parse_model_args(args.model_args)), cache=cache)
    result = compare(engine, machine, human, detectors, seed=args.seed)
    out = Path(args.output) if args.output else DEFAULT_OUTPUT_DIR / f"zeroshot_{path.stem}.json"
    record = {"file": str(path), "model": args.model, "human_text": source, "n_machine": len(machine),
              "n_human": len(human), "auroc": result["auroc"],
              "texts": [{"label": "machine" if i < len(machine) else "human",
                         **{d: result["scores"][d][i] for d in detectors}} for i in range(len(machine) + len(human))]}
    _write(out, record)
    table = Table(title=f"zero-shot detection under {args.model}: {len(machine)} machine vs {len(human)} human texts")
    for column in ("detector", "AUROC", "95 % CI"):
        table.add_column(column, justify="right")
    for d in detectors:
        m = result["auroc"][d]
        table.add_row(d, f"{m['value']:.3f}", f"[{m['ci_low']:.3f}, {m['ci_high']:.3f}]")
    _stdout().print(table)
    _stdout().print(f"wrote {out}", markup=False, soft_wrap=True)


def _write(path: Path, record: dict[str, Any]) -> None:
    _write_text(path, json.dumps(record, indent=1))


def _write_text(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise LlmassayError(f"{path}: cannot write ({exc})") from None
