"""Per-probe report views, one module per probe name (see `llmassay.report.section`)."""
