"""Corpus-side audits: benchmark contamination, exact and near-duplicates, personal data.

`audit_contamination`, `audit_dedup` and `audit_pii` stream a corpus (JSONL, text,
Parquet) once and return typed results; `rescore` splits a finished run's accuracy into
clean and dirty items. datasketch, pyarrow, phonenumbers and python-stdnum come with the
`audit` extra and are imported only when needed.
"""

from llmassay.audit.dedup import DedupResult, DedupSettings
from llmassay.audit.executors import LocalExecutor, RayShardExecutor, make_executor
from llmassay.audit.normalise import Normalisation, normalise, words
from llmassay.audit.readers import CorpusSpec, Document, read_corpus
from llmassay.audit.rescoring import rescore
from llmassay.audit.run import (
    ContaminationAudit,
    DedupAudit,
    PiiAudit,
    audit_contamination,
    audit_dedup,
    audit_pii,
)

__all__ = [
    "ContaminationAudit",
    "CorpusSpec",
    "DedupAudit",
    "DedupResult",
    "DedupSettings",
    "Document",
    "LocalExecutor",
    "Normalisation",
    "PiiAudit",
    "RayShardExecutor",
    "audit_contamination",
    "audit_dedup",
    "audit_pii",
    "make_executor",
    "normalise",
    "read_corpus",
    "rescore",
    "words",
]
