import dataclasses
import time

import pytest
from support import merged, produce

from helpers import topics
from helpers.consumers import Bound
from helpers.consumers.spark import SparkWordCounter
from helpers.errors import CourseError

pytestmark = pytest.mark.jvm


def test_restart_from_the_checkpoint_neither_loses_nor_double_counts(settings, topic, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    first = produce(topic, count=1000, seed=1)
    part1 = SparkWordCounter(topic=topic, checkpoint=checkpoint).run(Bound(until_idle=1.0), 240)
    assert part1.counts == first.ledger
    second = produce(topic, count=700, seed=2)  # written while no Spark query runs
    part2 = SparkWordCounter(topic=topic, checkpoint=checkpoint).run(Bound(until_idle=1.0), 240)
    assert part2.counts == merged(first.ledger, second.ledger)
    assert part2.records == 1700
    # written by the course's file system: no Hadoop checksum files, Hadoop's modes set from Java
    written = [p for p in checkpoint.rglob("*") if p.is_file() and p.name != "results.json"]
    assert any(p.parent.name == "offsets" for p in written) and any(
        ".delta" in p.name for p in written
    )
    assert not [p.name for p in written if p.name.endswith(".crc")]
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {"0o644"}  # 0666 less Hadoop's umask


def test_records_deleted_before_they_are_read_are_reported_as_lost(settings, topic, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    produce(topic, count=300, seed=1)
    SparkWordCounter(topic=topic, checkpoint=checkpoint).run(Bound(until_idle=1.0), 240)
    produce(topic, count=500, seed=2)  # offsets 300..799, then retention takes 300..599 unread
    topics.delete_records_before(topic, 600, settings=settings)
    resumed = SparkWordCounter(topic=topic, checkpoint=checkpoint).run(Bound(until_idle=1.0), 240)
    assert resumed.lost == 300
    assert resumed.records == 500
    assert "300 records were deleted" in resumed.as_json()["error"]


def test_missing_connector_is_one_line(settings, topic, tmp_path):
    empty = dataclasses.replace(settings, jars_dir=tmp_path / "none")
    with pytest.raises(CourseError, match="jars fetch"):
        SparkWordCounter(topic=topic, settings=empty).start()


def test_missing_topic_is_one_line(settings):
    with pytest.raises(CourseError, match="does not exist"):
        SparkWordCounter(topic="no-such-topic-here").start()


def test_the_watermark_follows_the_newest_event_time_ten_seconds_behind(settings):
    """Spark's progress: the newest event time its windows saw, and a watermark >= 10 s behind it."""
    from helpers.live import _event_time
    from helpers.producer import WordProducer
    from helpers.wait import wait_until

    topic = topics.fresh_topic("watermark", partitions=2, settings=settings)
    started = time.time()
    producer = WordProducer(topic=topic, rate=300, jitter=3.0, settings=settings).start()
    counter = SparkWordCounter(topic=topic, settings=settings).start()
    seen = []
    try:

        def advanced() -> bool:  # two watermarks seen: it moves with the data
            snap = counter.snapshot()
            if snap.watermark is not None and snap.watermark not in [s.watermark for s in seen]:
                seen.append(snap)
            return len(seen) >= 2

        wait_until(advanced, 90, "Spark's watermark to move twice", every=0.5)
    finally:
        producer.stop()
        counter.stop()
        topics.delete_topic(topic, settings)
    for snap in seen:
        assert started - 3.5 < snap.newest_event <= time.time(), snap.newest_event - started
        assert 10.0 <= snap.newest_event - snap.watermark < 30.0, (
            snap
        )  # the 10 s it waits, and a batch
    assert seen[1].watermark > seen[0].watermark
    assert "watermark" in _event_time(seen[-1]) and "s behind" in _event_time(seen[-1])
    shown = seen[-1].as_json()["event_time"]  # the CLI's --json says it too
    assert shown["watermark"] < shown["newest"] and shown["newest"].endswith("+00:00")
