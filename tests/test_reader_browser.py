"""A real browser (Debian's chromium, driven by Playwright) through a whole reader-study session.

Playwright never downloads a browser here: it launches the system chromium through
``executable_path``. The README's set-up and ``.ci/run`` install it; without it the test fails.
"""

from __future__ import annotations

import sqlite3

import pytest
from conftest import CHROMIUM_FLAGS, system_chromium

from cxrsynth.reader_study.answers import AnswersDB, read_answers
from cxrsynth.reader_study.app import create_app
from cxrsynth.reader_study.design import Design
from cxrsynth.reader_study.simulated import running_server


#: the status line after a save that worked (``:text()`` would also match "Not saved")
SAVED = "#status:text-is('Saved')"


@pytest.fixture(scope="module")
def browser():
    chromium = system_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def test_a_reader_answers_every_screen_in_a_browser(browser, study, tmp_path):
    answers = tmp_path / "answers.sqlite"
    db = AnswersDB(answers, Design(study).study_id)
    token = db.add_reader()
    design = Design(study)
    with running_server(create_app(study, answers)) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/r/{token}")
        page.check("input[value=registrar]")
        page.click("#start")
        page.wait_for_url(f"{url}/r/{token}/screen/0")
        assert page.locator("img").count() == 6 and page.title() == "Grid 1 of 2"

        ticked = {0: [1, 4], 1: [0, 2, 5]}
        for n in (0, 1):
            for position in ticked[n]:
                page.check(f"input[value='{position}']")
                page.wait_for_selector(SAVED)
            page.click("#next")
            page.wait_for_url(f"{url}/r/{token}/screen/{n + 1}")
        # back to the second grid: its ticks are as left; untick one and come forward again
        page.click("#back")
        page.wait_for_url(f"{url}/r/{token}/screen/1")
        assert [page.is_checked(f"input[value='{p}']") for p in range(6)] == [True, False, True, False, False, True]
        page.uncheck("input[value='5']")
        page.wait_for_selector(SAVED)
        ticked[1] = [0, 2]
        page.click("#next")
        page.wait_for_url(f"{url}/r/{token}/screen/2")

        # the first pair, then the tab is closed; a new tab resumes at the second pair
        assert page.is_disabled("#next")  # a pair needs a choice
        page.check("input[value='1']")
        page.wait_for_selector(SAVED)
        page.click("#next")
        page.wait_for_url(f"{url}/r/{token}/screen/3")
        page.close()
        page = context.new_page()
        page.goto(f"{url}/r/{token}")
        page.wait_for_url(f"{url}/r/{token}/screen/3")
        chosen = {2: 1, 3: 0, 4: 1}
        for n, after in ((3, "screen/4"), (4, "finish")):
            page.check(f"input[value='{chosen[n]}']")
            page.wait_for_selector(SAVED)
            page.click("#next")
            # wait for the next page before ticking it: a tick on the page that is leaving is lost
            page.wait_for_url(f"{url}/r/{token}/{after}")
        page.click("#submit")
        page.wait_for_url(f"{url}/r/{token}/thanks")
        assert "Thank you" in page.content()
        context.close()

    _, rows = read_answers(answers)
    calls = {(screen, position): called for _, _, _, screen, position, called in rows}
    assert len(calls) == 2 * 6 + 3 * 2 and {r[2] for r in rows} == {"registrar"}
    for n in (0, 1):
        assert [calls[n, p] for p in range(6)] == [int(p in ticked[n]) for p in range(6)]
    for n, position in chosen.items():
        assert (calls[n, position], calls[n, 1 - position]) == (1, 0)
    assert len(design.screens) == 5


def test_a_failed_save_is_shown_and_keeps_next_disabled(browser, study, tmp_path):
    """With the answers database locked past the app's busy timeout, a tick is not saved: the page
    says so, shows the stored answers (not the tick) and keeps Next disabled until a save works."""
    answers = tmp_path / "answers.sqlite"
    db = AnswersDB(answers, Design(study).study_id)
    token = db.add_reader("registrar")
    with running_server(create_app(study, answers, busy_timeout=0.2)) as url:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/r/{token}/screen/0")
        page.check("input[value='1']")
        page.wait_for_selector(SAVED)
        assert page.is_enabled("#next")

        lock = sqlite3.connect(answers, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the database
        try:
            page.check("input[value='2']")
            page.wait_for_selector("#status.error:text('Not saved')")
            assert "busy or unavailable" in page.inner_text("#status")
            page.wait_for_function("!document.querySelector(\"input[value='2']\").checked")
            assert page.is_checked("input[value='1']") and page.is_disabled("#next")
        finally:
            lock.execute("ROLLBACK")
            lock.close()

        page.check("input[value='2']")
        page.wait_for_selector(SAVED)
        assert page.is_enabled("#next")
        page.click("#next")
        page.wait_for_url(f"{url}/r/{token}/screen/1")
        context.close()
    assert db.calls(db.reader(token), 0) == {p: p in (1, 2) for p in range(6)}
