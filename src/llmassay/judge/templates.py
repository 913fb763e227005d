"""Judge prompts as replaceable Jinja templates.

The defaults follow MT-Bench's judge prompts (FastChat `judge_prompts.jsonl`, Apache-2.0:
"pair-v2" and "single-v1"/"single-ref-v1"), shortened only where they named GPT-4. A
user's template file must use the same variables; one that cannot show both answers is
refused by name before any judge request is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2 import meta

PAIRWISE = """\
Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants \
to the user question displayed below. You should choose the assistant that follows the user's instructions \
and answers the user's question better. Your evaluation should consider factors such as the helpfulness, \
relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by \
comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the \
order in which the responses were presented does not influence your decision. Do not allow the length of \
the responses to influence your evaluation. Be as objective as possible. After providing your explanation, \
output your final verdict by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if \
assistant B is better, and "[[C]]" for a tie.
{% if reference %}
[Reference Answer]
{{ reference }}
{% endif %}
[User Question]
{{ question }}

[The Start of Assistant A's Answer]
{{ answer_a }}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{{ answer_b }}
[The End of Assistant B's Answer]
"""

GRADE = """\
Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to \
the user question displayed below. {% if rubric %}Grade it by this rubric:
{{ rubric }}
{% endif %}{% if reference %}Compare the assistant's answer with the reference answer; identify and correct \
any mistakes. {% endif %}Begin your evaluation by providing a short explanation. Be as objective as possible. \
After providing your explanation, {% if scale == "pass-fail" %}output your grade by strictly following this \
format: "[[PASS]]" if the response is correct and acceptable, "[[FAIL]]" otherwise{% else %}you must rate the \
response on a scale of 1 to 10 by strictly following this format: "[[rating]]", for example: "Rating: [[5]]"\
{% endif %}.
{% if reference %}
[Reference Answer]
{{ reference }}
{% endif %}
[Question]
{{ question }}

[The Start of Assistant's Answer]
{{ answer }}
[The End of Assistant's Answer]
"""

REQUIRED = {"pairwise": {"question", "answer_a", "answer_b"}, "grade": {"question", "answer"}}
SCALES = ("pass-fail", "1-10")

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@dataclass(frozen=True)
class JudgeTemplates:
    """The two prompts a judge is asked with (source text, so they are stored per run)."""

    pairwise: str = PAIRWISE
    grade: str = GRADE

    def render_pair(self, question: str, answer_a: str, answer_b: str, reference: str | None = None) -> str:
        return _ENV.from_string(self.pairwise).render(
            question=question, answer_a=answer_a, answer_b=answer_b, reference=reference or ""
        )

    def render_grade(
        self, question: str, answer: str, reference: str | None, rubric: str | None, scale: str
    ) -> str:
        return _ENV.from_string(self.grade).render(
            question=question, answer=answer, reference=reference or "", rubric=rubric or "", scale=scale
        )


def check_template(text: str, kind: str, where: str) -> str:
    """The template text, or a one-line LlmassayError naming the file and what is wrong."""
    from llmassay.types import LlmassayError

    try:
        used = meta.find_undeclared_variables(_ENV.parse(text))
    except jinja2.TemplateSyntaxError as exc:
        raise LlmassayError(f"{where}: line {exc.lineno}: template syntax error: {exc.message}") from None
    missing = REQUIRED[kind] - used
    if missing:
        raise LlmassayError(f"{where}: a {kind} judge template must use {{{{ {' }}, {{ '.join(sorted(missing))} }}}}")
    return text


def load_templates(pairwise: str | Path | None = None, grade: str | Path | None = None) -> JudgeTemplates:
    """Default prompts, with either replaced by a template file."""
    from llmassay.types import LlmassayError

    texts = {}
    for kind, path in (("pairwise", pairwise), ("grade", grade)):
        if path is None:
            continue
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LlmassayError(f"{path}: cannot read the {kind} judge template ({exc})") from None
        texts[kind] = check_template(text, kind, str(path))
    return JudgeTemplates(**texts)
