"""The review app in a real headless Chromium (Debian's /usr/bin/chromium via Playwright)
against a real uvicorn server on 127.0.0.1: the tokenised URL opens, three items are
labelled with the keyboard and two answers scored 1-10, both survive a reload, the page without the token is 403,
hostile model output renders as text, and two reviewers give a κ. Also writes the
README screenshot when LLMASSAY_SCREENSHOT names a file."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the review app is in the [judge] extra")
from test_report_browser import CHROMIUM, FLAGS  # skips the module where Chromium is absent

from judge_runs import HOSTILE, two_runs
from llmassay.judge.session import JudgeConfig, run_judgement
from llmassay.review.app import create_app

pytestmark = pytest.mark.slow  # a browser and a server
TOKEN = "browser-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server_for(tmp_path) -> Iterator:
    import uvicorn

    servers = []

    def start(run_dir: Path, reviewer: str) -> str:
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(run_dir, reviewer, TOKEN), host="127.0.0.1", port=port,
                                               log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.should_exit = True


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=FLAGS, headless=True,
            viewport={"width": 1280, "height": 800})
        yield context.new_page()
        context.close()


def test_review_in_chromium(tmp_path, server_for, page):
    a, b = two_runs(tmp_path)
    run_dir = tmp_path / "judged"
    run_judgement(JudgeConfig(str(a), str(b), "oracle", str(run_dir), calibration_limit=4, repeats=0))
    base = server_for(run_dir, "ann")
    assert page.goto(base + "/").status == 403
    assert page.goto(f"{base}/?token={TOKEN}").status == 200
    page.wait_for_selector("#outputs pre")
    for key in ("a", "b", "t"):
        before = page.inner_text("#position")
        page.keyboard.press(key)
        page.wait_for_function("b => document.querySelector('#position').innerText !== b", arg=before)
    assert page.inner_text("#progress") == "3 / 6 labelled"
    for key, shown in (("7", "answer A: score 7"), ("s", None), ("0", "answer B: score 10")):  # rubric scores
        page.keyboard.press(key)
        if shown:
            page.wait_for_function("t => document.querySelector('#status').innerText.endsWith(t)", arg=shown)
    page.reload()
    page.wait_for_selector("#outputs pre")
    assert page.inner_text("#progress") == "3 / 6 labelled" and page.inner_text("#position") == "item 4 of 6"
    scored = page.inner_text("#outputs").lower()  # the tags are styled in capitals
    assert "rubric score 7" in scored and "rubric score 10" in scored  # stored, shown again after the reload
    for _ in range(3):
        page.keyboard.press("j")
    assert HOSTILE in page.inner_text("#outputs")  # shown as characters, not markup
    assert page.eval_on_selector_all("#outputs img, #outputs script", "els => els.length") == 0
    assert page.title() == "llmassay review"
    if os.environ.get("LLMASSAY_SCREENSHOT"):
        for _ in range(2):  # back to item 4: a verdict to give, two answers scored
            page.keyboard.press("k")
        page.screenshot(path=os.environ["LLMASSAY_SCREENSHOT"], full_page=True)
    other = server_for(run_dir, "bob")
    page.goto(f"{other}/?token={TOKEN}")
    page.wait_for_selector("#outputs pre")
    for key in ("a", "a", "t"):
        before = page.inner_text("#position")
        page.keyboard.press(key)
        page.wait_for_function("b => document.querySelector('#position').innerText !== b", arg=before)
    stats = page.evaluate(f"fetch('/api/agreement?token={TOKEN}').then(r => r.json())")
    human = next(p for p in stats["cohen_kappa"] if p["raters"] == ["ann", "bob"])
    assert human["n"] == 3 and human["observed_agreement"] == pytest.approx(2 / 3)
