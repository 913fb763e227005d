from llmassay.report.table import metrics_table

__all__ = ["metrics_table"]
