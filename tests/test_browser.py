"""The walkthrough in a real browser: JupyterLab in Debian's Chromium, driven by Playwright.

nbmake proves that notebooks run; only a browser proves that a learner sees the slider and the chart,
that dragging the slider changes the producer's rate, and that the Stop button stops it.
Screenshots go to test-artifacts/ (not committed).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from support import check_what_a_chapter_shows, require_tool, shown

from helpers import processes, topics
from helpers.lab import install_settings
from helpers.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [pytest.mark.jvm, pytest.mark.browser]


HUB_PREFIX = (
    "/user/learner/"  # as on Binder: the engines' UIs are reached through the server's proxy
)


@pytest.fixture(scope="module")
def lab():
    """JupyterLab on a free port, on the notebooks folder, against the session's broker."""
    port, token = processes.free_port(), secrets.token_hex(16)
    ARTIFACTS.mkdir(exist_ok=True)
    workspaces = ARTIFACTS / "workspaces"  # a fresh layout: no tab from an earlier run reopens
    shutil.rmtree(workspaces, ignore_errors=True)
    install_settings()  # as make lab does: no news pop-up over the charts
    served = ARTIFACTS / "notebooks"  # a copy: JupyterLab autosaves what the test runs into it
    shutil.rmtree(served, ignore_errors=True)
    shutil.copytree(ROOT / "notebooks", served)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--allow-root",
         f"--LabApp.workspaces_dir={workspaces}",
         f"--IdentityProvider.token={token}", f"--notebook-dir={served}",
         f"--ServerApp.base_url={HUB_PREFIX}"],
        # a Binder/JupyterHub-like server: its prefix, and the kernels told it as JupyterHub tells them
        env={**os.environ, "COURSE_RUN_SECONDS": "90", "JUPYTERHUB_SERVICE_PREFIX": HUB_PREFIX},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}{HUB_PREFIX.rstrip('/')}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.3)
    yield base, token
    process.terminate()
    process.wait(30)


@pytest.fixture(autouse=True)
def kernels_shut_down_after(lab):
    """Each test's kernels end with it, and with them the engines' JVMs they own.

    Left running, a live chapter's kernel and its JVM idle beside every later test until the lab
    ends: chapter 10's Run All would share two cores with three of them.
    """
    yield
    base, token = lab

    def call(method: str, path: str):
        request = urllib.request.Request(
            f"{base}/api/{path}", method=method, headers={"Authorization": f"token {token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    for session in call("GET", "sessions"):  # a notebook opened again later gets a new kernel
        call("DELETE", f"sessions/{session['id']}")  # answers once its kernel has shut down
    for kernel in call("GET", "kernels"):
        call("DELETE", f"kernels/{kernel['id']}")
    assert call("GET", "kernels") == []


@pytest.fixture
def page():
    chromium = require_tool("chromium", "chromium-browser")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        yield page
        page.screenshot(path=str(ARTIFACTS / "last-page.png"))  # what the browser showed at the end
        browser.close()


def achieved_rate(page) -> float:
    text = page.locator(".widget-html-content").filter(has_text="producer").first.inner_text()
    return float(re.search(r"achieved ([\d,]+)/s", text).group(1).replace(",", ""))


def wait_for(condition, timeout: float, what: str):
    """wait_until, failing the test (an AssertionError) rather than raising a course error."""
    if not wait_until(condition, timeout, what, every=0.5, on_timeout="return"):
        raise AssertionError(f"timed out waiting for {what}")


def run_cells_above(page, notebook: str, cell_index: int) -> None:
    """Run every cell above ``cell_index`` from JupyterLab's Run menu, as a learner would.

    Only the cells up to the live view: what the test does with the widgets needs no timed run.
    """
    page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)  # the kernel is up
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.click()
    page.keyboard.press("Escape")
    for _ in range(cell_index):  # J: select the next cell (works however long the notebook is)
        page.keyboard.press("j")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_text("Run All Above Selected Cell").first.click()
    page.screenshot(path=str(ARTIFACTS / f"{notebook}-started.png"))


def newest_topic(prefix: str) -> str:
    names = [t for t in topics.cluster()["topics"] if t.startswith(prefix)]
    return sorted(names)[-1]


def test_slider_drives_the_producer_and_the_chart_moves_then_stop_stops_it(lab, page):
    base, token = lab
    page.goto(f"{base}/lab/tree/02_produce_words.ipynb?reset&token={token}")
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=60_000)
    notebook = "02_produce_words"
    run_cells_above(page, notebook, cell_index=live_view_cell(notebook) + 1)  # with the live view

    slider = page.locator(".widget-slider .noUi-handle").first
    slider.wait_for(timeout=90_000)  # the widget rendered
    chart = page.locator(".widget-image").first
    chart.wait_for(timeout=30_000)
    wait_for(lambda: achieved_rate(page) > 0, 30, "the producer to send at its start rate")
    assert page.get_by_text("official Jupyter news").count() == 0, "the news pop-up is back"
    slow = achieved_rate(page)
    before = chart.screenshot()

    slider.focus()
    for _ in range(6):  # 10 -> 20 -> 50 -> 100 -> 200 -> 500 -> 1000 words/s
        page.keyboard.press("ArrowRight")
    wait_for(lambda: achieved_rate(page) > 500, 30, "the achieved rate to follow the slider")
    fast = achieved_rate(page)
    time.sleep(1.0)
    after = chart.screenshot()
    page.screenshot(path=str(ARTIFACTS / "02_produce_words-fast.png"))
    assert slow < 50 and fast > 500
    assert before != after  # the chart redrew with the new counts

    topic = newest_topic("lesson02")
    page.get_by_role("button", name="Stop").first.click()
    wait_for(lambda: "stopped" in page.locator(".widget-html-content").first.inner_text(), 30,
             "the stats to say stopped")  # fmt: skip
    end = topics.describe_topic(topic)["messages"]
    time.sleep(2.0)
    assert topics.describe_topic(topic)["messages"] == end  # nothing keeps sending
    page.screenshot(path=str(ARTIFACTS / "02_produce_words-stopped.png"))


