"""Test-session wiring shared by tests/ and the notebooks (nbmake): one real broker for the session.

Tests talk to their own embedded broker on a test port with its own data folder, so a broker a user
runs for the lab (port 9092) is never touched. Set KAFKA_BOOTSTRAP_SERVERS to test against another.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from helpers.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "tests"))  # support.py's checks, for the notebooks' runs too

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
    config.pluginmanager.register(OneExecutionPerChapter(), "one-execution-per-chapter")
    for name, value in TEST_ENV.items():
        os.environ.setdefault(name, value)
    if _controls_workers(config):  # the workers, started after this, inherit where to list
        data = Path(os.environ["COURSE_DATA_DIR"])
        data.mkdir(parents=True, exist_ok=True)
        os.environ[GROUPS_FILE] = str(data / f"tests-one-at-a-time-{os.getpid()}.txt")
    for alias in ("EXAMPLE_KAFKA_SERVER", "EXAMPLE_KAFKA_TOPIC", "EXAMPLE_PRODUCER_INTERVAL"):
        os.environ.pop(alias, None)  # a user's seed variables must not steer the tests


# Under `pytest -n 2` (make test) the tests that start an engine, a cluster, a browser or a chapter run
# one after another in one worker (two at once would fight over two cores and their timings); the unit
# and broker-only tests run beside them in the other. ``serial``: a test that stops the shared broker.
ONE_AT_A_TIME = ("jvm", "notebook", "cluster", "browser", "serial")


GROUPS_FILE = "COURSE_TESTS_ONE_AT_A_TIME"  # where workers list those tests for the controller
# seconds a test waits for the one beside it (the quick tests take minutes in all)
LOCK_WAIT = 900.0


@pytest.hookimpl(tryfirst=True)  # written before xdist's own hook sends the collection
def pytest_collection_finish(session) -> None:
    """A worker lists the tests to run one at a time (by their markers) for the controller's scheduler."""
    listing = os.environ.get(GROUPS_FILE)
    if not (listing and hasattr(session.config, "workerinput")):
        return
    heavy = [item.nodeid for item in session.items
             if any(item.get_closest_marker(name) for name in ONE_AT_A_TIME)]  # fmt: skip
    written = Path(f"{listing}.{os.getpid()}")
    written.write_text("\n".join(heavy))
    written.replace(listing)  # whole, at once: both workers write the same list


@pytest.hookimpl(optionalhook=True)  # an xdist hook: only `make test` runs pytest with -n
def pytest_xdist_make_scheduler(config, log):
    """Load scheduling, with every test the workers listed as one unit, in collection order.

    (xdist's own ``--dist loadgroup`` marks no group under pytest 9.2: it renames a node id that
    pytest no longer reads.)
    """
    from xdist.scheduler import LoadScopeScheduling

    if GROUPS_FILE not in os.environ:  # workers made without -n (--tx): plain load scheduling
        return None
    listing = Path(os.environ[GROUPS_FILE])

    class OneAtATime(LoadScopeScheduling):
        heavy: set[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.heavy is None:  # read once every worker's collection is in
                self.heavy = set(listing.read_text().splitlines())
            return "one-at-a-time" if nodeid in self.heavy else nodeid

    return OneAtATime(config, log)


def _controls_workers(config) -> bool:
    """This process hands tests to xdist workers (and runs none itself)."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", 0))


def pytest_sessionstart(session) -> None:
    """With workers, the controller starts the broker once for all of them, and stops it at the end.

    Two workers starting it lazily would race for its port; and the first worker to finish would stop
    it under the other. A run of unit tests only (``-m unit``) starts none.
    """
    if _controls_workers(session.config) and session.config.option.markexpr != "unit":
        from helpers import broker

        if broker.ensure_running().started_here:
            _started.append(True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """In a worker, a ``serial`` test runs alone: it waits for the other worker's test to end.

    A file lock read-shared by every other test and held whole by a serial one, so a broker stopped on
    purpose never fails a test beside it. (The other worker's quick tests are done within minutes.)
    """
    if not hasattr(item.config, "workerinput"):
        return (yield)
    import fcntl

    lock_file = Path(os.environ["COURSE_DATA_DIR"]) / "tests-beside-each-other.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as lock:
        alone = item.get_closest_marker("serial") is not None
        mode = (fcntl.LOCK_EX if alone else fcntl.LOCK_SH) | fcntl.LOCK_NB
        # outside pytest-timeout's watch: a bound of its own
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, mode)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"waited {LOCK_WAIT:.0f} s for the test beside this one to end")
                time.sleep(0.2)
        try:
            return (yield)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pytest_runtest_setup(item) -> None:
    """The broker starts with the first test that needs one: a unit test (marked ``unit``) does not."""
    if item.get_closest_marker("unit") is None and not _asked:
        from helpers import broker

        _asked.append(True)
        if broker.ensure_running().started_here:
            _started.append(True)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _controls_workers(session.config):
        Path(os.environ[GROUPS_FILE]).unlink(missing_ok=True)
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
    if hasattr(config, "workerinput"):
        # last in their worker, when the other has long finished its quick tests: those that stop the
        # broker (no wait for the lock), then the browser's, whose 2-second checks of the live widgets
        # then have both cores
        items.sort(key=lambda item: (item.get_closest_marker("browser") is not None,
                                     item.get_closest_marker("serial") is not None))  # fmt: skip


# The browser tests that run a chapter whole (Run All), with the checks nbmake's run gets
WHOLE_IN_A_BROWSER = {
    "test_slider_and_stop_work_while_the_run_cell_runs_under_run_all",
    "test_a_chapter_runs_whole_and_shows_its_surplus_then_none",
}


class OneExecutionPerChapter:
    """A chapter a selected browser test runs whole is not run again by nbmake.

    It acts last, on what ``-m`` and ``-k`` left selected: a browser test filtered out leaves its
    chapter to nbmake. Without Chromium the browser tests skip, and nbmake runs every chapter.
    """

    def __init__(self) -> None:
        self.in_a_browser: list[str] = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items) -> None:
        if not (shutil.which("chromium") or shutil.which("chromium-browser")):
            return
        whole = {item.callspec.params["notebook"] for item in items
                 if getattr(item, "originalname", "") in WHOLE_IN_A_BROWSER}  # fmt: skip
        again = [item for item in items if item.path.suffix == ".ipynb" and item.path.stem in whole]
        if again:
            items[:] = [item for item in items if item not in again]
            config.hook.pytest_deselected(items=again)
            self.in_a_browser = sorted(whole)

    def pytest_report_collectionfinish(self, config) -> list[str]:
        """Say which chapters the browser tests execute instead of nbmake, so no one looks for them."""
        if not self.in_a_browser:
            return []
        return [
            f"run whole by the browser tests, not again by nbmake: {', '.join(self.in_a_browser)}"
        ]


# --- one execution per notebook: the checks on what a chapter shows read nbmake's own run -----------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """After nbmake ran a chapter without error: no background thread failed, and no noise.

    A thread's failure does not stop a cell, so nbmake alone would pass it: the outputs are read for
    the trace of a dead thread or the live view's one-line failure. The chapters with Spark and Flink
    send the JVMs' consoles to log files: their outputs hold no log line, warning or trace either.
    Both read the executed notebook of nbmake's own run: no second execution (and a chapter the
    browser tests run whole is checked the same way there, on the notebook JupyterLab saved).
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
    from support import check_what_a_chapter_shows

    check_what_a_chapter_shows(item.path.stem, [dict(cell) for cell in executed[0].nb.cells])
    return result
