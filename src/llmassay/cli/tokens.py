"""`llmassay tokens premium|glitch`: argument wiring and output only; the work is in
`llmassay.tokens` (imported lazily, so `llmassay --help` stays light)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.table import Table

from llmassay.cli.spelling import output_option
from llmassay.terminal import stdout_console as _stdout
from llmassay.types import LlmassayError

SOURCES = ("udhr", "names", "both")


def add_tokens_commands(sub: Any) -> None:
    tokens = sub.add_parser("tokens", help="tokenizer probes: per-language token premium, under-trained tokens")
    kinds = tokens.add_subparsers(dest="tokens_command", required=True)

    premium = kinds.add_parser("premium", help="tokens per char/word and premium vs English on parallel text")
    premium.add_argument("--tokenizer", nargs="+", required=True, metavar="SPEC",
                         help="llamacpp/ALIAS|PATH, hf-gguf/ALIAS|PATH, hf/DIR, tiktoken/ENCODING")
    premium.add_argument("--parallel", default=None, metavar="FILE.jsonl",
                         help='your parallel text: one JSON object per line, {"en": …, "de": …}')
    premium.add_argument("--source", default="both", choices=SOURCES,
                         help="bundled text when --parallel is not given: UDHR articles, country names, or both")
    premium.add_argument("--tokens-per-second", type=float, default=None, help="for seconds per 1k characters")
    premium.add_argument("--price-per-mtok", type=float, default=None, help="for cost per 1k characters")
    premium.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    output_option(premium, "--output-path", "--output-dir", default="runs/tokens",
                  help="premium_<source>.json and .png go here")

    glitch = kinds.add_parser("glitch", help="under-trained tokens: weight indicator, then repeat-prompt confirmation")
    glitch.add_argument("--model", required=True, help="llamacpp/ALIAS|PATH.gguf")
    glitch.add_argument("--max-confirm", type=int, default=100, help="most suspicious candidates to confirm")
    glitch.add_argument("--controls", type=int, default=20, help="random non-candidate tokens to test alike")
    glitch.add_argument("--share", type=float, default=0.02, help="share of eligible tokens that are candidates")
    glitch.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    glitch.add_argument("--seed", type=int, default=0)
    output_option(glitch, "--output-path", "--output-dir", default="runs/tokens", help="glitch_<model>.json goes here")

    strategies = kinds.add_parser("strategies", help="the strategies probe across runs: markdown table, cost–accuracy grid")
    strategies.add_argument("runs", nargs="+", metavar="RUN", help="run folders (--output-path) or results_*.json files")
    strategies.add_argument("--plot", default=None, metavar="FILE.png", help="write the grid: a row per model, a column per task")
    strategies.add_argument("--project", type=int, default=None, metavar="ITEMS",
                            help="also the tokens (and hours, with the rates) a run of ITEMS items per task needs")
    strategies.add_argument("--decode-tps", type=float, default=None, help="generated tokens per second, for --project")
    strategies.add_argument("--prefill-tps", type=float, default=None, help="prompt tokens per second, for --project")


def run_tokens_command(args: argparse.Namespace) -> None:
    if args.tokens_command == "premium":
        _premium(args)
    elif args.tokens_command == "strategies":
        _strategies(args)
    else:
        _glitch(args)


def _premium(args: argparse.Namespace) -> None:
    from llmassay.tokens.parallel import bundled_parallel, country_names, read_parallel
    from llmassay.tokens.plots import premium_plot
    from llmassay.tokens.premium import measure_premium
    from llmassay.tokens.tokenizers import load_tokenizer

    if args.tokens_per_second is not None and args.tokens_per_second <= 0:
        raise LlmassayError("--tokens-per-second must be positive")
    if args.parallel:  # the text is checked before any tokenizer loads
        texts = [read_parallel(args.parallel)]
    else:
        texts = ([bundled_parallel()] if args.source in ("udhr", "both") else []) + (
            [country_names()] if args.source in ("names", "both") else [])
    tokenizers = [load_tokenizer(spec) for spec in args.tokenizer]
    out = Path(args.output_path)
    out.mkdir(parents=True, exist_ok=True)
    for text in texts:
        table = measure_premium(text, tokenizers, args.tokens_per_second, args.price_per_mtok, args.seed)
        (out / f"premium_{text.name}.json").write_text(json.dumps(table.as_dict(), indent=1))
        plot = premium_plot(table, out / f"premium_{text.name}.png")
        _print_premium(table)
        _stdout().print(f"wrote {out / f'premium_{text.name}.json'} and {plot}", markup=False, soft_wrap=True)


def _ci(m: Any) -> str:
    if m is None:
        return "—"
    if m.ci_low != m.ci_low:  # NaN: a single item
        return f"{m.value:.2f} (n=1)"
    return f"{m.value:.2f} [{m.ci_low:.2f}, {m.ci_high:.2f}]"


def _print_premium(table: Any) -> None:
    t = Table(title=f"token premium vs English — {table.source} (95 % bootstrap CI over items)")
    extra = [c for c, v in (("s / 1k chars", table.tokens_per_second), ("cost / 1k chars", table.price_per_mtok))
             if v is not None]
    for col in ("tokenizer", "lang", "items", "premium", "tokens/char", "tokens/word", "tokens/1k chars", *extra):
        t.add_column(col)
    for r in table.rows:
        cells = [r.tokenizer, r.language, str(r.n_items), _ci(r.premium), _ci(r.tokens_per_char),
                 _ci(r.tokens_per_word), f"{r.tokens_per_1k_chars:.0f}"]
        if table.tokens_per_second is not None:
            cells.append(f"{r.seconds_per_1k_chars:.2f}")
        if table.price_per_mtok is not None:
            cells.append(f"{r.cost_per_1k_chars:.6f}")
        t.add_row(*cells)
    _stdout().print(t)


def _glitch(args: argparse.Namespace) -> None:
    from llmassay.models import resolve_model_path
    from llmassay.tokens.glitch import find_glitch_tokens, frequent_tokens
    from llmassay.tokens.gguf_vocab import read_vocab
    from llmassay.tokens.parallel import ENGLISH, bundled_parallel, country_names
    from llmassay.tokens.repeat import LlamaCppProber

    kind, sep, name = args.model.partition("/")
    if kind != "llamacpp" or not name:
        raise LlmassayError(f"--model {args.model}: glitch reads a GGUF file; use llamacpp/ALIAS or llamacpp/PATH.gguf")
    if not 0 < args.share < 1:
        raise LlmassayError("--share must be between 0 and 1")
    path = resolve_model_path(name)
    vocab = read_vocab(path)
    prober = LlamaCppProber(str(path), n_threads=args.threads)
    english = [item[ENGLISH] for t in (bundled_parallel(), country_names()) for item in t.items]
    encode = lambda s: prober.llm.tokenize(s.encode(), add_bos=False, special=False)  # noqa: E731
    report = find_glitch_tokens(vocab, prober, args.max_confirm, args.controls, frequent_tokens(encode, english),
                                args.seed, args.share)
    out = Path(args.output_path)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"glitch_{Path(name).stem}.json"
    target.write_text(json.dumps(report.as_dict(), indent=1, ensure_ascii=False))
    console = _stdout()
    console.print(f"{report.model}: {'tied' if report.tied else 'untied'} embeddings; indicator: {report.indicator}; "
                  f"reference: {report.reference}; {report.n_candidates} candidates of {report.n_eligible}",
                  markup=False, soft_wrap=True)
    for title, rows in (("candidates checked", report.checked), ("random controls", report.controls)):
        t = Table(title=f"{title} (strong: p < 0.001, weak: p < 0.1)")
        for col in ("rank", "id", "token", "indicator", "max p(repeat)", "verdict"):
            t.add_column(col)
        for f in rows:
            t.add_row(str(f.rank), str(f.id), f.token, f"{f.score:.3f}", f"{f.max_prob:.2g}", f.verdict)
        console.print(t)
    counts = {v: sum(f.verdict == v for f in report.checked) for v in ("strong", "weak", "not confirmed")}
    console.print(f"confirmed among {len(report.checked)} checked: {counts}; planted checks: {report.planted}",
                  markup=False, soft_wrap=True)
    if report.planted.get("frequent_not_flagged") is False:
        console.print(f"warning: {report.planted['frequent_flagged']} of the {report.planted['frequent_tokens']} most "
                      "frequent tokens are candidates: the indicator does not separate under-trained tokens in this "
                      "model", markup=False, soft_wrap=True)
    console.print(f"wrote {target}", markup=False, soft_wrap=True)


def _strategies(args: argparse.Namespace) -> None:
    from llmassay.tokens.strategy_runs import cost_accuracy_png, load_panels, markdown_table, projection

    panels = load_panels(args.runs)
    _stdout().print(markdown_table(panels), markup=False, soft_wrap=True, highlight=False)
    if args.project is not None:
        if args.project < 1 or any(v is not None and v <= 0 for v in (args.decode_tps, args.prefill_tps)):
            raise LlmassayError("--project, --decode-tps and --prefill-tps must be positive")
        _stdout().print("\n" + projection(panels, args.project, args.decode_tps, args.prefill_tps), markup=False,
                        soft_wrap=True, highlight=False)
    if args.plot:
        _stdout().print(f"wrote {cost_accuracy_png(panels, Path(args.plot))}", markup=False, soft_wrap=True)
