"""The counter lifecycle of consumers/base.py, driven by a fake engine: no broker, no JVM."""

import threading
import time
from collections import Counter

import pytest
from kafka.errors import KafkaConnectionError

from helpers.config import load
from helpers.consumers import base
from helpers.consumers.base import Bound, Progress, Snapshot, WordCounter
from helpers.errors import CourseError

pytestmark = pytest.mark.unit


class FakeEngine(WordCounter):
    """An engine in memory: counts ``per_tick`` records at each look, or fails as told."""

    engine = "fake"
    tick = 0.02

    def __init__(self, per_tick=1, total=None, fail_open=None, away=0, **options):
        super().__init__(topic="t", settings=load(), **options)
        self.per_tick, self.total, self.fail_open, self.away = per_tick, total, fail_open, away
        self.records = 0
        self.closes = Counter()
        self.opened = False

    def _open(self):
        self.opened = True
        if self.fail_open:
            raise self.fail_open

    def _progress(self):
        if self.away:
            self.away -= 1
            raise KafkaConnectionError("broker away")
        if self.total is None or self.records < self.total:
            self.records += self.per_tick
        return Progress(
            self.records, caught_up=self.total is not None and self.records >= self.total
        )

    def _close(self, stopped, **options):
        time.sleep(0.01)  # a close takes a while: a second caller must not slip in meanwhile
        self.closes[stopped] += 1

    def snapshot(self):
        return self._snapshot(counts={}, records=self.records)


def test_a_count_bound_ends_the_run_and_closes_once():
    counter = FakeEngine(per_tick=5)
    result = counter.run(Bound(count=20), timeout=10)
    assert result.records >= 20 and not result.running and result.error is None
    assert sum(counter.closes.values()) == 1


def test_a_duration_bound_ends_the_run_near_its_length():
    started = time.monotonic()
    FakeEngine().run(Bound(duration=0.3), timeout=10)
    assert 0.3 <= time.monotonic() - started < 5


def test_until_idle_waits_for_caught_up_and_quiet():
    counter = FakeEngine(per_tick=10, total=50)
    result = counter.run(Bound(until_idle=0.2), timeout=10)
    assert result.records == 50


def test_stop_twice_and_from_several_threads_closes_exactly_once():
    counter = FakeEngine().start()
    threads = [threading.Thread(target=counter.stop) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    counter.stop()
    assert counter.closes == Counter({True: 1})


def test_a_bound_reached_then_stop_still_closes_once():
    counter = FakeEngine(per_tick=5).start()
    counter.bound = Bound(count=5)
    assert counter.wait(10)
    counter.stop()
    assert counter.closes == Counter({False: 1})  # closed by the bound, not again by stop()


def test_a_failing_open_raises_and_releases_what_it_started():
    counter = FakeEngine(fail_open=CourseError("no engine here"))
    with pytest.raises(CourseError, match="no engine here"):
        counter.start()
    assert counter.opened and counter.closes == Counter({False: 1}) and not counter.running


def test_a_short_broker_outage_is_waited_out(monkeypatch):
    monkeypatch.setattr(base, "BROKER_AWAY_LIMIT", 5.0)
    result = FakeEngine(per_tick=5, away=5).run(Bound(count=20), timeout=10)
    assert result.error is None and result.records >= 20


def test_a_broker_away_past_the_limit_ends_the_run_with_an_error(monkeypatch):
    monkeypatch.setattr(base, "BROKER_AWAY_LIMIT", 0.2)
    result = FakeEngine(away=10**6).run(Bound(duration=30), timeout=10)
    assert not result.running and "KafkaConnectionError" in result.error


def test_an_unbounded_run_is_refused():
    with pytest.raises(CourseError, match="needs a bound"):
        FakeEngine().run(Bound())


def test_negative_bounds_are_one_line_errors():
    with pytest.raises(CourseError, match="--until-idle must be 0 or more"):
        Bound(until_idle=-1)


def test_snapshot_as_json_shows_windows_for_engines_and_explains_lost_records():
    plain = Snapshot(engine="kafka", counts={"b": 1, "a": 2}, records=2, skipped={"empty": 1})
    data = plain.as_json()
    assert list(data["counts"]) == ["a", "b"] and data["skipped"] == 1 and "windows" not in data
    spark = Snapshot(engine="spark", counts={}, records=5, lost=3)
    data = spark.as_json()
    assert data["windows"] == [] and data["lost"] == 3 and "3 records were deleted" in data["error"]


def test_a_stopped_counter_shows_no_rate():
    counter = FakeEngine(per_tick=50).start()
    time.sleep(0.3)
    assert counter.snapshot().rate > 0
    assert counter.stop().rate == 0.0
