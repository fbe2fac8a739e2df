"""Test-session wiring shared by tests/ and the notebooks (nbmake): one real broker for the session.

Tests talk to their own embedded broker on a test port with its own data folder, so a broker a user
runs for the lab (port 9092) is never touched. Set KAFKA_BOOTSTRAP_SERVERS to test against another.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers.config import PROJECT_ROOT

TEST_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "localhost:19092",
    "COURSE_DATA_DIR": str(PROJECT_ROOT / ".course" / "test"),
    "COURSE_JARS_DIR": str(PROJECT_ROOT / ".course" / "jars"),
    "COURSE_RUN_SECONDS": "4",  # notebooks' live demos: short in tests, 30 s for learners
    "COURSE_CLUSTER": "1,1,1",  # chapter 09's clusters: 1 Kafka node, 1 Spark worker, 1 TaskManager
    "COURSE_SOLVE": "1",  # exercises left as stubs are graded with the course's solutions
}
_started = []


def pytest_configure(config) -> None:
    for name, value in TEST_ENV.items():
        os.environ.setdefault(name, value)
    for alias in ("EXAMPLE_KAFKA_SERVER", "EXAMPLE_KAFKA_TOPIC", "EXAMPLE_PRODUCER_INTERVAL"):
        os.environ.pop(alias, None)  # a user's seed variables must not steer the tests


def pytest_sessionstart(session) -> None:
    from helpers import broker

    status = broker.ensure_running()
    if status.started_here:
        _started.append(True)


def pytest_sessionfinish(session, exitstatus) -> None:
    from helpers import broker

    if _started:
        broker.stop()


def pytest_collection_modifyitems(config, items) -> None:
    """A chapter that needs longer than a test's limit says so in its metadata: ``course.test_timeout``.

    Chapter 09 starts three clusters, grows them and rescales a Flink job: several minutes on two cores,
    and how many depends on the machine's load, so 300 s was too tight to be reliable.
    """
    for item in items:
        if item.path.suffix == ".ipynb":
            metadata = json.loads(item.path.read_text()).get("metadata", {})
            seconds = metadata.get("course", {}).get("test_timeout")
            if seconds:
                item.add_marker(pytest.mark.timeout(seconds))
