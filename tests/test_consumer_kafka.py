import math
import time
import uuid
from collections import Counter

import pytest
from support import counts_when_settled

from helpers import topics
from helpers.consumers import Bound
from helpers.consumers.kafka import DurableKafkaWordCounter, KafkaWordCounter
from helpers.errors import CourseError
from helpers.producer import WordProducer, send_raw
from helpers.wait import wait_until


def produce(topic, **options):
    producer = WordProducer(topic=topic, **options).start()
    producer.wait(60)
    return producer.stop()


def test_bad_records_are_skipped_and_reported(settings, topic):
    assert send_raw([b"alpha beta", b"", None, b"\xff\xfe\xfd", b"Beta"], topic, settings) == 5
    snapshot = KafkaWordCounter(topic=topic).run(Bound(until_idle=1.0), timeout=60)
    assert snapshot.skipped == {"empty": 1, "null": 1, "not-utf8": 1}
    assert snapshot.skipped_total == 3
    assert snapshot.records == 5
    assert snapshot.counts == {"alpha": 1, "beta": 2}


def test_mixed_text_counts_equal_the_ledger(topic, mixed_file):
    stats = produce(topic, rate=float("inf"), lines=mixed_file)
    snapshot = KafkaWordCounter(topic=topic).run(Bound(until_idle=1.0), timeout=60)
    assert snapshot.counts == stats.ledger
    assert snapshot.counts["café"] == 3 and snapshot.counts["東京タワー"] == 1


def test_count_bound_stops_after_n_records(topic):
    produce(topic, rate=float("inf"), count=500)
    snapshot = KafkaWordCounter(topic=topic).run(Bound(count=120), timeout=60)
    assert snapshot.records == 120
    assert sum(snapshot.counts.values()) == 120


def test_duration_bound_stops_on_time(topic):
    started = time.monotonic()
    snapshot = KafkaWordCounter(topic=topic).run(Bound(duration=1.5), timeout=60)
    assert 1.4 <= time.monotonic() - started < 10
    assert not snapshot.running


def test_counts_while_running_and_reports_lag_and_partitions(topic):
    counter = KafkaWordCounter(topic=topic).start()
    producer = WordProducer(rate=300, topic=topic).start()
    try:
        time.sleep(2.0)
        live = counter.snapshot()
        assert live.running and live.records > 100 and live.partitions == [0]
        assert live.lag is not None
    finally:
        stats = producer.stop()
    counts_when_settled([counter], stats.ledger, 20)
    final = counter.stop()
    assert final.counts == stats.ledger and not final.running


def test_a_group_resumes_from_its_committed_offsets(topic):
    group = f"resume-{uuid.uuid4().hex[:6]}"
    first = produce(topic, rate=float("inf"), count=300, seed=1)
    part1 = KafkaWordCounter(topic=topic, group=group).run(Bound(until_idle=0.5), timeout=60)
    second = produce(topic, rate=float("inf"), count=200, seed=2)
    part2 = KafkaWordCounter(topic=topic, group=group, from_beginning=False).run(
        Bound(until_idle=0.5), timeout=60
    )
    assert part1.counts == first.ledger
    assert part2.records == 200 and part2.counts == second.ledger


def test_separate_groups_each_get_every_message(topic):
    stats = produce(topic, rate=float("inf"), count=400)
    a = KafkaWordCounter(topic=topic, group="g-a-" + topic).run(Bound(until_idle=0.5), timeout=60)
    b = KafkaWordCounter(topic=topic, group="g-b-" + topic).run(Bound(until_idle=0.5), timeout=60)
    assert a.counts == b.counts == stats.ledger


def test_a_rebalance_in_from_beginning_mode_recounts_instead_of_doubling(settings):
    from helpers import topics

    topic = topics.fresh_topic("test-rewind", partitions=2, settings=settings)
    try:
        stats = produce(topic, rate=float("inf"), count=600)
        group = "rewind-" + topic
        first = KafkaWordCounter(topic=topic, group=group).start()
        first.wait_for(records=600, timeout=60)
        second = KafkaWordCounter(topic=topic, group=group).start()  # forces a rebalance
        wait_until(lambda: len(first.snapshot().partitions) == 1, 30, "", on_timeout="return")
        time.sleep(2.0)
        a, b = first.stop(), second.stop()
        total = {w: a.counts.get(w, 0) + b.counts.get(w, 0) for w in stats.ledger}
        assert total == stats.ledger  # each partition counted once, by its current owner
    finally:
        topics.delete_topic(topic, settings)


