import time

from helpers.consumers.kafka import KafkaWordCounter
from helpers.live import RATE_STEPS, CountsChart, LiveView
from helpers.producer import WordProducer
from helpers.reconcile import reconcile


def test_chart_redraws_only_when_counts_change():
    chart = CountsChart("test")
    assert chart.update({"one": 1}) is True
    png = bytes(chart.image.value)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert chart.update({"one": 1}) is False
    assert chart.update({"one": 2, "two": 1}) is True
    assert chart.draws == 2 and bytes(chart.image.value) != png


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
    sent_chart, counted_chart = view.charts
    deadline = time.monotonic() + 30
    while min(sent_chart.draws, counted_chart.draws) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert view.updating and sent_chart.draws >= 2 and counted_chart.draws >= 2, counter.snapshot()
    assert "producer" in view.stats.value and "kafka" in view.stats.value
    view.run_for(1.0)
    assert not view.updating and not producer.running and not counter.running
    assert sent_chart.counts == producer.ledger == counted_chart.counts
    assert sum(producer.ledger.values()) > 200


def test_stop_button_stops_everything(topic):
    producer = WordProducer(rate=100, topic=topic)
    counter = KafkaWordCounter(topic=topic)
    view = LiveView(producer, [counter], refresh=0.2)
    view.start_button.click()
    time.sleep(1.0)
    assert producer.running and counter.running
    view.stop_button.click()
    assert not producer.running and not counter.running and not view.updating


def test_reconcile_verdicts():
    ok = reconcile({"a": 2, "b": 1}, {"kafka": {"a": 2, "b": 1}})
    assert ok.match and "MATCH" in ok.verdict() and ok.as_json()["engines"]["kafka"]["match"]
    bad = reconcile({"a": 2, "b": 1}, {"kafka": {"a": 2, "b": 1}, "spark": {"a": 2}})
    assert not bad.match and bad.engine_match == {"kafka": True, "spark": False}
    assert "MISMATCH" in str(bad) and "✗" in str(bad) and "#fdd" in bad._repr_html_()
    assert bad.rows() == [
        {"word": "a", "ledger": 2, "kafka": 2, "spark": 2},
        {"word": "b", "ledger": 1, "kafka": 1, "spark": 0},
    ]
