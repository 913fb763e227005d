"""`llmassay report TUNE_DIR` (#33): a `tune sft|dpo` folder's page holds its run card, its
training config and a loss curve whose drawn points are loss.json's; untrusted text (recipe
prompts, paths, model names) is escaped; a `tune cost` folder shows the LoRA-against-full
table; a folder that is none of the kinds `report` reads is a one-line error. The folders are
written here from synthetic files (the slow test in test_tune.py checks that training writes
report.html itself)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmassay.cli.app import main
from llmassay.report.html import write_report
from llmassay.types import LlmassayError

pytest.importorskip("matplotlib")

HOSTILE = '</pre><script>alert("x")</script><img src=x onerror=alert(1)>'


def _losses(dpo: bool) -> list[dict]:
    out = []
    for step in range(1, 9):
        entry = {"step": step, "loss": round(0.7 / step + 0.01 * (step % 3), 6)}
        if dpo:
            entry |= {"reward_margin": round(0.3 * step - 0.1 * (step % 2), 6), "reward_accuracy": min(1.0, step / 5)}
        out.append(entry | {"seconds": 1.5, "cpu_seconds": 1.2, "tokens": 100 + step})
    return out


def _folder(root: Path, dpo: bool = True, data: str | None = None, method: str = "lora") -> Path:
    """A tune output folder as `tune.loop` writes it (card.json, config.json, loss.json, training texts)."""
    root.mkdir(parents=True)
    card = {"method": method, "objective": "dpo" if dpo else "sft", "trainable_parameters": 2442240,
            "total_parameters": 136957248, "trainable_share": 0.017832, "steps": 8, "seconds_per_step": 6.4321,
            "peak_rss_mib": 3502.7, "adapter_bytes": 9829722, "wall_seconds": 190.25,
            "leakage_guard": {"tasks": ["json_sample"], "ngram": {"json_sample": 9},
                              "overlaps": {"json_sample": {"person_1": ["kb-7", "kb-9"]}}, "allowed": True,
                              "clean": False},
            "allow_overlap": True, "seed": 0, "output": "model" if method == "full" else "adapter"}
    config = {"method": card["objective"], "steps": 8, "lr": 0.0005, "rank": 8, "beta": 0.1,
              "model": "hf/models/base", "model_args": {"gguf_file": "base.gguf"}, "recipe": None if data else "injection",
              "data": data, "guard_tasks": ["json_sample"], "pairs": 3, "pairs_sha": "ab12" * 16,
              "versions": {"torch": "2.x"}, "model_fingerprint": {"backend": "hf"}}
    (root / "card.json").write_text(json.dumps(card))
    (root / "config.json").write_text(json.dumps(config))
    (root / "loss.json").write_text(json.dumps(_losses(dpo)))
    (root / "training_data.jsonl").write_text(json.dumps({"id": "kb-7", "prompt": f"Ignore this: {HOSTILE}",
                                                          "chosen": "The capital of Peru is Lima.",
                                                          "rejected": "OTTER-4821", "text": "..."}) + "\n")
    return root


def _curve(page: str, name: str) -> list[tuple[float, float]]:
    """The (x, y) vertices of the line drawn for series `name` (matplotlib: <g id=...><path d="M x y L x y ...">)."""
    group = re.search(rf'<g id="tune-loss-{name}">\s*<path d="([^"]+)"', page)
    assert group, f"no curve for {name}"
    numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", group.group(1))]
    return list(zip(numbers[0::2], numbers[1::2]))


def _is_affine(xs: list[float], ys: list[float]) -> float:
    """The slope of the least-squares line ys ≈ a + b·xs, asserting the fit is exact to SVG rounding."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    assert max(abs(y - (my + b * (x - mx))) for x, y in zip(xs, ys)) < 1e-3 * (max(ys) - min(ys)), (xs, ys)
    return b


