"""The review app in a real browser: Playwright driving Debian's headless Chromium on a run made
here (fake backend): filter, keyboard accept and reject, an edit, a bulk action undone, reload
(decisions kept), publish (counts in the card), and hostile record text shown as text.

Needs `apt-get install -y chromium` and `pip install playwright` (no browser download: the system
chromium is used); skipped with the reason otherwise. Screenshots go to $REVIEW_SCREENSHOTS when set.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install -y chromium"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="no playwright: pip install playwright")
pytest.importorskip("uvicorn", reason="the review extra is not installed: pip install 'synthloop[review]'")

from synthloop.cli import main  # noqa: E402
from synthloop.review import Review  # noqa: E402
from synthloop.review.demo import HOSTILE_TOPIC, make_demo_run  # noqa: E402
from synthloop.storage import RunDir  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RunDir]]:
    import uvicorn

    from synthloop.review.app import create_app

    rd = RunDir(make_demo_run(tmp_path_factory.mktemp("browser")).run_dir)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(Review(rd, reviewer="tester")), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the review app did not start"
    yield f"http://127.0.0.1:{port}/", rd
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server: tuple[str, RunDir]) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
        pg.errors = errors
        yield pg
        browser.close()


def shot(pg: Any, name: str) -> None:
    folder = os.environ.get("REVIEW_SCREENSHOTS")
    if folder:
        pg.screenshot(path=str(Path(folder) / f"review-{name}.png"), full_page=False)


def human(pg: Any, rid: str) -> str:
    return str(pg.locator(f"#list tr[data-id='{rid}'] td:nth-child(5)").inner_text())


def wait_rows(pg: Any, n: int | None = None) -> None:
    pg.wait_for_function("n => { const r = document.querySelectorAll('#list tbody tr').length; return n === null ? r > 0 : r === n; }", arg=n)


def test_review_in_the_browser(server: tuple[str, RunDir], page: Any) -> None:
    url, rd = server
    pg = page
    pg.goto(url)
    wait_rows(pg)
    total = int(pg.locator("#match-count").inner_text().replace(",", ""))
    assert total == sum(1 for k in ("accepted", "rejected") for _ in rd.records(k))  # type: ignore[arg-type]

    # filter: the judge's low scores only
    shown = pg.locator("#match-count").inner_text()
    pg.select_option("#reason", "judge_score_low")
    # the count changes once the filtered page has arrived (before that it still shows the total)
    pg.wait_for_function("t => document.querySelector('#match-count').textContent != t", arg=shown)
    wait_rows(pg)
    low = int(pg.locator("#match-count").inner_text())
    assert 0 < low < total
    assert all("judge_score_low" in t for t in pg.locator("#list tbody td:nth-child(3)").all_inner_texts())
    pg.select_option("#reason", "")
    pg.wait_for_function("t => document.querySelector('#match-count').textContent == String(t)", arg=total)

    # hostile text shows as text: the topic name is HTML with a script tag
    pg.select_option("#topic", HOSTILE_TOPIC)
    pg.wait_for_function("() => document.querySelectorAll('#list tbody tr').length > 0 && document.querySelector('#list tbody td:nth-child(3)').textContent.includes('<script>')")
    pg.keyboard.press("j")
    pg.wait_for_selector("#detail h2")
    assert HOSTILE_TOPIC in pg.locator("#detail h2").inner_text()
    assert pg.locator("#detail script, #list script, #detail img, #list img, #detail b, #list b").count() == 0
    shot(pg, "hostile")
    pg.select_option("#topic", "")
    pg.wait_for_function("t => document.querySelector('#match-count').textContent == String(t)", arg=total)

    # keyboard: j selects, a accepts (and moves on), r rejects with a reason
    pg.keyboard.press("j")
    pg.wait_for_selector("#list tr.current")
    first = pg.locator("#list tr.current").get_attribute("data-id")
    pg.keyboard.press("a")
    pg.wait_for_function("id => document.querySelector('#list tr.current') && document.querySelector('#list tr.current').dataset.id !== id", arg=first)
    assert "human" in human(pg, first)
    second = pg.locator("#list tr.current").get_attribute("data-id")
    pg.keyboard.press("r")
    pg.wait_for_selector("#reason-input")
    pg.keyboard.type("the answer is wrong")
    pg.keyboard.press("Enter")
    pg.wait_for_function("id => document.querySelector(`#list tr[data-id='${id}'] .badge.rejected`)", arg=second)

    # an edit: e opens the editor, Ctrl+Enter saves
    pg.keyboard.press("k")
    pg.wait_for_function("id => document.querySelector('#list tr.current').dataset.id === id", arg=second)
    pg.keyboard.press("e")
    pg.wait_for_selector("#modal textarea", state="visible")
    area = pg.locator("#modal textarea:visible").last
    area.fill("EDITED BY A PERSON <i>still text</i>", force=True)  # the modal may still be laying out
    pg.keyboard.press("Control+Enter")
    pg.wait_for_function("() => document.querySelector('#detail .edited-mark')")
    assert "EDITED BY A PERSON <i>still text</i>" in pg.locator("#detail").inner_text()
    shot(pg, "record")

    # bulk: flag everything in round 1, then undo it
    shown = pg.locator("#match-count").inner_text()
    pg.select_option("#round", "1")
    pg.wait_for_function("t => document.querySelector('#match-count').textContent != t", arg=shown)
    wait_rows(pg)
    in_round1 = int(pg.locator("#match-count").inner_text())
    pg.keyboard.press("Escape")
    pg.click("#bulk-flag")
    pg.click("#modal-ok")
    pg.wait_for_function("n => document.querySelectorAll('#list .badge.flag').length === Math.min(n, 50)", arg=in_round1)
    pg.click("#undo")
    pg.wait_for_function("() => document.querySelectorAll('#list .badge.flag').length === 0")
    pg.select_option("#round", "")
    pg.wait_for_function("t => document.querySelector('#match-count').textContent == String(t)", arg=total)

    # reload: the decisions are kept
    pg.reload()
    wait_rows(pg)
    pg.select_option("#reviewed", "yes")
    pg.wait_for_function("() => document.querySelector('#match-count').textContent === '2'")
    assert sorted(pg.locator("#list tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")) == sorted([first, second])
    pg.select_option("#reviewed", "")
    wait_rows(pg)
    shot(pg, "page")
    assert pg.errors == []

    # publish: the card counts the decisions
    assert main(["publish", str(rd.path)]) == 0
    card = rd.card_path.read_text()
    assert "## Human review" in card
    first_kind = "accepted" if first in {r.id for r in rd.records("accepted")} else "rejected"
    second_kind = "accepted" if second in {r.id for r in rd.records("accepted")} else "rejected"
    counts = json.loads(json.dumps({"human_accepted": int(first_kind == "rejected"), "human_rejected": int(second_kind == "accepted")}))
    assert f"human_accepted: {counts['human_accepted']}" in card and f"human_rejected: {counts['human_rejected']}" in card
    assert "human_edited: " in card
    rows = [json.loads(line) for line in (rd.export_dir / "train.jsonl").read_text().splitlines()]
    assert second not in {r["id"] for r in rows}
    if pg.context.browser is not None:
        pg.goto(rd.report_path.as_uri())
        assert pg.locator("svg").count() >= 5 and pg.locator("script").count() == 0
        shot(pg, "report-browser")
