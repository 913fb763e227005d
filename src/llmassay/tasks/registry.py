"""Task names from folders of lm-eval task YAMLs (`--include-path DIR`), as lm-eval's
TaskManager registers them: a `task:` name, a `tag:` naming several tasks, or a `group:`
config listing its tasks. A name expands to the YAML files to load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmassay.tasks.groups import GroupSpec
from llmassay.tasks.lmeval_yaml import TaskConfigError, read_config
from llmassay.types import LlmassayError


@dataclass
class TaskIndex:
    tasks: dict[str, Path] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    group_specs: dict[str, GroupSpec] = field(default_factory=dict)  # with their aggregate_metric_list
    broken: dict[str, str] = field(default_factory=dict)  # group name → why its config is refused

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
            for inline in config["task"]:  # a group written inside a group (lm-eval's flan MMLU)
                if isinstance(inline, dict) and isinstance(inline.get("group"), str) and isinstance(inline.get("task"), list):
                    self._add(path, inline)
            try:
                spec = GroupSpec.from_config(config, str(path))
            except LlmassayError as exc:  # said when the group is asked for, not when a folder is scanned
                self.broken[config["group"]] = str(exc)
                return
            self.groups[spec.name], self.group_specs[spec.name] = spec.members, spec
            return
        name = config.get("task")
        if not isinstance(name, str):
            return
        self.tasks.setdefault(name, path)
        tags = config.get("tag") or []
        for tag in [tags] if isinstance(tags, str) else tags:
            if isinstance(tag, str):
                self.tags.setdefault(tag, []).append(name)

    def leaf_names(self, name: str, _seen: tuple[str, ...] = ()) -> list[str]:
        """The task names under a task, tag or group name (lm-eval's `get_all_tasks`)."""
        if name in _seen:
            raise LlmassayError(f"--tasks {name}: group includes itself")
        if name in self.broken:
            raise LlmassayError(self.broken[name])
        members = None if name in self.tasks else (self.groups.get(name) or self.tags.get(name))
        if members is None:
            return [name]
        return list(dict.fromkeys(t for m in members for t in self.leaf_names(m, _seen + (name,))))

    def expand(self, name: str, _seen: tuple[str, ...] = ()) -> list[str]:
        """File paths for a task, tag or group name; other names are returned as they are."""
        if name in _seen:
            raise LlmassayError(f"--tasks {name}: group includes itself")
        if name in self.broken:
            raise LlmassayError(self.broken[name])
        if name in self.tasks:
            return [str(self.tasks[name])]
        members = self.groups.get(name) or self.tags.get(name)
        if members is None:
            return [name]
        return [p for member in members for p in self.expand(member, _seen + (name,))]