def every_counter_counts(stats) -> bool:
    """Every counter's line shows records: the engines are up (the slider is timed from here)."""
    lines = [line for line in stats.inner_text().splitlines() if " records" in line]
    return bool(lines) and all(re.search(r": [1-9][\d,]* records", line) for line in lines)


def wait_steady(stats, timeout: float) -> bool:
    """Wait until every counter is under 2 s behind (latency p50, and lag in words at the asked rate).

    Two seconds of words at the asked rate: Spark's micro-batches keep it a batch or two behind even
    when it keeps up, so a fixed number of records would wait for a state Spark never reaches.
    """

    def steady() -> bool:
        text = stats.inner_text()
        asked = re.search(r"asked (\d+)/s", text)
        lines = [line for line in text.splitlines() if "records" in line]
        lags = [re.search(r"lag (\d+)", line) for line in lines]
        p50s = [re.search(r"latency p50 ([\d,]+) ms", line) for line in lines]
        behind = 2 * int(asked.group(1)) if asked else 100
        return (
            bool(lines)
            and all(p50 and int(p50.group(1).replace(",", "")) < 2000 for p50 in p50s)
            and all(lag and int(lag.group(1)) < behind for lag in lags)
        )

    return bool(wait_until(steady, timeout, "", every=0.5, on_timeout="return"))


def frames_per_second(chart, seconds: float) -> float:
    """How often the chart's picture changes, as the browser shows it."""
    frames, last = 0, chart.screenshot()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(0.1)
        shot = chart.screenshot()
        frames += shot != last
        last = shot
    return frames / (time.monotonic() - started)


TRACE = re.compile(
    r"Traceback \(most recent call last\)|Exception in thread|live view error|\w+Error: "
)


def stats_line(page):
    """The live view's stats, scrolled into view: JupyterLab renders off-screen cells lazily, and a
    cell it has not rendered reads as empty text."""
    stats = (
        page.locator(".jp-NotebookPanel:visible .widget-html-content")
        .filter(has_text="producer")
        .first
    )
    stats.scroll_into_view_if_needed()
    return stats


