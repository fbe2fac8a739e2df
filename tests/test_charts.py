"""The live chart's colours and its mark of lost words: no broker, no JVM."""

import pytest

from helpers.charts import COLORS, LEDGER, LiveChart, palette

pytestmark = pytest.mark.unit


def test_every_source_has_its_own_colour_and_engines_keep_theirs():
    colors = palette([LEDGER, "in memory", "durable", "flink (resumed)", "kafka"])
    assert colors["flink (resumed)"] == COLORS["flink"] and colors["kafka"] == COLORS["kafka"]
    assert len(set(palette([LEDGER, "in memory", "durable"]).values())) == 3
    assert len(set(palette([LEDGER, "kafka", "kafka (resumed)"]).values())) == 3


def test_a_counter_that_read_everything_but_counted_less_is_marked_as_lost():
    chart = LiveChart([LEDGER, "in memory", "durable", "slow"])
    chart.update(
        {LEDGER: {"a": 10}, "in memory": {"a": 4}, "durable": {"a": 10}, "slow": {"a": 6}},
        {"in memory": 0, "durable": 0, "slow": 4},  # slow is only behind: it still has to read 4
    )
    assert chart.lost() == {"in memory": 6}
    assert [t.get_text() for t in chart.over_time.texts] == ["in memory: 6 lost"]
    assert len(chart.over_time.collections) == 1  # the gap, marked from count to ledger
    chart.update({LEDGER: {"a": 10}, "in memory": {"a": 10}}, {"in memory": 0})
    assert (
        chart.lost() == {} and list(chart.over_time.texts) == []
    )  # the mark goes when the gap does


def test_moments_recorded_between_frames_all_show_in_the_next_frame():
    """A busy machine draws seldom; the line still has every half-second moment, not one per frame."""
    chart = LiveChart([LEDGER, "kafka"])
    for records in range(1, 6):
        chart.record({LEDGER: {"a": records}, "kafka": {"a": records}}, {"kafka": 0})
    png = chart.draw()
    assert png.startswith(b"\x89PNG") and chart.draws == 1
    assert chart.points("kafka") == 5
    assert list(chart._over_time_lines["kafka"].get_ydata()) == [1, 2, 3, 4, 5]
