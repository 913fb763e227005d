from llmassay.report.table import details_tables, metrics_table

__all__ = ["details_tables", "metrics_table"]
