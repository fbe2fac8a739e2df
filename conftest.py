"""Test-session wiring shared by tests/ and the notebooks (nbmake): one real broker for the session.

Tests talk to their own embedded broker on a test port with its own data folder, so a broker a user
runs for the lab (port 9092) is never touched. Set KAFKA_BOOTSTRAP_SERVERS to test against another.
"""

from __future__ import annotations

import os

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
