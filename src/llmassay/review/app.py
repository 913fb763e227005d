"""The review web app (FastAPI): plain HTML and JS served from the package, nothing from a
CDN. Every request needs the random token printed with the URL (403 otherwise); a
request that changes state must also carry it in a header and come from the app's own
origin, so another site open in the same browser cannot label or read anything.

Model output is untrusted: the page inserts it with `textContent` only.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from llmassay.review.agreement import agreement, score_agreement
from llmassay.review.queue import ReviewItem, judge_score_map, load_queue
from llmassay.review.store import SCORE_RANGE, LabelStore, score_key

PAGE = Path(__file__).with_name("page.html")
TOKEN_HEADER = "x-review-token"


class LabelIn(BaseModel):
    key: str = Field(max_length=500)
    label: str = Field(max_length=20)  # as shown: "A", "B", "tie", "correct", "incorrect"
    note: str = Field(default="", max_length=5000)


class ScoreIn(BaseModel):
    key: str = Field(max_length=500)
    slot: str = Field(default="", pattern="^[ABab]?$")  # as shown: "A"/"B" for a pair, "" for one answer
    score: int = Field(ge=SCORE_RANGE[0], le=SCORE_RANGE[1])


def swapped(reviewer: str, key: str) -> bool:
    """Blind mode shows A and B in an order fixed per (reviewer, item), half of them swapped."""
    return hashlib.sha256(f"{reviewer}\x1f{key}".encode()).digest()[0] % 2 == 1


def create_app(run_dir: str | Path, reviewer: str, token: str, blind: bool = False) -> FastAPI:
    items = load_queue(run_dir)
    by_key: dict[str, ReviewItem] = {it.key: it for it in items}
    store = LabelStore(run_dir)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            return PlainTextResponse("forbidden: open the URL with its token", status_code=403)
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            own = f"{request.url.scheme}://{request.headers.get('host', '')}"
            if request.headers.get(TOKEN_HEADER) != token or origin != own:
                return PlainTextResponse("forbidden: cross-origin or token not in header", status_code=403)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def shown(it: ReviewItem, mine: str | None, my_scores: dict[str, int]) -> dict[str, Any]:
        swap = blind and it.kind == "pairwise" and swapped(reviewer, it.key)
        outputs = list(reversed(it.outputs)) if swap else list(it.outputs)
        slots = _slots(it, swap)
        out = {"key": it.key, "kind": it.kind, "prompt": it.prompt, "outputs": outputs,
               "reference": it.reference, "reason": "" if blind else it.reason, "label": _display(mine, swap),
               "scores": [my_scores.get(score_key(it.key, s)) for s in slots]}
        if not blind:
            out["judge"], out["metric"] = it.judge, it.metric
            if it.judge_scores:
                out["judge_scores"] = list(it.judge_scores)
        return out

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/api/items")
    def list_items() -> dict[str, Any]:
        mine = store.by_reviewer().get(reviewer, {})
        my_scores = store.scores_by_reviewer().get(reviewer, {})
        return {"reviewer": reviewer, "blind": blind, "scale": list(SCORE_RANGE),
                "items": [shown(it, mine.get(it.key), my_scores) for it in items]}

    @app.post("/api/label")
    def put_label(body: LabelIn) -> JSONResponse:
        it = by_key.get(body.key)
        if it is None:
            return JSONResponse({"error": f"unknown item {body.key!r}"}, status_code=400)
        swap = blind and it.kind == "pairwise" and swapped(reviewer, it.key)
        label = _canonical(body.label, swap)
        if label not in it.labels:
            return JSONResponse({"error": f"label {body.label!r}: not one of {', '.join(it.labels)}"}, status_code=400)
        store.put(it.key, reviewer, label, body.note, blind)
        return JSONResponse({"ok": True, "label": body.label})

    @app.post("/api/score")
    def put_score(body: ScoreIn) -> JSONResponse:
        it = by_key.get(body.key)
        if it is None:
            return JSONResponse({"error": f"unknown item {body.key!r}"}, status_code=400)
        slots = _slots(it, blind and it.kind == "pairwise" and swapped(reviewer, it.key))
        shown_slots = ["A", "B"] if it.kind == "pairwise" else [""]
        if body.slot.upper() not in shown_slots:
            return JSONResponse({"error": f"slot {body.slot!r}: not one of {shown_slots}"}, status_code=400)
        store.put_score(it.key, slots[shown_slots.index(body.slot.upper())], reviewer, body.score)
        return JSONResponse({"ok": True, "score": body.score})

    @app.get("/api/export")
    def export() -> PlainTextResponse:
        return PlainTextResponse(store.export_jsonl(), media_type="application/x-ndjson")

    @app.get("/api/agreement")
    def agree() -> dict[str, Any]:
        judge = {it.key: it.judge for it in items if it.judge is not None}
        out = agreement(store.by_reviewer(), judge or None)
        scores = store.scores_by_reviewer()
        if scores:
            out["scores"] = score_agreement(scores, judge_score_map(items) or None)
        return out

    app.state.store = store
    return app


def _slots(it: ReviewItem, swap: bool) -> list[str]:
    """The stored slot of each shown answer: ["a", "b"] (reversed when blind-swapped) or [""]."""
    if it.kind != "pairwise":
        return [""]
    return ["b", "a"] if swap else ["a", "b"]


def _canonical(shown_label: str, swap: bool) -> str:
    label = shown_label.lower()
    return {"a": "b", "b": "a"}.get(label, label) if swap else label


def _display(label: str | None, swap: bool) -> str | None:
    if label is None:
        return None
    return {"a": "B", "b": "A"}.get(label, label) if swap else {"a": "A", "b": "B"}.get(label, label)


def serve(run_dir: str | Path, port: int = 8400, reviewer: str = "reviewer", blind: bool = False,
          announce: Any = print) -> None:
    """Bound to 127.0.0.1 only; the URL with its fresh token is announced before serving."""
    import uvicorn

    token = secrets.token_urlsafe(24)
    app = create_app(run_dir, reviewer, token, blind)
    announce(f"review: http://127.0.0.1:{port}/?token={token}")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