def sent(page) -> int:
    return int(re.search(r"sent ([\d,]+)", stats_line(page).inner_text()).group(1).replace(",", ""))


# What a learner types into chapter 03's exercise cell (not the course's solution: its own words).
TYPED_ANSWER = """from collections import Counter

from kafka import KafkaConsumer

from helpers.text import tokenize


def count_batch(batch: dict, counts: Counter, consumer: KafkaConsumer) -> None:
    for partition, records in batch.items():
        for record in records:
            for word in tokenize(record.value.decode("utf-8")):
                counts[word] += 1
    consumer.commit()
"""
TYPED = {"03_count_with_kafka": ("def count_batch", TYPED_ANSWER)}


def run_cell(page, holding: str) -> None:
    """Run the first cell holding ``holding`` (Shift+Enter in its editor)."""
    cell = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").filter(has_text=holding).first
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").first.click()
    page.keyboard.press("Shift+Enter")


def type_into_cell(page, holding: str, text: str) -> None:
    """Replace the code of the cell holding ``holding`` with ``text``, as a learner types it."""
    cell = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").filter(has_text=holding).first
    cell.scroll_into_view_if_needed()
    editor = cell.locator(".cm-content").first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)  # inserted as is: no auto-indent of each typed line
    page.keyboard.press("Escape")


def saved_cells(page, notebook: str) -> list[dict]:
    """The notebook's cells with their outputs, as JupyterLab saves them (Ctrl+S, then read back).

    (Off-screen cells are not rendered, so the page cannot be read for them.)
    """
    saved = ARTIFACTS / "notebooks" / f"{notebook}.ipynb"
    before = saved.stat().st_mtime
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    wait_for(lambda: saved.stat().st_mtime > before, 30, "JupyterLab to save the notebook")
    return json.loads(saved.read_text())["cells"]


def saved_check_output(page, notebook: str, cells: list[dict] | None = None) -> str:
    """What the first check cell printed or raised, in ``cells`` or the notebook saved now."""
    cells = cells if cells is not None else saved_cells(page, notebook)
    check = next(c for c in cells if "check" in c.get("metadata", {}).get("tags", []))
    return "".join(
        "".join(o.get("text", "")) + o.get("evalue", "") for o in check.get("outputs", [])
    )


def wait_for_check_output(page, notebook: str, start: str, timeout: float) -> str:
    """The first check cell's output once it begins with ``start`` (saving the notebook to read it)."""
    deadline = time.monotonic() + timeout
    while True:
        said = saved_check_output(page, notebook)
        if said.lstrip().startswith(start) or time.monotonic() > deadline:
            return said.strip()
        time.sleep(3.0)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("notebook", ["03_count_with_kafka", "06_count_three_ways_at_once"])
