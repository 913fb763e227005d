"""The console every command prints its tables to, and tables that fit its width.

Rich shrinks a too-wide table by cutting cells with "…", which turns `acc[options_rot1]`
and `acc[options_rot2]` into the same `acc[options_ro…` and a CI into `[0.300…`. Here
numbers never shrink: names fold onto more lines, and when the numbers alone do not fit,
the columns are split over several tables that each repeat the row names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

TEXT_MIN = 12  # a wrapped text column keeps at least this many characters per line
# A cell of figures: numbers, CIs "[0.1, 0.2]", "n=50", "—", "nan", percentages, yes/no.
FIGURE = re.compile(r"[-+0-9.,eE\[\]\s%=n/a—inf]*|yes|no|true|false|True|False")


def stdout_console() -> Console:
    """Tables keep their width when piped to a file (rich would wrap them at 80 columns)."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def fitted_tables(
    title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]], width: int | None = None, keys: int = 1,
) -> list[Table]:
    """`rows` as one table, or as several when `width` is too narrow for all columns.

    The first `keys` columns name a row (they wrap when narrow and repeat in every part);
    columns of figures are never wrapped or cut; other text columns wrap at spaces.
    """
    need = [max([len(r[i]) for r in rows] + [1]) for i in range(len(headers))]
    figures = {i for i in range(keys, len(headers)) if all(FIGURE.fullmatch(r[i]) for r in rows)}
    least = [need[i] if i in figures else min(need[i], max(TEXT_MIN, _longest_word(headers[i])))
             for i in range(len(headers))]
    budget = None if width is None else width - sum(least[i] + 3 for i in range(keys)) - 1
    groups: list[list[int]] = [[]]
    used = 0
    for i in range(keys, len(headers)):
        cost = max(least[i], _longest_word(headers[i])) + 3
        if budget is not None and groups[-1] and used + cost > budget:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += cost
    tables = []
    for n, group in enumerate(groups, 1):
        part = f"{title} ({n}/{len(groups)})" if title and len(groups) > 1 else title
        table = Table(title=escape(part) if part else None, title_justify="left")  # a title is markup
        for i in [*range(keys), *group]:
            if i in figures:
                table.add_column(Text(headers[i]), justify="right", no_wrap=True, min_width=need[i])
            else:
                table.add_column(Text(headers[i]), overflow="fold", min_width=least[i])
        for row in rows:
            table.add_row(*(Text(row[i]) for i in [*range(keys), *group]))  # "[x]" is not markup
        tables.append(table)
    return tables


def _longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=1)
