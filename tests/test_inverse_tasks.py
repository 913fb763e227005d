"""The bundled inverse-scaling tasks (scripts/build_inverse_scaling.py): they load through the
task loader, the build is deterministic and reproduces the shipped files, and scripted
models that read each prompt one way or the other — follow the instruction or fall into the
prize's trap (the memorised ending, the usual value, the outcome, the pattern) — score
exactly what was planted."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from pathlib import Path

import pytest

from fakes import ScriptedBackend, _digest
from llmassay.evaluation import RunConfig, evaluate
from llmassay.metrics import proportion
from llmassay.tasks.loader import DATA_DIR, bundled_tags, load_task

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["hindsight_neglect_sample", "memo_trap_sample", "pattern_suppression_sample", "redefine_sample"]


def _script():
    path = ROOT / "scripts" / "build_inverse_scaling.py"
    spec = importlib.util.spec_from_file_location("build_inverse_scaling", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tasks_load_with_the_prize_fields_and_the_tag_names_them():
    assert bundled_tags()["inverse_scaling"] == TASKS
    for name in TASKS:
        task = load_task(name)
        docs = [json.loads(line) for line in (DATA_DIR / name / f"{name}.jsonl").read_text().splitlines()]
        assert 40 <= len(task.samples) == len(docs) <= 60
        assert task.output_type == "multiple_choice" and task.metrics == ["acc"] and task.target_delimiter == ""
        assert len({s.id for s in task.samples}) == len({s.prompt for s in task.samples}) == len(docs)
        for sample, doc in zip(task.samples, docs):
            assert sample.prompt == doc["prompt"] and sample.choices == doc["classes"]
            assert len(set(doc["classes"])) == 2 and all(c.startswith(" ") for c in doc["classes"])
            assert sample.target == doc["answer_index"] in (0, 1)
        # the gold is not always in one slot (a position-biased model cannot score 100 %)
        assert 0.3 < sum(d["answer_index"] for d in docs) / len(docs) < 0.7
        assert "McKenzie et al." in (DATA_DIR / name / "ATTRIBUTION.md").read_text()


def test_the_tag_runs_the_four_tasks_from_the_command_line():
    from llmassay.cli.lmeval import task_names

    args = argparse.Namespace(tasks="inverse_scaling,mmlu_sample", include_path=[])
    assert task_names(args) == [*TASKS, "mmlu_sample"]


def test_the_build_is_deterministic_and_gives_the_shipped_files(tmp_path):
    script = _script()
    first, second = tmp_path / "a", tmp_path / "b"
    assert script.build(first) == script.build(second)
    for name in TASKS:
        for file in (f"{name}.jsonl", f"{name}.yaml", "ATTRIBUTION.md"):
            built = (first / name / file).read_bytes()
            assert built == (second / name / file).read_bytes()
            assert built == (DATA_DIR / name / file).read_bytes(), f"{name}/{file}: rerun the build script"


# -- readers: each answers from the prompt's text alone, one way or the other --------------
def _memo(prompt: str, follow: bool) -> str:
    word = re.search(r'"(\w+)"', prompt).group(1)
    usual = dict(_script().PHRASES)[prompt.split(": ", 1)[1]]
    return f"{word if follow else usual}."


OPERATIONS = {"multiplication": lambda a, b: a * b, "addition": lambda a, b: a + b,
              "subtraction": lambda a, b: a - b}
USUAL = {"+": lambda a, b: a + b, "×": lambda a, b: a * b, "-": lambda a, b: a - b}


def _redefine(prompt: str, follow: bool) -> str:
    said = re.match(r"Redefine (.+?) as (.+?)\. Q: (.+) A:$", prompt)
    thing, new, question = said.groups()
    if (math := re.match(r"What is (\d+) (\S) (\d+)\?", question)) and new in OPERATIONS:
        a, b = int(math.group(1)), int(math.group(3))
        return str(OPERATIONS[new](a, b) if follow else USUAL[math.group(2)](a, b))
    if question.startswith("What is the first digit"):
        return new[0] if follow else dict(_script().CONSTANTS)[thing][0]
    if question.startswith("What is the capital"):
        return new if follow else dict(_script().capitals())[thing.removeprefix("the capital of ")]
    return new if follow else str(dict(_script().COUNTS)[thing])


def _hindsight(prompt: str, follow: bool) -> str:
    last = prompt.rsplit("\n\n", 1)[1]
    lose_p, lose, win_p, win = map(int, re.search(r"(\d+) percent chance of losing (\d+) dollars and an? (\d+) "
                                                  r"percent chance of earning (\d+)", last).groups())
    good = win_p * win > lose_p * lose if follow else "ends up earning" in last
    return "Y" if good else "N"


def _next_in_pattern(prompt: str) -> str:
    symbols = re.search(r"\(([^)]*)\)", prompt).group(1).split(" ")
    shown = prompt.split("\n", 1)[1].rstrip(",").split(", ")
    return symbols[(symbols.index(shown[-1]) + 1) % len(symbols)]


READERS = {"memo_trap_sample": _memo, "redefine_sample": _redefine, "hindsight_neglect_sample": _hindsight}


def _accepts(task: str, prompt: str, follow: bool, option: str) -> bool:
    """Whether a reader that follows the prompt (or falls into the trap) picks `option`."""
    if task == "pattern_suppression_sample":  # following the instruction: any symbol but the pattern's next
        return (option != _next_in_pattern(prompt)) == follow
    return option == READERS[task](prompt, follow)


def _reader_backend(task: str, share: float) -> ScriptedBackend:
    """Follows the prompt's instruction on the items whose hashed rank is below `share`, falls
    into the trap on the rest: its accuracy is that share of the items, exactly."""
    def score(context: str, continuation: str) -> float:
        follow = _digest("plant", context) / 2**64 < share
        return 0.0 if _accepts(task, context, follow, continuation.strip()) else -5.0

    return ScriptedBackend(score, lambda req: "", identity=f"reader-{task}-{share}")


@pytest.mark.parametrize("task", TASKS)
def test_planted_readers_score_what_was_planted(tmp_path, task):
    docs = load_task(task).samples
    for share in (1.0, 0.0, 0.5):
        backend = _reader_backend(task, share)
        result = evaluate(RunConfig(model=f"test/{task}", tasks=[task], probes=["accuracy"], use_cache=False,
                                    output_path=str(tmp_path / f"{task}-{share}")), backend=backend)
        acc = result.results["results"][task]["accuracy"]["acc"]
        planted = sum(_digest("plant", s.prompt) / 2**64 < share for s in docs)
        assert acc["value"] == pytest.approx(planted / len(docs)) and acc["n"] == len(docs)
        wilson = proportion([1] * planted + [0] * (len(docs) - planted))
        assert (acc["ci_low"], acc["ci_high"]) == pytest.approx((wilson.ci_low, wilson.ci_high))
        # the prize's scoring: each class is one continuation of the prompt as it stands
        asked = [(r.context, r.continuation) for r in backend.asked]
        assert sorted(asked) == sorted((s.prompt, c) for s in docs for c in s.choices)
