"""Scripted multiple-choice backends and task files whose true answers are known, for the
brittleness probe's tests (to move into tests/fakes.py with the other fakes)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from llmassay.types import Generation, LoglikelihoodResult

LETTERS = "ABCDEFGHIJ"
_OPTION = re.compile(r"(?m)^\(?([A-J0-9])[.)]\)? (.+)$")

TASK_YAML = (
    "task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files: {{test: {name}.jsonl}}\ntest_split: test\n"
    "output_type: multiple_choice\n"
    "doc_to_text: \"Question: {{{{question}}}}\\n{{% for c in choices %}}{{{{'ABCDEFGHIJ'[loop.index0]}}}}. "
    "{{{{c}}}}\\n{{% endfor %}}Answer:\"\n"
    "doc_to_choice: \"{{{{ ['A','B','C','D','E','F','G','H','I','J'][:choices|length] }}}}\"\n"
    "doc_to_target: answer\n"
)


def write_task(root: Path, option_counts: Sequence[int], name: str = "mc", targets: Sequence[int] | None = None) -> Path:
    """A task whose item i has option_counts[i] options; the right one reads `right i`, the
    others `wrong i j`, and the prompt lists them as `A. …` lines."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, n in enumerate(option_counts):
        target = targets[i] if targets is not None else i % n
        choices = [f"right {i}" if j == target else f"wrong {i} {j}" for j in range(n)]
        rows.append({"question": f"Which option is right for item {i}?", "choices": choices, "answer": target})
    (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = root / f"{name}.yaml"
    path.write_text(TASK_YAML.format(name=name))
    return path


def shown_options(prompt: str) -> list[tuple[str, str]]:
    """(label, text) of every option line of the prompt."""
    return _OPTION.findall(prompt)


Rule = Callable[[str], "str | None"]  # prompt → the label the model answers (None: no answer)


def knows_everything(prompt: str) -> str | None:
    """The label of the option that reads `right …`, wherever it is shown."""
    return next((label for label, text in shown_options(prompt) if text.startswith("right")), None)


def always_first(prompt: str) -> str | None:
    options = shown_options(prompt)
    return options[0][0] if options else None


class Scripted:
    """A backend that answers by a rule on the prompt: the rule's label is the likely
    continuation (log-likelihood 0, every other −5) and the generated text (empty when
    the rule gives none, or `generate_rule` says otherwise). Records every request it computes."""

    name = "test/scripted"

    def __init__(self, rule: Rule, generate_rule: Rule | None = None) -> None:
        self.rule = rule
        self.generate_rule = generate_rule or rule
        self.loglikelihood_calls: list[tuple[str, str]] = []
        self.generate_calls: list[str] = []

    def loglikelihood(self, reqs):
        out = []
        for r in reqs:
            self.loglikelihood_calls.append((r.context, r.continuation))
            out.append(LoglikelihoodResult(0.0 if r.continuation.strip() == self.rule(r.context) else -5.0, True, 1, 1))
        return out

    def generate(self, reqs):
        self.generate_calls += [r.prompt for r in reqs]
        return [Generation(self.generate_rule(r.prompt) or "", 1, 1, "stop") for r in reqs]

    def tokenize(self, text):
        return list(text.encode())

    def fingerprint(self):
        return {"backend": "test-scripted", "id": id(self)}