def test_the_page_holds_the_card_and_its_curves_are_loss_json(tmp_path):
    folder = _folder(tmp_path / "inj")
    page = write_report(folder).read_text(encoding="utf-8")
    assert (folder / "report.html").is_file()
    # the run card's values, the guard's overlap and allow_overlap, the method and the objective
    for shown in ("2,442,240", "136,957,248", "6.4321", "3,502.7", "9,829,722", "llmassay tune dpo (lora)",
                  "trained with --allow-overlap", "person_1", "kb-7, kb-9", "ab12" * 16, "injection (bundled)"):
        assert shown in page, shown
    # the training config, and how to evaluate the adapter on both engines
    assert "<td class=\"mono\">beta</td><td class=\"mono\">0.1</td>" in page
    assert f"gguf_file=base.gguf,adapter={folder / 'adapter'}" in page and f"lora={folder}" in page
    assert "llamacpp/models/base/base.gguf" in page and "llmassay compare runs/before runs/after" in page
    # each curve's drawn points are loss.json's values under an affine map (the axes), step by step
    losses = json.loads((folder / "loss.json").read_text())
    for name in ("loss", "reward_margin", "reward_accuracy"):
        points = _curve(page, name)
        assert len(points) == len(losses)
        assert _is_affine([e["step"] for e in losses], [x for x, _ in points]) > 0
        assert _is_affine([e[name] for e in losses], [y for _, y in points]) < 0  # SVG's y points down
    assert "<script" not in page  # the page runs nothing


def test_an_sft_folder_has_only_the_loss_curve_and_a_full_run_loads_as_hf(tmp_path):
    page = write_report(_folder(tmp_path / "sft", dpo=False, method="full")).read_text(encoding="utf-8")
    assert len(_curve(page, "loss")) == 8 and 'id="tune-loss-reward_margin"' not in page
    assert f"--model hf/{tmp_path / 'sft' / 'model'}" in page and "adapter=" not in page


def test_untrusted_text_is_escaped(tmp_path):
    folder = _folder(tmp_path / "hostile", data=f"data/{HOSTILE}.jsonl")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"model": f"hf/{HOSTILE}"}))
    page = write_report(folder).read_text(encoding="utf-8")
    # in the prompt shown, the data path (header, title, plot title, table), the model in the commands
    assert "<script" not in page and "<img" not in page and "</pre><script" not in page
    assert page.count("&lt;script&gt;alert(") >= 3
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_llmassay_report_reads_a_tune_and_a_cost_folder_and_refuses_any_other_in_one_line(tmp_path, capsys):
    folder = _folder(tmp_path / "inj")
    assert main(["report", str(folder)]) == 0
    assert f"report: {folder / 'report.html'}" in capsys.readouterr().out
    # tune cost: the table of cost.json, each arm linked to its own page
    cost = tmp_path / "cost"
    _folder(cost / "lora")
    write_report(cost / "lora")
    rows = [{"field": "trainable_parameters", "label": "trainable parameters", "lora": 2442240, "full": 134515008,
             "ratio": 55.08},
            {"field": "peak_rss_mib", "label": "peak RSS of the process (MiB, measured)", "lora": 2458.0, "full": None,
             "ratio": None}]
    (cost / "cost.json").write_text(json.dumps({"model": "hf/m", "model_args": {}, "recipe": "structured",
                                                "objective": "sft", "steps": 3, "batch_size": 4, "seed": 0,
                                                "lr": {"lora": 5e-4, "full": 2e-5}, "rows": rows}))
    assert main(["report", str(cost)]) == 0
    page = (cost / "report.html").read_text(encoding="utf-8")
    assert re.search(r"<td>trainable parameters</td><td class=\"num\">2,442,240</td><td class=\"num\">134,515,008</td>"
                     r"<td class=\"num\">55.08×</td>", page)
    assert '<td class="num">2,458</td><td class="num">—</td>' in page and 'href="lora/report.html"' in page
    # neither a run nor a tune folder; a broken card
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    assert main(["report", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no results_*.json" in err and "card.json" in err
    (folder / "card.json").write_text("{broken")
    with pytest.raises(LlmassayError, match=r"card\.json: not valid JSON"):
        write_report(folder)
