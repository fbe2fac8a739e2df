"""Results to a Kafka topic under exactly-once, tested by killing the counter that writes them mid-stream.

`python -m helpers consume --results-topic R --exactly-once` writes each counted batch as increments per
word, so the sum per word over R equals the producer's ledger only if no batch was written twice. The
deterministic crash between writing and committing, under both guarantees and every engine (a surplus
without `--exactly-once`, none with it), is chapter 10's own experiment, asserted in the chapter
(`helpers.guarantees`); here each engine is killed at whatever moment it is in while words flow.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
from support import kill_mid_stream

from helpers import engines, topics
from helpers.config import PROJECT_ROOT
from helpers.consumers.results import read_results
from helpers.guarantees import consume_command
from helpers.producer import WordProducer


@pytest.fixture
def results_topic(settings):
    name = f"results-{uuid.uuid4().hex[:10]}"
    yield name
    if topics.topic_exists(name, settings):
        topics.delete_topic(name, settings=settings)


RESULT_ENGINES = [  # every engine writes results; a JVM's are marked
    pytest.param(e.name, marks=[pytest.mark.jvm] if e.jvm else []) for e in engines.ENGINES.values()
]


def _resume(command: list[str]) -> dict:
    """The same command again, until idle; its JSON result (no error)."""
    done = subprocess.run(
        [*command, "--until-idle", "3", "--json"], capture_output=True, text=True, timeout=120,
        cwd=PROJECT_ROOT,
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result.get("error") is None, result["error"]
    return result


@pytest.mark.parametrize("engine", RESULT_ENGINES)
def test_exactly_once_results_survive_a_kill_9_mid_stream(engine, settings, topic, results_topic):
    """Killed at whatever moment it is in while words flow; resumed, R sums to the ledger."""
    group = f"results-{uuid.uuid4().hex[:8]}"
    command = consume_command(
        engine, topic, group, "--results-topic", results_topic, "--exactly-once"
    )
    first = subprocess.Popen(
        command, cwd=PROJECT_ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    producer = WordProducer(topic=topic, rate=400, duration=120, seed=7, settings=settings).start()
    stats = kill_mid_stream(
        first, producer,
        lambda: topics.topic_exists(results_topic, settings)
        and sum(read_results(results_topic, settings).values()) > 200,
        60, "the counter's first committed results",
    )  # fmt: skip
    assert stats.failed == 0 and stats.acked > 500
    _resume(command)
    assert read_results(results_topic, settings) == stats.ledger