def test_slider_and_stop_work_while_the_run_cell_runs_under_run_all(lab, page, notebook):
    """As a learner does: Run All, then drag the slider and press Stop while the timed run executes.

    The run cell awaits, so the kernel hears the widgets: the asked rate follows within 2 s, sending
    stops within 2 s, and the chapter still runs to its end with no trace in any output. This run is
    the chapter's only execution in a suite that selects it (conftest), so it gets nbmake's checks too.
    """
    base, token = lab
    page.goto(f"{base}/lab/tree/{notebook}.ipynb?reset&token={token}")
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)  # the kernel is up
    if notebook in TYPED:  # the learner writes the exercise before running everything
        type_into_cell(page, *TYPED[notebook])
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_text("Run All Cells").first.click()

    running = page.locator(".jp-NotebookPanel:visible .widget-html-content").filter(
        has_text=re.compile(r"^running")
    )
    running.first.wait_for(timeout=360_000)  # the timed run cell is executing (its progress bar)
    chart = page.locator(".jp-NotebookPanel:visible .widget-image").first
    try:
        wait_for(lambda: every_counter_counts(stats_line(page)), 120, "every engine to count")
    except AssertionError:
        raise AssertionError(
            f"not every engine counts: {stats_line(page).inner_text()!r}"
        ) from None
    before = chart.screenshot()
    slider = page.locator(".jp-NotebookPanel:visible .widget-slider .noUi-handle").first
    slider.focus()
    for _ in range(4):  # 10 -> 20 -> 50 -> 100 -> 200 words/s
        page.keyboard.press("ArrowRight")
    wait_for(lambda: "asked 200/s" in stats_line(page).inner_text(), 2.5,
             "the asked rate to follow the slider during the run")  # fmt: skip
    wait_for(lambda: sent(page) > 0 and chart.screenshot() != before, 30, "the chart to move")
    steady = wait_steady(stats_line(page), timeout=40)
    page.screenshot(
        path=str(ARTIFACTS / f"{notebook}-live.png")
    )  # the README's: steady, if it got so
    fps = frames_per_second(chart, seconds=6)
    (ARTIFACTS / f"{notebook}-fps.txt").write_text(f"{fps:.1f} frames/s, steady: {steady}\n")
    print(f"{notebook}: the live view redrew {fps:.1f} frames/s (steady state: {steady})")
    assert fps > 0, "the chart does not move while words flow"  # the figure itself: the report
    assert running.count() > 0, "the run ended before the widgets were tried: raise its seconds"

    page.get_by_role("button", name="Stop").first.click()
    time.sleep(2.0)
    stopped_at = sent(page)
    time.sleep(2.0)
    assert sent(page) == stopped_at, "the producer still sends 2 s after Stop"

    wait_for(lambda: every_cell_ran(page), 300, "the chapter to run to its end")
    page.screenshot(path=str(ARTIFACTS / f"{notebook}-run-all.png"))
    outputs = "\n".join(page.locator(".jp-NotebookPanel:visible .jp-OutputArea").all_inner_texts())
    assert TRACE.search(outputs) is None, f"a trace in the outputs: {TRACE.search(outputs)}"
    assert "stopped" in stats_line(page).inner_text()
    # this run is the chapter's one execution in the suite (conftest): nbmake's checks, here
    cells = saved_cells(page, notebook)
    check_what_a_chapter_shows(notebook, cells)
    if notebook in TYPED:  # the check graded what was typed, not the course's solution
        check = saved_check_output(page, notebook, cells)
        assert check.startswith("RIGHT: your loop counted") and "COURSE_SOLVE" not in check, check


ENGINE_UIS = {  # the line a chapter prints with its engine's UI, and a word that UI's page shows
    "04_count_with_spark": (r"Spark UI: (\S+)", "Spark", "Completed Jobs"),
    "05_count_with_flink": (r"web UI: (\S+)", "Flink", "course-flink-"),  # the job, its data read
}


def opens_through_the_proxy(page, base: str, notebook: str) -> None:
    """The UI link the chapter printed goes through the notebook server's proxy, and opens there."""
    pattern, title, on_page = ENGINE_UIS[notebook]
    output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").filter(
        has_text=re.compile(pattern)
    )
    link = re.search(pattern, output.first.inner_text()).group(1)
    assert link.startswith(HUB_PREFIX + "proxy/"), link  # not the container's own address
    ui = page.context.new_page()
    try:
        answer = ui.goto(base.removesuffix(HUB_PREFIX.rstrip("/")) + link, timeout=60_000)
        assert answer.ok, (link, answer.status)
        wait_for(lambda: title in ui.title(), 30, f"{title}'s UI through the proxy ({link})")
        ui.get_by_text(on_page).first.wait_for(
            timeout=30_000
        )  # its pages ask the engine, via the proxy
        ui.screenshot(path=str(ARTIFACTS / f"{notebook}-ui.png"))
    finally:
        ui.close()


