"""Break something, then check the guarantee: counts equal the ledger, nothing acknowledged is lost."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from kafka.errors import KafkaTimeoutError
from support import cli, counts_when_settled

from helpers import broker, faults, topics
from helpers.consumers import Bound, results
from helpers.consumers.flink import FlinkWordCounter
from helpers.consumers.kafka import DurableKafkaWordCounter, KafkaWordCounter
from helpers.consumers.process import CounterProcess
from helpers.consumers.results import BatchResults, read_records, read_results
from helpers.consumers.spark import SparkWordCounter
from helpers.errors import CourseError
from helpers.producer import WordProducer
from helpers.wait import wait_until


def test_a_paused_consumer_builds_lag_then_catches_up_exactly(topic):
    counter = KafkaWordCounter(topic=topic).start()
    producer = WordProducer(rate=300, topic=topic).start()
    try:
        assert counter.wait_for(records=50, timeout=60).records >= 50
        assert "paused" in faults.pause(counter)
        time.sleep(1.0)
        frozen = counter.snapshot().records
        time.sleep(8.0)  # longer than the watchdog's look: a deliberate pause is left alone
        paused = counter.snapshot()
        assert paused.records == frozen and paused.lag is not None and paused.lag > 300
        assert counter.reconnects == 0
        assert "resumed" in faults.resume(counter)
    finally:
        ledger = producer.stop().ledger
    counts = counts_when_settled([counter], ledger, 60)
    counter.stop()
    assert counts == {"kafka": ledger}


def test_a_counter_process_killed_mid_stream_resumes_exactly(topic):
    group = f"killed-{uuid.uuid4().hex[:6]}"
    first = CounterProcess("kafka", topic=topic, group=group).start()
    producer = WordProducer(rate=300, topic=topic).start()
    try:
        assert first.wait_for(records=200, timeout=120).records >= 200
        assert "SIGKILL" in faults.kill_counter(first)
        assert not first.running
        time.sleep(2.0)  # words keep coming while nothing counts
        resumed = CounterProcess("kafka", topic=topic, group=group).start()
    finally:
        ledger = producer.stop().ledger
    counts = counts_when_settled([resumed], ledger, 120)
    final = resumed.stop()
    assert final.error is None and counts == {"kafka": ledger}


def test_only_a_counter_in_its_own_process_can_be_killed(topic):
    with pytest.raises(CourseError, match="CounterProcess"):
        faults.kill_counter(KafkaWordCounter(topic=topic))


@pytest.mark.jvm
@pytest.mark.serial  # it stops the shared broker: no other test may run meanwhile
@pytest.mark.timeout(600)
def test_the_broker_killed_mid_stream_and_restarted_every_engine_still_equals_the_ledger(
    topic, settings
):
    """Also the transactional results writers: a transaction the outage broke is aborted and redone."""
    spark_results = f"results-spark-{uuid.uuid4().hex[:8]}"
    counters = [
        KafkaWordCounter(topic=topic),
        DurableKafkaWordCounter(topic=topic),
        SparkWordCounter(topic=topic, results_topic=spark_results, exactly_once=True),
        FlinkWordCounter(topic=topic),
    ]
    results_topic = f"results-{uuid.uuid4().hex[:8]}"
    transactional = KafkaWordCounter(
        topic=topic, group=f"eos-{uuid.uuid4().hex[:6]}", from_beginning=False,
        results_topic=results_topic, exactly_once=True,
    )  # fmt: skip
    for counter in [*counters, transactional]:
        counter.start()
    producer = WordProducer(rate=300, topic=topic).start()
    try:
        for counter in counters:
            assert counter.wait_for(records=100, timeout=240).records >= 100, counter.snapshot()
        said = faults.bounce_broker(down=5.0)
        assert "SIGKILL" in said and "is back" in said and broker.status().running
        time.sleep(5.0)  # words flow again after the restart
    finally:
        stats = producer.stop(timeout=120)
    assert stats.failed == 0 and stats.acked == stats.sent  # retried through the outage, none lost
    counts = counts_when_settled(counters, stats.ledger, 180)
    # Spark's results come from a query of its own, which may still be writing batches a second time
    wait_until(lambda: read_results(spark_results, settings) == stats.ledger, 120, "",
               on_timeout="return")  # fmt: skip
    errors = {c.label: c.snapshot().error for c in counters}
    for counter in counters:
        counter.stop()
    assert counts == {name: stats.ledger for name in counts}, errors
    # a transaction the outage broke is given up after the writer's delivery timeout (30 s), then redone
    settled = wait_until(lambda: transactional.snapshot().counts == stats.ledger, 120, "",
                         on_timeout="return")  # fmt: skip
    late = transactional.snapshot()
    assert settled, (late.records, late.lag, late.error, transactional.reconnects,
                     {w: (late.counts.get(w), n) for w, n in stats.ledger.items()})  # fmt: skip
    transactional.stop()
    assert transactional.snapshot().error is None
    assert read_results(results_topic, settings) == stats.ledger  # read_committed: nothing twice
    assert read_results(spark_results, settings) == stats.ledger  # by batch id: nothing twice
    for name in (results_topic, spark_results):
        topics.delete_topic(name, settings=settings)


def test_a_record_larger_than_the_topic_accepts_fails_alone_with_a_one_line_error(
    settings, tmp_path
):
    """The broker takes batches up to the topic's max.message.bytes; one line is far larger."""
    from kafka.admin import NewTopic

    topic = f"test-small-{uuid.uuid4().hex[:8]}"
    with topics.admin(settings) as client:
        client.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "2000"})])
    lines = [f"small line {i} with words" for i in range(300)]
    lines.insert(150, "huge " + "x" * 5000)
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    try:
        result = cli("produce", "--topic", topic, "--input", str(path), "--json")
        produced = json.loads(result.stdout)
        assert result.returncode == 1 and produced["acked"] == 300, produced
        assert produced["failures"] == {"MessageSizeTooLargeError": 1}
        assert (
            "\n" not in produced["error"] and "larger than the topic accepts" in produced["error"]
        )
        assert "huge" not in produced["ledger"] and produced["ledger"]["small"] == 300
        counted = KafkaWordCounter(topic=topic).run(Bound(until_idle=1.5), timeout=60)
        assert counted.error is None and counted.counts == produced["ledger"]
    finally:
        topics.delete_topic(topic, settings)


