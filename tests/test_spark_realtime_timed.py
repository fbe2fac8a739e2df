"""Latency of words read back from a topic, steady state only: no broker, no JVM."""

import pytest

from helpers.spark_realtime import Timed, compare, refusal

pytestmark = pytest.mark.unit


def test_start_up_is_left_out_of_the_steady_percentiles():
    fast = Timed(sent_ms=[0, 1000, 2000, 3000], latencies_ms=[900, 5, 5, 5])
    slow = Timed(sent_ms=[0, 1000, 2000, 3000], latencies_ms=[1500, 400, 300, 500])
    fast.counts.update(a=4)
    slow.counts.update(a=4)
    assert slow.first_written_ms == 1400 and fast.first_written_ms == 900
    rows = {row["trigger"]: row for row in compare({"fast": fast, "slow": slow})}
    assert rows["fast"]["p50"] == 5 and rows["fast"]["words"] == 4  # sent after 1400 ms: steady
    assert rows["slow"]["p99"] < 1500


def test_a_refusal_is_one_line_naming_the_operators():
    spark_says = (
        "[STREAM_FAILED] Query [id = 1] terminated with exception: [STREAMING_REAL_TIME_MODE."
        "OPERATOR_OR_SINK_NOT_IN_ALLOWLIST] Streaming real-time mode has the following limitation: "
        "The operator(s): org.apache.spark.sql.execution.aggregate.HashAggregateExec, "
        "org.apache.spark.sql.execution.exchange.ShuffleExchangeExec are not in the operator "
        "allowlist for Real-Time Mode. To bypass ...\n=== Streaming Query ===\n..."
    )
    said = refusal(RuntimeError(spark_says))
    assert said == (
        "real-time mode cannot run HashAggregateExec, ShuffleExchangeExec (not in its allowlist yet)"
    )
