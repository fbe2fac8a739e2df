"""Break something, then check the guarantee: counts equal the ledger, nothing acknowledged is lost."""

from __future__ import annotations

import time
import uuid

import pytest
from support import counts_when_settled

from helpers import broker, faults
from helpers.consumers.flink import FlinkWordCounter
from helpers.consumers.kafka import DurableKafkaWordCounter, KafkaWordCounter
from helpers.consumers.process import CounterProcess
from helpers.consumers.spark import SparkWordCounter
from helpers.errors import CourseError
from helpers.producer import WordProducer


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


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_broker_killed_mid_stream_and_restarted_every_engine_still_equals_the_ledger(topic):
    counters = [
        KafkaWordCounter(topic=topic),
        DurableKafkaWordCounter(topic=topic),
        SparkWordCounter(topic=topic),
        FlinkWordCounter(topic=topic),
    ]
    for counter in counters:
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
    errors = {c.label: c.snapshot().error for c in counters}
    for counter in counters:
        counter.stop()
    assert counts == {name: stats.ledger for name in counts}, errors
