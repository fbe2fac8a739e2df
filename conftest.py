"""Test-session wiring shared by tests/ and the notebooks (nbmake): one real broker for the session.

Tests talk to their own embedded broker on a test port with its own data folder, so a broker a user
runs for the lab (port 9092) is never touched. Set KAFKA_BOOTSTRAP_SERVERS to test against another.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from helpers.config import PROJECT_ROOT

TEST_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "localhost:19092",
    "COURSE_DATA_DIR": str(PROJECT_ROOT / ".course" / "test"),
    "COURSE_JARS_DIR": str(PROJECT_ROOT / ".course" / "jars"),
    "COURSE_RUN_SECONDS": "4",  # notebooks' live demos: short in tests, 30 s for learners
    "COURSE_CLUSTER": "1,1,1",  # chapter 09's clusters: 1 Kafka node, 1 Spark worker, 1 TaskManager
    "COURSE_SOLVE": "1",  # exercises left as stubs are graded with the course's solutions
    "COURSE_ENGINE_UI": "1",  # Spark's UI on, as in a notebook, whichever test starts Spark first
}
_started = []  # the broker was started by this session
_asked = []  # a test needing the broker has run


def pytest_configure(config) -> None:
    for name, value in TEST_ENV.items():
        os.environ.setdefault(name, value)
    for alias in ("EXAMPLE_KAFKA_SERVER", "EXAMPLE_KAFKA_TOPIC", "EXAMPLE_PRODUCER_INTERVAL"):
        os.environ.pop(alias, None)  # a user's seed variables must not steer the tests


def pytest_runtest_setup(item) -> None:
    """The broker starts with the first test that needs one: a unit test (marked ``unit``) does not."""
    if item.get_closest_marker("unit") is None and not _asked:
        from helpers import broker

        _asked.append(True)
        if broker.ensure_running().started_here:
            _started.append(True)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _started:
        from helpers import broker

        broker.stop()


def pytest_collection_modifyitems(config, items) -> None:
    """Notebooks are marked ``notebook``; one needing longer than a test's limit says so in its metadata.

    ``course.test_timeout``: chapter 09 starts three clusters, grows them and rescales a Flink job:
    several minutes on two cores, and how many depends on the machine's load, so 300 s was too tight.
    """
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)
            metadata = json.loads(item.path.read_text()).get("metadata", {})
            seconds = metadata.get("course", {}).get("test_timeout")
            if seconds:
                item.add_marker(pytest.mark.timeout(seconds))


# --- one execution per notebook: the checks on what a chapter shows read nbmake's own run -----------

QUIET_CHAPTERS = {"04_count_with_spark", "05_count_with_flink", "06_count_three_ways_at_once"}
NOISE = re.compile(
    r"\bWARN(ING)?\b"  # a log level, Java's or Python's
    r"|\b(INFO|ERROR|DEBUG)\s+[\w.$]+:"  # a JVM log line: level, logger, message
    r"|^\s+at [\w.$]+\(|Traceback \(most recent call last\)|Exception in thread"  # stack traces
    r"|SLF4J|log4j",
    re.MULTILINE,
)


# A thread that died with a trace, or the live view's one line for a failure in its threads
FAILED_THREAD = re.compile(r"Exception in thread.*|live view error: .*")


def shown(cell: dict) -> str:
    """Everything a cell's outputs put in front of a learner."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for kind, value in output.get("data", {}).items():
            if kind.startswith("text/"):
                parts.append("".join(value))
        parts += output.get("traceback", [])
    return "\n".join(parts)


def noisy_cells(cells: list[dict]) -> dict[int, str]:
    """Cells whose outputs show a log line, a warning or a stack trace: {index: the match, in context}.

    The context (the match and what follows it) is what a failing CI run needs to find the cause.
    """
    return {
        index: text[match.start() : match.start() + 1500]
        for index, cell in enumerate(cells)
        if (text := shown(cell)) and (match := NOISE.search(text))
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After nbmake ran a chapter without error: no background thread failed, and no noise.

    A thread's failure does not stop a cell, so nbmake alone would pass it: the outputs are read for
    the trace of a dead thread or the live view's one-line failure. The chapters with Spark and Flink
    send the JVMs' consoles to log files: their outputs hold no log line, warning or trace either.
    Both read the executed notebook of nbmake's own run: no second execution.
    """
    if item.path.suffix != ".ipynb":
        return (yield)
    from nbmake.nb_run import NotebookRun

    executed: list = []
    run = NotebookRun.execute

    def keep(self, *args, **kwargs):
        executed.append(run(self, *args, **kwargs))
        return executed[-1]

    NotebookRun.execute = keep
    try:
        result = yield
    finally:
        NotebookRun.execute = run
    cells = [dict(cell) for cell in executed[0].nb.cells]
    failed = {i: FAILED_THREAD.search(shown(cell)).group(0) for i, cell in enumerate(cells)
              if FAILED_THREAD.search(shown(cell))}  # fmt: skip
    assert failed == {}, f"a background thread failed (cell: line): {failed}"
    if item.path.stem in QUIET_CHAPTERS:
        noisy = noisy_cells(cells)
        assert noisy == {}, f"cells printing noise (cell: first match, in context): {noisy}"
        assert any(shown(cell) for cell in cells)  # it did show something
    return result
