import asyncio
import time

from helpers.charts import LEDGER, LiveChart, Timeline, word_order
from helpers.consumers.base import Snapshot
from helpers.consumers.kafka import KafkaWordCounter
from helpers.live import RATE_STEPS, LiveView
from helpers.producer import WordProducer
from helpers.reconcile import reconcile


def test_chart_keeps_time_and_a_fixed_word_order_with_flat_memory():
    chart = LiveChart([LEDGER, "kafka"], span=30)
    png = chart.update({LEDGER: {"two": 2, "one": 1}, "kafka": {"two": 1}}, {"kafka": 2})
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert word_order({"two": 2, "one": 1}) == ["one", "two"]  # the course's order, not by count
    assert word_order({"b": 5, "a": 1, "c": 9}, limit=2) == ["b", "c"]  # top words, alphabetical
    time.sleep(0.3)
    later = chart.update(
        {LEDGER: {"two": 3, "one": 1}, "kafka": {"two": 3, "one": 1}}, {"kafka": 0}
    )
    assert later != png and chart.draws == 2
    assert chart.timeline.series("kafka")[1] == [1, 4]
    assert chart.timeline.series("kafka", "lag")[1] == [2, 0]
    timeline = Timeline(span=0.5)
    for _ in range(8):  # older than the span: dropped, so a long run holds only its last span
        time.sleep(0.15)
        timeline.add({LEDGER: 1}, {})
    assert 1 < len(timeline.samples) <= 5
    assert timeline.samples[-1].at - timeline.samples[0].at <= 0.5


def test_slider_drives_the_producers_rate(topic):
    producer = WordProducer(rate=10, topic=topic)
    view = LiveView(producer)
    assert view.slider.value == 10
    view.start()
    try:
        time.sleep(2.5)
        slow = producer.stats().achieved_rate
        view.slider.value = 1000  # what dragging the slider does
        assert producer.rate == 1000
        time.sleep(2.5)
        fast = producer.stats().achieved_rate
        view.slider.value = 0
        time.sleep(0.5)
        paused = producer.stats().sent
        time.sleep(1.0)
        assert producer.stats().sent == paused
    finally:
        view.stop()
    assert 5 < slow < 15 and fast > 600
    assert RATE_STEPS[-1] == float("inf")


def test_live_view_charts_follow_producer_and_counter_then_stop_updating(topic):
    producer = WordProducer(rate=200, topic=topic)
    counter = KafkaWordCounter(topic=topic)
    view = LiveView(producer, [counter], refresh=0.2)
    view.start()
    deadline = time.monotonic() + 30
    while view.chart.points("kafka") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert view.updating and view.chart.points("kafka") >= 2, counter.snapshot()
    assert "producer" in view.stats.value and "kafka" in view.stats.value
    shown = bytes(view.image.value)
    deadline = time.monotonic() + 10  # a frame takes a fraction of a second; more on a busy machine
    while bytes(view.image.value) == shown and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bytes(view.image.value) != shown  # time moves on the chart while things run
    asyncio.run(view.run_for(1.0))  # a notebook awaits it
    assert not view.updating and not producer.running and not counter.running
    assert view.chart.words[LEDGER] == producer.ledger == view.chart.words["kafka"]
    total = sum(producer.ledger.values())
    assert total > 200 and view.chart.timeline.series("kafka")[1][-1] == total
    assert view.chart.timeline.series("kafka", "lag")[1][-1] == 0
    assert "latency p50" in view.stats.value and view.latency_ms["kafka"]["p50"] > 0
    final = bytes(view.image.value)
    time.sleep(1.0)
    assert bytes(view.image.value) == final  # stopped: the chart stays still


def test_stop_button_stops_everything(topic):
    producer = WordProducer(rate=100, topic=topic)
    counter = KafkaWordCounter(topic=topic)
    view = LiveView(producer, [counter], refresh=0.2)
    view.start_button.click()
    time.sleep(1.0)
    assert producer.running and counter.running
    view.stop_button.click()
    assert not producer.running  # at once; the counter catches up first, then stops
    deadline = time.monotonic() + 30
    while (counter.running or view.updating) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not counter.running and not view.updating
    assert counter.snapshot().counts == producer.ledger  # it caught up before it stopped


def test_reconcile_verdicts():
    ok = reconcile({"a": 2, "b": 1}, {"kafka": {"a": 2, "b": 1}})
    assert ok.match and "MATCH" in ok.verdict() and ok.as_json()["engines"]["kafka"]["match"]
    bad = reconcile({"a": 2, "b": 1}, {"kafka": {"a": 2, "b": 1}, "spark": {"a": 2}})
    assert not bad.match and bad.engine_match == {"kafka": True, "spark": False}
    assert "MISMATCH" in str(bad) and "✗" in str(bad) and "#fdd" in bad._repr_html_()
    assert "spark ✗ (-1 words in all, 1 words' counts differ)" in bad.verdict()
    behind = reconcile(
        {"a": 2, "b": 1},
        {"spark": Snapshot("spark", {"a": 2}, records=2, lag=1, lost=1, error="gone")},
    )
    assert behind.verdict().endswith(
        "(-1 words in all, 1 words' counts differ, lag 1, 1 records lost unread, error: gone)"
    )
    assert bad.rows() == [
        {"word": "a", "ledger": 2, "kafka": 2, "spark": 2},
        {"word": "b", "ledger": 1, "kafka": 1, "spark": 0},
    ]
