"""Presenting runs: terminal tables, the self-contained HTML report, and `compare`."""

from llmassay.report.compare import Comparison, compare_runs, comparison_tables, write_compare
from llmassay.report.html import build_report, write_report
from llmassay.report.rundir import RunData, load_run
from llmassay.report.table import details_tables, metrics_table

__all__ = [
    "Comparison",
    "RunData",
    "build_report",
    "compare_runs",
    "comparison_tables",
    "details_tables",
    "load_run",
    "metrics_table",
    "write_compare",
    "write_report",
]
