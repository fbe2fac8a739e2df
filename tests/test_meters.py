"""Rate, latency, the plain counter's tally and store, the Flink job's SQL: no broker, no JVM."""

import time
from collections import Counter

import pytest

from helpers.consumers.base import RateMeter
from helpers.consumers.flink import job_sql, readback_topic_for
from helpers.consumers.kafka import Tally
from helpers.consumers.store import CountStore, Fenced
from helpers.latency import LatencyMeter

pytestmark = pytest.mark.unit


def test_rate_meter_reads_records_per_second_over_its_window():
    meter = RateMeter(window=5.0)
    assert meter.rate == 0.0
    meter.add(0)
    time.sleep(0.2)
    meter.add(100)
    assert 250 < meter.rate < 600


class SentLog:
    """A producer's send times: record i was sent at ``start + i / rate``."""

    def __init__(self, start: float, rate: float, acked: int = 0):
        self.start, self.rate, self.acked = start, rate, acked

    def sent_at(self, index):
        return self.start + index / self.rate

    def stats(self):
        return type("Stats", (), {"acked": self.acked})()


class Named:
    def __init__(self, label):
        self.label = label


def test_latency_is_the_time_from_send_to_count_shown():
    producer = SentLog(start=100.0, rate=100.0)
    meter = LatencyMeter(producer, [Named("kafka")])
    meter.observe("kafka", 100, now=101.05)  # records 0..99, sent from 100.00 to 100.99
    p = meter.percentiles()["kafka"]
    # every fifth record sampled (20 a jump): sent 0.00, 0.05, ... 0.95 s after the start
    assert p["p50"] == pytest.approx(575, abs=1) and p["p99"] == pytest.approx(1040, abs=5)


def test_start_up_is_left_out_once_every_engine_caught_up():
    producer = SentLog(start=0.0, rate=100.0)
    meter = LatencyMeter(producer, [Named("fast"), Named("slow")])
    meter.observe("fast", 100, now=1.0)
    meter.note_progress(sent=100, now=1.0)  # the slow engine has shown nothing yet
    assert meter.steady_since is None
    meter.observe("slow", 50, now=9.0)  # its first count, after a long start: 8+ s late
    meter.note_progress(sent=800, now=9.0)  # backlog: what was sent by then
    meter.observe("fast", 800, now=9.0)
    meter.observe("slow", 800, now=10.0)  # caught up with that backlog
    meter.note_progress(sent=900, now=10.0)
    assert meter.steady_since == 10.0
    for now in (10.5, 11.0, 11.5, 12.0):  # steady: 20 ms behind
        sent = int((now - 0.02) * 100)
        meter.observe("fast", sent, now=now)
        meter.observe("slow", sent, now=now)
    slow = meter.percentiles()["slow"]
    assert slow["p99"] < 600  # the 8-second start-up is not in it


def test_a_tally_counts_words_records_and_skips_as_one_by_one():
    values = [b"Hello hello", None, b"", b"\xff\xfe", b"world"]
    together, alone = Tally(), Tally()
    together.add_all(values)
    for value in values:
        alone.add(value)
    assert together.counts == alone.counts == Counter({"hello": 2, "world": 1})
    assert together.records == alone.records == 5
    assert together.skipped == alone.skipped == Counter({"null": 1, "empty": 1, "not-utf8": 1})


def test_the_store_saves_counts_with_offsets_and_fences_a_stale_member(tmp_path):
    store = CountStore(tmp_path / "counts.db", "g", "t")
    assert store.load(0) == (None, 0, Counter(), Counter())
    store.save({0: (None, 10, 10, Counter({"a": 7}), Counter({"empty": 1}))})
    assert store.load(0) == (10, 10, Counter({"a": 7}), Counter({"empty": 1}))
    store.save({0: (10, 15, 5, Counter({"a": 1, "b": 4}), Counter())})
    with pytest.raises(Fenced):  # a member that loaded at 10 is behind the times now
        store.save({0: (10, 20, 5, Counter({"a": 5}), Counter())})
    assert store.load(0) == (15, 15, Counter({"a": 8, "b": 4}), Counter({"empty": 1}))
    store.close()


def test_the_flink_job_sql_names_its_topics_and_takes_the_learners_query():
    mine = "SELECT word, COUNT(*) AS n FROM words GROUP BY word;"
    bounded = job_sql("words-in", "g1", "localhost:1", bounded=True, running_count=mine)
    text = "\n".join(bounded)
    assert "'topic' = 'words-in'" in text and f"'topic' = '{readback_topic_for('g1')}'" in text
    assert "'scan.bounded.mode' = 'latest-offset'" in text and "discovery" not in text
    assert "FROM (SELECT word, COUNT(*) AS n FROM words GROUP BY word) AS q(w, c)" in text
    unbounded = "\n".join(job_sql("words-in", "g1", "localhost:1"))
    assert "scan.topic-partition-discovery.interval" in unbounded and "bounded" not in unbounded


def test_a_fleet_tells_when_its_records_were_sent_all_members_together():
    from helpers.producer import ProducerFleet

    fleet = ProducerFleet(2, rate=10, topic="not-started")
    one, two = fleet.members
    one._burst_first, one._burst_time, one._sent = [0, 3], [1.0, 3.0], 5  # 3 at 1.0 s, 2 at 3.0 s
    two._burst_first, two._burst_time, two._sent = [0], [2.0], 4  # 4 at 2.0 s
    sent = [fleet.sent_at(index) for index in range(10)]
    assert sent == [1.0] * 3 + [2.0] * 4 + [3.0] * 2 + [None]
