"""The layout's import rules (docs/PROBES.md, "Import rules"), checked over src/: a rule the code
breaks fails here, naming the module, the line and the import. Imports under `if TYPE_CHECKING:`
are types only and do not count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
DOMAIN = ("audit", "efficiency", "factuality", "judge", "longctx", "safety", "tokens", "watermark", "review", "multiturn",
          "editing", "tune", "compositionality")

# (who, what they must not import, why)
RULES = [
    (("llmassay.probes",), ("llmassay.backends",),
     "a probe asks the engine or a core helper (engine.chat, engine.constraints), never a backend module"),
    (tuple(f"llmassay.{d}" for d in DOMAIN), ("llmassay.probes",),
     "domain code knows no probe: the probe adapts the domain, not the other way round"),
    (("llmassay.backends", "llmassay.engine"), ("llmassay.probes", "llmassay.cli", "llmassay.report"),
     "the engine and the backends serve every probe and command and know none of them"),
    (tuple(f"llmassay.{d}" for d in (*DOMAIN, "backends", "engine", "probes", "report", "tasks")), ("llmassay.cli",),
     "the command line is the outermost layer: nothing imports it"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import outside `if TYPE_CHECKING:` blocks, at any depth."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


IMPORTS = {_module_name(p): (p, _runtime_imports(ast.parse(p.read_text(encoding="utf-8"))))
           for p in sorted(SRC.rglob("*.py"))}


@pytest.mark.parametrize("who,forbidden,why", RULES, ids=[r[2].split(":")[0][:40] for r in RULES])
def test_import_rule(who: tuple[str, ...], forbidden: tuple[str, ...], why: str) -> None:
    broken = [f"{path.relative_to(SRC.parent)}:{line}: imports {target}"
              for module, (path, imports) in IMPORTS.items() if _within(module, who)
              for line, target in imports if _within(target, forbidden)]
    assert not broken, f"{why}:\n" + "\n".join(broken)


def test_the_walk_sees_the_package() -> None:
    assert len(IMPORTS) > 100 and "llmassay.probes.accuracy" in IMPORTS and "llmassay.cli.app" in IMPORTS
    # a planted breach is caught: the rule checker reads nested, lazy imports too
    planted = _runtime_imports(ast.parse("def f():\n    from llmassay.backends.chat import x\n"
                                         "if TYPE_CHECKING:\n    from llmassay.backends.base import B\n"))
    assert planted == [(2, "llmassay.backends.chat")]