def live_view_cell(notebook: str) -> int:
    """Index of a chapter's first cell that makes a live view."""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    return next(i for i, cell in enumerate(cells) if "LiveView(" in "".join(cell["source"]))


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "notebook",
    ["04_count_with_spark", "05_count_with_flink", "08_break_it_and_watch_it_recover"],
)  # fmt: skip
def test_every_live_chapter_counts_on_a_moving_chart_and_stops(lab, page, notebook):
    base, token = lab
    page.goto(f"{base}/lab/tree/{notebook}.ipynb?reset&token={token}")
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=60_000)
    run_cells_above(page, notebook, cell_index=live_view_cell(notebook) + 1)
    chart = page.locator(".jp-NotebookPanel:visible .widget-image").first
    chart.wait_for(timeout=360_000)  # 04 and 05 first grade the exercise on Spark or Flink
    stats = (
        page.locator(".jp-NotebookPanel:visible .widget-html-content")
        .filter(has_text="producer")
        .first
    )
    wait_for(lambda: re.search(r"</b>: [1-9]\d* records", stats.inner_html()) is not None, 180,
             "a counter to count")  # fmt: skip
    before = chart.screenshot()
    wait_for(lambda: chart.screenshot() != before, 30, "the chart to move with time")
    time.sleep(3.0)
    page.screenshot(path=str(ARTIFACTS / f"{notebook}-live.png"))
    if notebook in ENGINE_UIS:
        opens_through_the_proxy(page, base, notebook)
    page.locator(".jp-NotebookPanel:visible").get_by_role("button", name="Stop").first.click()
    wait_for(lambda: "stopped" in stats.inner_text(), 120, "the view to stop")


def every_cell_ran(page) -> bool:
    """The kernel is idle and every code cell has run: none waits with [*] or [ ]."""
    prompts = page.locator(".jp-NotebookPanel:visible .jp-InputArea-prompt").all_inner_texts()
    return page.get_by_text(re.compile(r"\| Idle")).count() > 0 and all(
        re.search(r"\[\d+\]", p) for p in prompts if p.strip()
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("notebook", ["10_exactly_once_all_the_way"])
def test_a_chapter_runs_whole_and_shows_its_surplus_then_none(lab, page, notebook):
    """Run All, as a learner does; the chapter's only execution in a suite that selects this test.

    It gets nbmake's checks on the notebook JupyterLab saved, and its table shows what it teaches:
    a surplus for every at-least-once run, none for every exactly-once one.
    """
    base, token = lab
    page.goto(f"{base}/lab/tree/{notebook}.ipynb?reset&token={token}")
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)  # the kernel is up
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_text("Run All Cells").first.click()
    time.sleep(5.0)  # the first cells are running
    wait_for(lambda: every_cell_ran(page), 600, "the chapter to run to its end")
    page.screenshot(path=str(ARTIFACTS / f"{notebook}-run-all.png"), full_page=True)
    cells = saved_cells(page, notebook)
    check_what_a_chapter_shows(notebook, cells)
    table = next(shown(c) for c in cells if "runs = [" in "".join(c["source"]))
    rows = re.findall(r"(kafka|spark|flink)\s+(at-least-once|exactly-once)\s+(\d+)", table)
    assert len(rows) == 6, table[:2000]  # three engines, two guarantees, shown in the table
    assert "RIGHT:" in saved_check_output(page, notebook, cells)


def test_a_learner_types_a_wrong_answer_reads_why_then_types_the_right_one(lab, page):
    """Chapter 07's prediction, typed: refused in one line with the first hint, then accepted."""
    base, token = lab
    notebook = "07_share_partitions_in_a_group"
    page.goto(f"{base}/lab/tree/{notebook}.ipynb?reset&token={token}")
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"\| Idle")).first.wait_for(timeout=60_000)  # the kernel is up
    run_cell(page, "settings = ready()")
    attempts = {"prediction = [3, 0]\n": "WRONG", "prediction = [2, 1]\n": "RIGHT"}
    said = {}
    for typed, verdict in attempts.items():
        type_into_cell(page, "prediction = ", typed)
        run_cell(page, "prediction = [")
        run_cell(page, "exercises.check(")
        said[verdict] = wait_for_check_output(page, notebook, verdict, 120)
    assert said["WRONG"].startswith("WRONG: the group split its partitions [2, 1]; you predicted")
    assert "Hint 1 of 2" in said["WRONG"] and "\n" not in said["WRONG"], said["WRONG"]
    assert said["RIGHT"].startswith("RIGHT: the group really split its partitions [2, 1]"), said