@pytest.mark.parametrize("member", [None, "stuck-1"])
def test_a_member_that_stops_fetching_is_found_stuck_and_rejoins(topic, member):
    """kafka-python can leave a fresh member assigned but never fetching; the watchdog rejoins.

    Words keep coming all along: the group's lag grows, but its commits stand still. A static member
    (``member``) is taken out of its group first, or it would be handed back the same assignment.
    """
    group = f"stuck-{uuid.uuid4().hex[:6]}"
    counter = KafkaWordCounter(topic=topic, group=group, member=member).start()
    producer = WordProducer(rate=200, topic=topic).start()
    try:
        assert counter.wait_for(records=50, timeout=60).records >= 50
        consumer = counter._consumer
        consumer.pause(*consumer.assignment())  # stuck, as that member was: assigned, not fetching
        time.sleep(1.0)
        stuck_at = counter.snapshot().records
        time.sleep(1.0)
        assert counter.snapshot().records == stuck_at  # really stuck
        wait_until(lambda: counter.reconnects > 0, 60, "", every=0.5, on_timeout="return")
        assert counter.reconnects >= 1  # found stuck while the producer still sends
    finally:
        stats = producer.stop()
    counts_when_settled([counter], stats.ledger, 60)
    snapshot = counter.stop()
    assert (snapshot.error, snapshot.counts) == (None, stats.ledger)


def test_the_durable_counter_resumes_with_its_counts_and_reads_each_record_once(topic):
    group = f"durable-{uuid.uuid4().hex[:6]}"
    first = WordProducer(rate=math.inf, topic=topic, count=500, seed=1).start()
    first.wait(60)
    ledger = Counter(first.stop().ledger)
    counted = DurableKafkaWordCounter(topic=topic, group=group).run(
        Bound(until_idle=1.0), timeout=60
    )
    assert (counted.error, counted.counts) == (None, dict(ledger))
    second = WordProducer(rate=math.inf, topic=topic, count=300, seed=2).start()
    second.wait(60)
    ledger.update(second.stop().ledger)
    resumed = DurableKafkaWordCounter(topic=topic, group=group).run(
        Bound(until_idle=1.0), timeout=60
    )
    assert (resumed.error, resumed.counts, resumed.records) == (None, dict(ledger), 800)
    naive = KafkaWordCounter(topic=topic, group=group, from_beginning=False)
    assert naive.run(Bound(until_idle=1.0), timeout=60).counts == {}  # resumes offsets, not counts


def test_two_durable_members_share_partitions_and_their_totals_add_up(settings):
    topic = topics.fresh_topic("test-durable-group", partitions=2, settings=settings)
    group = f"durable-{uuid.uuid4().hex[:6]}"
    try:
        producer = WordProducer(rate=300, topic=topic, settings=settings).start()
        one = DurableKafkaWordCounter(topic=topic, group=group).start()
        assert one.wait_for(records=100, timeout=60).records >= 100
        two = DurableKafkaWordCounter(topic=topic, group=group).start()  # a rebalance mid-stream
        time.sleep(4)
        ledger = producer.stop().ledger
        wait_until(
            lambda: Counter(one.snapshot().counts) + Counter(two.snapshot().counts) == Counter(ledger),
            60, "", every=0.5, on_timeout="return",
        )  # fmt: skip
        assert sorted(one.snapshot().partitions + two.snapshot().partitions) == [0, 1]
        one.stop(), two.stop()
        assert Counter(one.snapshot().counts) + Counter(two.snapshot().counts) == Counter(ledger)
    finally:
        topics.delete_topic(topic, settings=settings)


def test_a_static_member_joins_under_its_name_and_needs_a_group(topic):
    """--member: the consumer carries group.instance.id, which lets a restart take its place at once."""
    counter = KafkaWordCounter(topic=topic, group=f"static-{topic}", member="counter-1")
    consumer = counter._connect()  # noqa: SLF001 - the consumer the poll loop would own
    try:
        assert consumer.config["group_instance_id"] == "counter-1"
    finally:
        consumer.close()
    with pytest.raises(CourseError, match="--group G"):
        KafkaWordCounter(topic=topic, member="counter-1")
