"""One start-up measurement in a fresh process; prints a JSON line. Run by tools/bench.py.

bare-spark / bare-flink: the engine as it comes (UI off), doing nothing: a SparkSession counting one
row, a TableEnvironment collecting SELECT 1. counter-spark / counter-flink TOPIC: the course's counter,
a bounded run on an (empty) topic, twice in one process: the first start and a warm one.
primed-spark / primed-flink TOPIC: the first counter's run alone, after a background start (chapters
04-06 start their engines from the setup cell while the learner reads).
"""

import json
import sys
import time

started = time.monotonic()


def bare_spark() -> dict:
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    )
    assert session.range(1).count() == 1
    return {"first": time.monotonic() - started}


def bare_flink() -> dict:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    with t_env.execute_sql("SELECT 1").collect() as rows:
        assert [row[0] for row in rows] == [1]
    return {"first": time.monotonic() - started}


def counter(engine: str, topic: str) -> dict:
    from helpers.consumers.base import Bound
    from helpers.consumers.registry import make_counter

    times = []
    for _ in range(2):
        begin = time.monotonic()
        result = make_counter(engine, topic=topic).run(Bound(until_idle=1), timeout=300)
        assert result.error is None, result.error
        times.append(time.monotonic() - begin)
    return {"first": time.monotonic() - started - times[1], "warm": times[1]}


def primed(engine: str, topic: str) -> dict:
    """The first counter after the chapter's setup cell started the engine in the background."""
    from helpers.consumers.base import Bound
    from helpers.consumers.registry import make_counter
    from helpers.warmup import start_in_background, wait_started

    start_in_background(engine)
    assert wait_started(engine, timeout=300)  # the learner reads meanwhile
    begin = time.monotonic()
    result = make_counter(engine, topic=topic).run(Bound(until_idle=1), timeout=300)
    assert result.error is None, result.error
    return {"primed": time.monotonic() - begin}


if __name__ == "__main__":
    kind, _, engine = sys.argv[1].partition("-")
    if kind == "bare":
        figures = bare_spark() if engine == "spark" else bare_flink()
    elif kind == "primed":
        figures = primed(engine, sys.argv[2])
    else:
        figures = counter(engine, sys.argv[2])
    print(json.dumps({name: round(value, 2) for name, value in figures.items()}))