@pytest.mark.serial  # it stops the shared broker: no other test may run meanwhile
def test_an_outage_longer_than_the_delivery_timeout_fails_those_messages_and_counts_still_match(
    topic,
):
    """Words sent while the broker is down for longer than the delivery timeout are reported failed."""
    counter = KafkaWordCounter(topic=topic).start()
    producer = WordProducer(rate=200, topic=topic, delivery_timeout=4.0).start()
    try:
        time.sleep(2.0)
        producer.rate = 0  # nothing in flight at the kill: every failure below is certain, not
        wait_until(lambda: producer.stats().in_flight == 0, 30, "acknowledgements")  # ambiguous
        before = producer.stats()
        faults.kill_broker()
        producer.rate = 200
        time.sleep(2.0)
        producer.rate = 0
        lost = _sent_once_paused(producer) - before.sent  # a burst under way ends after the rate
        wait_until(lambda: producer.stats().failed >= lost, 30, "the delivery timeout to expire")
        assert "is back" in faults.restart_broker()
        producer.rate = 200
        time.sleep(3.0)
    finally:
        stats = producer.stop(timeout=60)
    assert lost > 100 and stats.failed == lost and stats.acked == stats.sent - lost, stats
    assert "KafkaTimeoutError" in stats.failures and "delivery timeout" in stats.failure_summary()
    assert sum(stats.ledger.values()) == stats.acked  # one word a message
    counts = counts_when_settled([counter], stats.ledger, 120)
    counter.stop()
    assert counts[counter.label] == stats.ledger, counter.snapshot().error


@pytest.mark.serial  # it stops the shared broker: no other test may run meanwhile
def test_a_results_batch_that_timed_out_is_not_committed_and_is_written_once_later(
    topic, settings, monkeypatch
):
    """kafka-python commits a transaction whose records timed out (the Java client aborts it).

    The writer must see the failed send, commit nothing, and leave the batch to be written again.
    """
    monkeypatch.setattr(results, "REQUEST_TIMEOUT_MS", 1000)  # the same path as 30 s, in 2 s
    monkeypatch.setattr(results, "DELIVERY_TIMEOUT_MS", 2000)
    transactional, counts = f"timeout-{uuid.uuid4().hex[:6]}", {"one": 3, "two": 5}
    writer = BatchResults(topic, settings, transactional, writer="w")
    # the topic's leader known beforehand: the send below waits for no metadata
    writer.producer.partitions_for(topic)
    outcome: dict[str, object] = {}

    def write() -> None:
        try:
            outcome["written"] = writer.write_batch(counts, batch=0)
        except Exception as error:  # what the caller (Spark's foreachBatch) would see
            outcome["error"] = error

    faults.kill_broker()
    try:
        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        time.sleep(4.0)  # past the delivery timeout: the batch expired in the producer
    finally:
        assert "is back" in faults.restart_broker()
    thread.join(60)
    writer.close()
    assert isinstance(outcome.get("error"), KafkaTimeoutError), outcome
    assert writer.last_batch == -1 and read_records(topic, settings) == []  # nothing committed
    again = BatchResults(topic, settings, transactional, writer="w")  # aborts what was left open
    try:
        assert again.write_batch(counts, batch=0) and not again.write_batch(counts, batch=0)
    finally:
        again.close()
    assert read_results(topic, settings) == counts  # written once


def _sent_once_paused(producer: WordProducer) -> int:
    """Messages sent, read once the count has stood still for half a second (the rate is 0)."""
    last, now = -1, producer.stats().sent
    while now != last:
        time.sleep(0.5)
        last, now = now, producer.stats().sent
    return now
