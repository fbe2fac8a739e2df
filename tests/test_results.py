"""Results to a Kafka topic, with a stated guarantee, tested by killing the counter that writes them.

`python -m helpers consume --results-topic R` writes each counted batch as increments per word, so the
sum per word over R equals the producer's ledger only if no batch was written twice. Without
`--exactly-once` a crash between writing and committing writes a batch twice (a surplus, asserted so
the lesson cannot vanish). With it, the plain counter commits results and offsets in one Kafka
transaction; Spark commits each batch's results in one transaction carrying the batch's id and skips a
replayed id; Flink writes each closed window's counts in transactions that its checkpoints commit.
Every way, a `read_committed` reader sums to the ledger exactly.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid

import pytest
from support import kill_mid_stream

from helpers import engines, topics
from helpers.config import PROJECT_ROOT
from helpers.consumers.results import READ_UNCOMMITTED, read_results
from helpers.producer import WordProducer

KILLED = -signal.SIGKILL


@pytest.fixture
def results_topic(settings):
    name = f"results-{uuid.uuid4().hex[:10]}"
    yield name
    if topics.topic_exists(name, settings):
        topics.delete_topic(name, settings=settings)


RESULT_ENGINES = [  # every engine writes results; a JVM's are marked
    pytest.param(e.name, marks=[pytest.mark.jvm] if e.jvm else []) for e in engines.ENGINES.values()
]
# Exactly-once by Kafka transactions that a crash leaves open (the restart aborts them), or by batch id
TRANSACTIONS = {"kafka", "flink"}


def _consume(engine: str, topic: str, group: str, results: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "helpers", "consume", "--engine", engine, "--topic", topic,
            "--group", group, "--results-topic", results, *extra]  # fmt: skip


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
@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_a_crash_between_writing_results_and_committing(
    engine, exactly_once, settings, topic, results_topic
):
    """The deterministic crash point: batch 1 written, its offsets not committed, SIGKILL.

    (Flink: the job's windows written, before the first checkpoint that would commit them.)
    """
    producer = WordProducer(topic=topic, rate=2000, count=600, seed=3, settings=settings).start()
    producer.wait(60)
    stats = producer.stop()
    assert stats.acked == 600
    group = f"results-{uuid.uuid4().hex[:8]}"
    once = ["--exactly-once"] if exactly_once else []
    command = _consume(engine, topic, group, results_topic, *once)
    crashed = subprocess.run(
        [*command, "--crash-before-commit", "1", "--until-idle", "3"], capture_output=True,
        text=True, timeout=120, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert crashed.returncode == KILLED, crashed.stderr[-2000:]
    if exactly_once and engine in TRANSACTIONS:  # the results' transaction, left open:
        assert read_results(results_topic, settings) == {}  # visible to read_uncommitted only
        assert sum(read_results(results_topic, settings, READ_UNCOMMITTED).values()) > 0
    if exactly_once and engine == "spark":  # the batch's results committed, Spark's commit not made
        assert read_results(results_topic, settings) == stats.ledger

    _resume(command)

    committed = read_results(results_topic, settings)
    surplus = {word: committed[word] - n for word, n in stats.ledger.items()}
    if exactly_once:  # Spark replayed the batch: its id was on the topic, so nothing was written
        assert committed == stats.ledger
        if engine in TRANSACTIONS:  # the killed transaction's records: in the log, aborted
            assert sum(read_results(results_topic, settings, READ_UNCOMMITTED).values()) > 600
    else:
        assert set(committed) == set(stats.ledger) and min(surplus.values()) >= 0, surplus
        assert sum(surplus.values()) > 0, "a batch written before the crash was not written twice"


@pytest.mark.parametrize("engine", RESULT_ENGINES)
def test_exactly_once_results_survive_a_kill_9_mid_stream(engine, settings, topic, results_topic):
    """Killed at whatever moment it is in while words flow; resumed, R sums to the ledger."""
    group = f"results-{uuid.uuid4().hex[:8]}"
    command = _consume(engine, topic, group, results_topic, "--exactly-once")
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
