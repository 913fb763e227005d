"""Task names from folders of lm-eval task YAMLs (`--include-path DIR`), as lm-eval's
TaskManager registers them: a `task:` name, a `tag:` naming several tasks, or a `group:`
config listing its tasks. A name expands to the YAML files to load."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from llmassay.tasks.lmeval_yaml import TaskConfigError, read_config
from llmassay.types import LlmassayError


@dataclass
class TaskIndex:
    tasks: dict[str, Path] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def scan(cls, folders: list[str | Path]) -> TaskIndex:
        index = cls()
        for folder in folders:
            root = Path(folder).expanduser()
            if not root.is_dir():
                raise LlmassayError(f"--include-path {folder}: not a directory")
            for path in sorted(root.rglob("*.yaml")):
                try:
                    config, _ = read_config(path)
                except TaskConfigError:
                    continue  # lm-eval skips files it cannot read too; they fail by name when asked for
                index._add(path, config)
        return index

    def _add(self, path: Path, config: dict) -> None:
        if isinstance(config.get("group"), str) and isinstance(config.get("task"), list):
            names = [t if isinstance(t, str) else t.get("task") for t in config["task"]]
            self.groups[config["group"]] = [n for n in names if isinstance(n, str)]
            if config.get("aggregate_metric_list"):
                warnings.warn(f"{path}: group '{config['group']}': aggregate_metric_list is not computed; "
                              "each task is reported on its own", stacklevel=3)
            return
        name = config.get("task")
        if not isinstance(name, str):
            return
        self.tasks.setdefault(name, path)
        tags = config.get("tag") or []
        for tag in [tags] if isinstance(tags, str) else tags:
            if isinstance(tag, str):
                self.tags.setdefault(tag, []).append(name)

    def expand(self, name: str, _seen: tuple[str, ...] = ()) -> list[str]:
        """File paths for a task, tag or group name; other names are returned as they are."""
        if name in _seen:
            raise LlmassayError(f"--tasks {name}: group includes itself")
        if name in self.tasks:
            return [str(self.tasks[name])]
        members = self.groups.get(name) or self.tags.get(name)
        if members is None:
            return [name]
        return [p for member in members for p in self.expand(member, _seen + (name,))]
