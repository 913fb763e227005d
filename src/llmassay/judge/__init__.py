"""LLM-as-judge with its biases measured: pairwise judging in both orders, single-answer
grading, calibration on pairs whose right answer is known, and a rule-based oracle.

A judge's figures mean nothing until it has been shown to beat chance on planted truth,
so every entry point here reports calibration next to what the judge produced.
"""

from __future__ import annotations

from llmassay.judge.judges import Judge, ModelJudge, OracleJudge, load_judge
from llmassay.judge.pairwise import PairItem, judge_pairs
from llmassay.judge.stats import analyse_pairs
from llmassay.judge.templates import JudgeTemplates, load_templates
from llmassay.judge.verdict import parse_pairwise, parse_rating

__all__ = [
    "Judge",
    "JudgeTemplates",
    "ModelJudge",
    "OracleJudge",
    "PairItem",
    "analyse_pairs",
    "judge_pairs",
    "load_judge",
    "load_templates",
    "parse_pairwise",
    "parse_rating",
]
