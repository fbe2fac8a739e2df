import math
import random
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer
from kafka.admin import NewTopic

from helpers import topics
from helpers.consumers import Bound
from helpers.consumers.kafka import KafkaWordCounter
from helpers.errors import CourseError
from helpers.producer import DEFAULT_WORDS, WordProducer


def test_ledger_counts_every_acknowledged_word_and_stop_loses_nothing(topic):
    producer = WordProducer(rate=math.inf, topic=topic, count=3000, seed=1).start()
    producer.wait(60)
    stats = producer.stop()
    assert stats.sent == stats.acked == 3000 and stats.failed == 0
    assert sum(stats.ledger.values()) == 3000
    assert set(stats.ledger) <= set(DEFAULT_WORDS)
    snapshot = KafkaWordCounter(topic=topic).run(Bound(until_idle=1.0), timeout=60)
    assert (snapshot.error, snapshot.counts) == (None, stats.ledger)


def test_stop_mid_stream_flushes_what_was_sent(topic):
    producer = WordProducer(rate=2000, topic=topic).start()
    time.sleep(1.0)
    stats = producer.stop()
    assert stats.sent > 100 and stats.acked == stats.sent and stats.in_flight == 0
    snapshot = KafkaWordCounter(topic=topic).run(Bound(until_idle=1.0), timeout=60)
    assert (snapshot.error, snapshot.counts) == (None, stats.ledger)


def test_the_same_seed_sends_the_same_words(topic):
    ledgers = []
    for _ in range(2):
        producer = WordProducer(rate=math.inf, topic=topic, count=200, seed=42).start()
        producer.wait(60)
        ledgers.append(producer.stop().ledger)
    assert ledgers[0] == ledgers[1]


def test_rate_can_change_while_running_and_zero_pauses(topic):
    producer = WordProducer(rate=50, topic=topic).start()
    try:
        time.sleep(2.5)
        slow = producer.stats().achieved_rate
        producer.rate = 1000
        time.sleep(2.5)
        fast = producer.stats().achieved_rate
        producer.rate = 0
        time.sleep(0.5)
        paused_at = producer.stats().sent
        time.sleep(1.0)
        assert producer.stats().sent == paused_at
    finally:
        producer.stop()
    assert 30 < slow < 70
    assert fast > 600


def test_lines_from_a_file_are_sent_once_each(topic, mixed_file):
    producer = WordProducer(rate=math.inf, topic=topic, lines=mixed_file).start()
    assert producer.wait(60)
    stats = producer.stop()
    assert stats.acked == 5
    assert stats.ledger["hello"] == 2 and stats.ledger["café"] == 3 and stats.ledger["東京"] == 1
    assert stats.ledger["москва"] == 2 and stats.ledger["très"] == 2 and stats.ledger["straße"] == 1


def test_duration_bound_ends_the_run(topic):
    producer = WordProducer(rate=100, topic=topic, duration=1.0).start()
    assert producer.wait(10)
    stats = producer.stop()
    assert 60 <= stats.acked <= 140


@pytest.mark.parametrize("rate", [-1, float("nan"), "fast"])
def test_bad_rates_are_refused(rate, topic):
    with pytest.raises(CourseError, match="Rate"):
        WordProducer(rate=rate, topic=topic)
    producer = WordProducer(rate=1, topic=topic)
    with pytest.raises(CourseError):
        producer.rate = rate


def test_a_file_that_is_not_utf8_names_the_line(tmp_path, topic):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine\n\xff\xfe broken\n")
    with pytest.raises(CourseError, match="line 2"):
        WordProducer(topic=topic, lines=path)


def test_keys_spread_over_partitions_and_the_ledger_stays_exact(settings):
    topic = topics.fresh_topic("test-spread", partitions=3, settings=settings)
    try:
        stats = WordProducer(rate=math.inf, topic=topic, count=6000, seed=3).start()
        stats.wait(60)
        stats = stats.stop()
        assert stats.acked == 6000 and stats.failed == 0
        ends = topics.describe_topic(topic, settings=settings)["partitions"]
        assert len([p for p in ends if p["latest"] > 1000]) == 3  # every partition got a share
        snapshot = KafkaWordCounter(topic=topic).run(Bound(until_idle=1.0), timeout=90)
        assert snapshot.error is None and snapshot.counts == stats.ledger
    finally:
        topics.delete_topic(topic, settings=settings)


