import dataclasses

import pytest
from support import merged, produce

from helpers.consumers import Bound
from helpers.consumers.spark import SparkWordCounter
from helpers.errors import CourseError
from helpers.producer import send_raw

pytestmark = pytest.mark.slow


def test_spark_totals_and_windows_equal_the_ledger(settings, topic, mixed_file):
    words = produce(topic, count=3000, seed=3)
    text = produce(topic, lines=mixed_file)
    send_raw([b"", None, b"\xff\xfe"], topic, settings)
    counter = SparkWordCounter(topic=topic)
    snapshot = counter.run(Bound(until_idle=2.0), timeout=240)
    assert snapshot.error is None
    assert snapshot.counts == merged(words.ledger, text.ledger)
    assert snapshot.records == 3000 + 5 + 3
    assert snapshot.skipped == {"empty": 1, "null": 1, "not-utf8": 1}
    by_word = {}
    for row in snapshot.windows:
        by_word[row["word"]] = by_word.get(row["word"], 0) + row["count"]
    assert by_word == snapshot.counts  # the 5-second windows add up to the running totals
    assert all(row["end"] > row["start"] for row in snapshot.windows)
    assert counter.seconds_to_first_count is not None


def test_restart_from_the_checkpoint_neither_loses_nor_double_counts(settings, topic, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    first = produce(topic, count=1000, seed=1)
    part1 = SparkWordCounter(topic=topic, checkpoint=checkpoint).run(Bound(until_idle=1.0), 240)
    assert part1.counts == first.ledger
    second = produce(topic, count=700, seed=2)  # written while no Spark query runs
    part2 = SparkWordCounter(topic=topic, checkpoint=checkpoint).run(Bound(until_idle=1.0), 240)
    assert part2.counts == merged(first.ledger, second.ledger)
    assert part2.records == 1700


def test_missing_connector_is_one_line(settings, topic, tmp_path):
    empty = dataclasses.replace(settings, jars_dir=tmp_path / "none")
    with pytest.raises(CourseError, match="jars fetch"):
        SparkWordCounter(topic=topic, settings=empty).start()


def test_missing_topic_is_one_line(settings):
    with pytest.raises(CourseError, match="does not exist"):
        SparkWordCounter(topic="no-such-topic-here").start()
