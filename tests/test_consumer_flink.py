import dataclasses
import time

import pytest
from support import merged, produce

from helpers.consumers import Bound
from helpers.consumers.flink import FlinkWordCounter
from helpers.errors import CourseError
from helpers.producer import WordProducer

pytestmark = pytest.mark.jvm


def test_stop_mid_stream_with_a_savepoint_and_resume_exactly(settings, topic):
    producer = WordProducer(topic=topic, rate=400, seed=9).start()
    first = FlinkWordCounter(topic=topic).start()
    try:
        first.wait_for(records=300, timeout=90)
        stopped = first.stop(savepoint=True)  # stop the job while words keep arriving
    finally:
        sent_during = producer.stop()
    assert first.savepoint_path and stopped.records >= 300
    after = produce(topic, count=500, seed=10)  # written while no job runs
    resumed = FlinkWordCounter(topic=topic, group=first.group, savepoint=first.savepoint_path)
    snapshot = resumed.run(Bound(until_idle=1.0), timeout=240)
    assert snapshot.error is None
    assert snapshot.counts == merged(sent_during.ledger, after.ledger)
    assert snapshot.records == sent_during.acked + after.acked


def test_rescale_while_words_flow_moves_the_counts_onto_more_instances_exactly(settings):
    from helpers import topics
    from helpers.consumers.flink import plan_graph
    from helpers.demo import settle

    topic = topics.fresh_topic("rescale", partitions=2, settings=settings)
    producer = WordProducer(topic=topic, rate=400, seed=11).start()
    counter = FlinkWordCounter(topic=topic).start()
    try:
        assert "×1" in plan_graph(counter.plan) and "×2" not in plan_graph(counter.plan)
        assert counter.wait_for(records=300, timeout=90).records >= 300
        savepoint = counter.rescale(2)  # while words keep arriving
        assert counter.restored_from == savepoint and counter.running
        assert "×2" in plan_graph(counter.plan)  # every operator now runs twice
        time.sleep(3)
        stats = producer.stop()
        settle([counter], stats.ledger, 120)
        snapshot = counter.stop()
    finally:
        producer.stop()
        counter.stop()
        topics.delete_topic(topic, settings)
    assert snapshot.error is None
    assert snapshot.counts == stats.ledger and snapshot.records == stats.acked
    with pytest.raises(CourseError, match="not running"):
        counter.rescale(3)


def test_missing_connector_is_one_line(settings, topic, tmp_path):
    empty = dataclasses.replace(settings, jars_dir=tmp_path / "none")
    with pytest.raises(CourseError, match="jars fetch"):
        FlinkWordCounter(topic=topic, settings=empty).start()


def test_unreachable_broker_is_one_line(settings, topic):
    away = dataclasses.replace(settings, bootstrap_servers="localhost:1")
    with pytest.raises(CourseError, match="localhost:1"):
        FlinkWordCounter(topic=topic, settings=away).start()


def test_an_idle_partition_holds_the_watermark_back_until_the_idle_timeout(settings):
    """Words on partition 0 only: no watermark, no window, until partition 1 is declared idle.

    Then the watermark (Flink's REST API) follows the newest event time, 10 s behind or more.
    """
    from helpers import topics
    from helpers.wait import wait_until

    topic = topics.fresh_topic("idle", partitions=2, settings=settings)
    producer = WordProducer(topic=topic, rate=300, jitter=3.0, partitions=[0], settings=settings)
    producer.start()
    counter = FlinkWordCounter(topic=topic, idle_timeout=8.0, settings=settings).start()
    try:
        counter.wait_for(records=1, timeout=90)
        time.sleep(4)  # the job has run less than the idle timeout: partition 1 still holds it
        held = counter.snapshot()
        released = wait_until(
            lambda: (s := counter.snapshot()).windows and s.watermark is not None and s,
            60, "the idle timeout to release the watermark", every=0.5,
        )  # fmt: skip
    finally:
        producer.stop()
        counter.stop()
        topics.delete_topic(topic, settings)
    assert held.watermark is None and not held.windows and held.newest_event is not None
    assert 10.0 <= released.newest_event - released.watermark < 30.0, released
    assert released.newest_event <= time.time()
