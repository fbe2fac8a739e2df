"""The live view's timed run, settle and Stop, on fake counters and a fake producer: no broker, no JVM."""

import asyncio
import threading
import time

import pytest

from helpers.config import load
from helpers.consumers.base import Progress, WordCounter
from helpers.live import LiveView
from helpers.producer import ProducerStats

pytestmark = pytest.mark.unit
LEDGER = {"one": 3, "two": 2}


class FakeProducer:
    """Sends nothing; says what a stopped producer's ledger holds."""

    def __init__(self) -> None:
        self.rate, self.running, self.ledger, self.stops = 10.0, True, dict(LEDGER), 0

    def stop(self) -> None:
        self.running, self.stops = False, self.stops + 1

    def start(self) -> None:
        self.running = True

    def stats(self) -> ProducerStats:
        return ProducerStats(5, 5, 0, self.rate, 0.0, self.running, dict(self.ledger))


class FakeCounter(WordCounter):
    """Shows ``counts`` and ``lag`` as set; ``records`` grows only when told."""

    engine = "fake"

    def __init__(self, counts: dict, lag: int | None) -> None:
        super().__init__(topic="t", settings=load())
        self.counts, self.lag, self.records = counts, lag, sum(counts.values())

    def _open(self) -> None:
        pass

    def _progress(self) -> Progress:
        return Progress(self.records)

    def _close(self, stopped: bool, **options) -> None:
        pass

    def snapshot(self):
        return self._snapshot(counts=dict(self.counts), records=self.records, lag=self.lag)


_views: list[LiveView] = []


@pytest.fixture(autouse=True)
def stop_views():
    """Every view made by a test is stopped after it: no thread outlives the test."""
    yield
    while _views:
        _views.pop().stop()


def view_of(*counters: FakeCounter) -> LiveView:
    for counter in counters:
        counter.start()
    _views.append(LiveView(FakeProducer(), counters))
    return _views[-1]


def settle_time(view: LiveView, timeout: float) -> float:
    started = time.monotonic()
    asyncio.run(view.settle(timeout))
    return time.monotonic() - started


def test_settle_ends_when_counts_equal_the_ledger():
    view = view_of(FakeCounter(LEDGER, lag=None))
    assert settle_time(view, timeout=10) < 1.0


def test_settle_ends_when_a_counter_that_lost_words_has_read_everything():
    """lag 0 for a second with no new record: caught up, although its counts are short."""
    view = view_of(FakeCounter({"one": 1}, lag=0))
    assert 0.9 < settle_time(view, timeout=10) < 3.0


def test_settle_waits_for_a_counter_that_still_lags_until_its_timeout():
    view = view_of(FakeCounter({"one": 1}, lag=4), FakeCounter(LEDGER, lag=0))
    assert settle_time(view, timeout=1.0) >= 1.0


def test_stop_pressed_during_a_run_ends_it_at_once_and_stops_everything():
    counters = [FakeCounter(LEDGER, lag=0), FakeCounter({"one": 1}, lag=0)]
    view = view_of(*counters)
    threading.Timer(0.5, view._stop_pressed).start()  # as the button's click does
    started = time.monotonic()
    asyncio.run(view.run_for(30, settle=10))
    assert time.monotonic() - started < 6  # not the 30 s asked for
    assert not view.producer.running and not any(c.running for c in counters)


def test_a_failing_chart_is_one_line_in_the_view_and_printed(capsys):
    """A frame that fails (here: the chart) is said once, in the view and on stderr, never a trace."""
    view = view_of(FakeCounter(LEDGER, lag=0))

    def broken(*_):
        raise ValueError("no frame")

    view.chart.draw = broken
    view.start_updates()
    deadline = time.monotonic() + 5
    while not view.errors and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view.errors == ["ValueError: no frame"]
    assert "no frame" in view.stats.value
    view.producer.stop()
    view.counters[0].stop()
    view._thread.join(10)
    assert "live view error: ValueError: no frame" in capsys.readouterr().err