def test_messages_that_are_never_acknowledged_fail_and_stay_out_of_the_ledger(settings):
    """A topic that refuses every record older than the broker's clock: the broker rejects them all."""
    topic = f"test-unacked-{time.monotonic_ns() % 10**9}"
    with topics.admin(settings) as client:
        client.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"message.timestamp.before.max.ms": "0"})]
        )
    try:
        producer = WordProducer(rate=math.inf, topic=topic, count=500, delivery_timeout=3.0)
        producer.start().wait(60)
        stats = producer.stop()
        assert stats.sent == 500 and stats.acked == 0 and stats.failed == 500
        assert stats.ledger == {} and sum(stats.failures.values()) == 500
    finally:
        topics.delete_topic(topic, settings=settings)


def test_jitter_sends_event_times_out_of_order_and_the_windows_truth_matches_the_topic(
    topic, settings
):
    producer = WordProducer(rate=math.inf, topic=topic, count=2000, seed=3, jitter=4.0).start()
    producer.wait(60)
    producer.stop()
    consumer = KafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )  # fmt: skip
    records = [(record.timestamp, record.value.decode()) for record in consumer]
    consumer.close()
    stamps = [stamp for stamp, _ in records]
    assert len(records) == 2000
    assert any(later < earlier for earlier, later in zip(stamps, stamps[1:], strict=False))
    assert max(stamps) - min(stamps) > 2000  # spread over seconds, sent in well under one
    on_topic = Counter()
    for stamp, word in records:
        start = datetime.fromtimestamp(stamp // 1000 - (stamp // 1000) % 5, tz=UTC)
        on_topic[(start.strftime("%Y-%m-%dT%H:%M:%S"), word)] += 1
    assert producer.event_windows(5) == dict(on_topic)
    # jitter draws from its own generator: the seed still picks the words it picks without jitter
    assert producer.ledger == dict(Counter(random.Random(3).choices(DEFAULT_WORDS, k=2000)))


def test_late_records_on_demand_go_to_their_partition_stamped_late_and_in_the_ledger_only(settings):
    topic = topics.fresh_topic("late", partitions=3, settings=settings)
    try:
        producer = WordProducer(rate=math.inf, topic=topic, count=300, seed=4, jitter=1.0).start()
        producer.wait(60)
        sent_at = time.time()
        assert producer.send_late(40, seconds=30.0, partition=2) == 40
        producer.stop()
        consumer = KafkaConsumer(
            topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest",
            consumer_timeout_ms=3000,
        )  # fmt: skip
        records = [(r.partition, r.timestamp, r.value.decode()) for r in consumer]
        consumer.close()
        late = [(p, stamp, word) for p, stamp, word in records if stamp < (sent_at - 25) * 1000]
        assert len(records) == 340 and len(late) == 40 and {p for p, _, _ in late} == {2}
        assert all(abs(stamp / 1000 - (sent_at - 30)) < 5 for _, stamp, _ in late)
        assert producer.late == dict(Counter(word for _, _, word in late))
        assert sum(producer.ledger.values()) == 340 == producer.stats().acked  # totals count them
        on_time, with_late = producer.event_windows(5), producer.event_windows(5, late=True)
        assert sum(on_time.values()) == 300 and sum(with_late.values()) == 340
        with pytest.raises(CourseError, match="seconds <= 86400"):
            producer.send_late(1, seconds=0)
    finally:
        topics.delete_topic(topic, settings)


def test_an_in_order_producer_keeps_no_event_times_unless_asked(topic):
    producer = WordProducer(rate=math.inf, topic=topic, count=100, seed=3).start()
    producer.wait(60)
    producer.stop()
    with pytest.raises(CourseError, match="keep_event_times"):
        producer.event_windows(5)


@pytest.mark.parametrize("jitter", [-1.0, 61.0])
def test_a_jitter_out_of_range_is_refused(jitter, topic):
    with pytest.raises(CourseError, match="jitter"):
        WordProducer(topic=topic, jitter=jitter)
