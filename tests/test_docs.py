"""The documentation is checked like code (issue #37): the site builds with `--strict`, every
`llmassay …` line in a code block parses against the real CLI, every bash/python block is
either run by a test here or marked illustrative, and the front door's commands run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
ILLUSTRATIVE = 'title="illustrative"'
FENCE = re.compile(r"^(\s*)```(.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str  # what follows the fence: language and attributes
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def language(self) -> str:
        return self.info.split()[0] if self.info.split() else ""


def code_blocks(path: Path) -> list[Block]:
    blocks, lines, start, info = [], path.read_text(encoding="utf-8").split("\n"), None, ""
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if fence and start is None:
            start, info, body = number, fence.group(2).strip(), []
        elif fence and start is not None:
            blocks.append(Block(path, start, info, "\n".join(body)))
            start = None
        elif start is not None:
            body.append(line)
    return blocks


ALL_BLOCKS = [b for path in DOCS for b in code_blocks(path)]

# The blocks the tests below run (file, first line of the block): everything else that is a
# command or code says it is illustrative in its fence (```bash title="illustrative").
RUN = {
    ("README.md", "make demo   # creates .venv"),          # CI's make test; the demo is the same assess as the next
    ("README.md", ".venv/bin/llmassay assess"),            # test_front_door_commands_run (tiny preset)
    ("README.md", "source .venv/bin/activate"),            # test_front_door_commands_run
    ("README.md", "make test        # everything"),        # CI runs make test; test_docs builds the site
    ("docs/python-api.md", "from llmassay import"),        # test_python_api_snippet_runs
}


def _is_run(block: Block) -> bool:
    first = block.text.strip().split("\n")[0]
    return any(str(block.path.relative_to(ROOT)) == f and first.startswith(s) for f, s in RUN)


def llmassay_commands(block: Block) -> list[tuple[int, list[str]]]:
    """(line, argv after `llmassay`) for each `llmassay …` command in a bash block; shell
    variables become a placeholder, `\\` continuations are joined, `&&`/`;`/`|` split commands."""
    text = re.sub(r"\\\n\s*", " ", block.text)
    found = []
    for offset, line in enumerate(text.split("\n"), 1):
        lexer = shlex.shlex(re.sub(r"\$\{?(\w+)\}?", r"VAR_\1", line), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("&&", "||", ";", "|", "&", "(", ")", "$("):
                while command and (command[0] in ("nice", "do", "time") or "=" in command[0]):
                    command = command[1:]
                if command and Path(command[0]).name == "llmassay":
                    found.append((block.line + offset, command[1:]))
                command = []
            else:
                command.append(token)
    return found


def test_every_command_and_code_block_is_run_or_marked_illustrative() -> None:
    unmarked = [b.where for b in ALL_BLOCKS
                if b.language in ("bash", "sh", "python") and ILLUSTRATIVE not in b.info and not _is_run(b)]
    assert not unmarked, f"code blocks neither run by tests/test_docs.py nor marked {ILLUSTRATIVE}: {unmarked}"
    stale = [(f, s) for f, s in RUN if not any(_is_run(b) and str(b.path.relative_to(ROOT)) == f
                                               and b.text.strip().startswith(s) for b in ALL_BLOCKS)]
    assert not stale, f"RUN names blocks that are no longer in the docs: {stale}"


def test_every_llmassay_line_in_the_docs_parses() -> None:
    from llmassay.cli.app import _build_parser

    commands = [(b, line, argv) for b in ALL_BLOCKS if b.language in ("bash", "sh")
                for line, argv in llmassay_commands(b)]
    assert len(commands) > 60  # the walk found the docs' commands
    bad = []
    for block, line, argv in commands:
        if argv in (["--help"], ["--version"]):
            continue
        try:
            _build_parser().parse_args(argv)
        except SystemExit:
            bad.append(f"{block.path.relative_to(ROOT)}:{line}: llmassay {shlex.join(argv)}")
    assert not bad, "docs commands the CLI rejects:\n" + "\n".join(bad)


def test_the_site_builds_strict(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("llmassay run", "llmassay audit dedup", "llmassay watermark detect", "llmassay loadtest"):
        assert command in cli  # the reference is generated from the parsers, every subcommand
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "The challenges" in home  # the home page is the README


def test_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.split("\n")) <= 300
    for target in re.findall(r"\]\((docs/[^)#\s]+)", readme):
        assert (ROOT / target).exists(), target


def test_the_task_file_example_loads(tmp_path: Path) -> None:
    from llmassay.tasks.loader import load_task

    block = next(b for b in ALL_BLOCKS if b.path.name == "tasks.md" and b.language == "yaml")
    (tmp_path / "my_task.jsonl").write_text('{"question": "2+2?", "choices": ["3", "4"], "answer": 1}\n')
    spec = tmp_path / "my_task.yaml"
    spec.write_text(block.text)
    try:
        task = load_task(str(spec))
    except Exception as exc:  # noqa: BLE001 — the message is the assertion
        pytest.fail(f"{block.where}: the documented task file does not load: {exc}")
    assert task.output_type == "multiple_choice" and len(task.samples) == 1


@pytest.mark.slow
def test_python_api_snippet_runs(tmp_path: Path, smollm2_path) -> None:  # noqa: ANN001
    block = next(b for b in ALL_BLOCKS if b.path.name == "python-api.md" and b.language == "python")
    assert "limit=5" in block.text and '"runs/api-example"' in block.text  # what is shrunk and moved below
    code = block.text.replace("limit=5", "limit=2").replace('"runs/api-example"', repr(str(tmp_path / "x")))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "LLAMA_N_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^acc .* n=2$", done.stdout, re.M), done.stdout  # the metric is over the two items asked for
    assert "0.75 [0.30, 0.95] n=4" in done.stdout  # the Wilson interval the page prints


@pytest.mark.slow
def test_front_door_commands_run(tmp_path: Path, smollm2_path) -> None:  # noqa: ANN001
    """The README's `llmassay` lines (its blocks not marked illustrative), each with a tiny
    --limit, in order, in one folder."""
    readme = ROOT / "README.md"
    commands = [argv for b in code_blocks(readme) if b.language == "bash" and ILLUSTRATIVE not in b.info
                for _, argv in llmassay_commands(b)]
    assert commands and commands[0][0] == "assess"
    (tmp_path / "runs").mkdir()
    for argv in commands:
        if argv[0] == "assess":  # the demo itself is too long for a test (it is `make demo`): its model, tiny
            argv = ["run", "--model", argv[2], "--tasks", "arith_sample", "--limit", "2", "--output-path", "runs/demo"]
        elif argv[0] == "run":
            argv = [a if not a.isdigit() else "2" for a in argv] + ["--model-args", "n_threads=1"]
        elif argv[0] == "compare":  # the two runs it compares, made first
            for name in ("a", "b"):
                subprocess.run([sys.executable, "-m", "llmassay", "run", "--model", "llamacpp/smollm2-135m",
                                "--tasks", "arith_sample", "--limit", "2", "--output-path", f"runs/{name}"],
                               cwd=tmp_path, check=True, capture_output=True, timeout=600)
        done = subprocess.run([sys.executable, "-m", "llmassay", *argv], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, f"llmassay {shlex.join(argv)}: {done.stderr[-1500:]}"
