"""Start an engine before it is needed: in the background while a learner reads, or once at setup.

A chapter's first cell calls :func:`start_in_background`; the engine's JVM (a Spark session, or
pyflink's gateway with Flink's planner warmed by planning the course's job once) then starts while
the learner reads the text above the first counter, and that counter reuses it. The same small jobs,
run in a child process at setup, are what :mod:`helpers.class_archive` records into the engines'
class archives: ``python -m helpers.warmup spark`` runs one and exits.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading

from helpers.config import Settings, load
from helpers.errors import CourseError, first_cause

_started: dict[str, threading.Thread] = {}
_failed: dict[str, str] = {}


def start_spark(settings: Settings):
    """The Spark session every Spark counter of this process shares, with the tokenizer loaded."""
    from helpers.consumers.spark import spark_session
    from helpers.jvm_tokens import tokenizer_jar

    tokenizer = tokenizer_jar(settings)
    return spark_session(settings, extra_jars=[tokenizer] if tokenizer else [])


def start_flink(settings: Settings) -> None:
    """Launch pyflink's JVM and plan the course's job once, so Flink's planner is warm."""
    from helpers.consumers.flink import FlinkWordCounter

    FlinkWordCounter(topic="warm-up", settings=settings).explain_only()


def spark_job(settings: Settings) -> None:
    """The course's two Spark queries on Spark's own ``rate`` source: every class a counter uses."""
    from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)
    from pyspark.sql import types as T  # noqa: N812

    session = start_spark(settings)
    session.udf.registerJavaFunction(
        "course_tokens", "course.SparkTokens", T.ArrayType(T.StringType())
    )
    rows = session.readStream.format("rate").option("rowsPerSecond", 2000).load()
    values = F.concat_ws(" ", F.lit("warm"), F.col("value").cast("string")).cast("binary")
    words = rows.select(
        F.explode(F.call_function("course_tokens", values)).alias("word"), "timestamp"
    )
    with tempfile.TemporaryDirectory(prefix="course-warmup-") as checkpoints:
        queries = [
            words.groupBy("word").count().writeStream.outputMode("complete")
            .foreachBatch(lambda batch, _: batch.collect())
            .option("checkpointLocation", f"{checkpoints}/totals")
            .trigger(processingTime="0.5 seconds").start(),
            words.withWatermark("timestamp", "10 seconds")
            .groupBy(F.window("timestamp", "5 seconds"), "word").count()
            .writeStream.outputMode("update")
            .foreachBatch(lambda batch, _: batch.collect())
            .option("checkpointLocation", f"{checkpoints}/windows")
            .trigger(processingTime="0.5 seconds").start(),
        ]  # fmt: skip
        queries[0].awaitTermination(6)  # a dozen batches (the rate source never runs out)
        for query in queries:
            query.stop()
    session.stop()
    from pyspark import SparkContext

    _exit_jvm_and_wait(SparkContext._gateway.jvm)


def flink_job(settings: Settings) -> None:
    """Plan the course's Flink job, then run a small bounded one through the same operators."""
    import shutil

    from pyflink.table import EnvironmentSettings, TableEnvironment

    from helpers.consumers.flink import FlinkWordCounter, prepare_jvm

    counter = FlinkWordCounter(topic="warm-up", settings=settings)
    counter.explain_only()
    pipeline_jars, tokenizer = prepare_jvm(settings)
    configuration = counter.configuration(pipeline_jars)
    t_env = TableEnvironment.create(
        EnvironmentSettings.new_instance()
        .in_streaming_mode()
        .with_configuration(configuration)
        .build()
    )
    if tokenizer:
        t_env.execute_sql("CREATE TEMPORARY FUNCTION tokens AS 'course.FlinkTokens' LANGUAGE JAVA")
    for statement in (
        """CREATE TEMPORARY TABLE records (`value` BYTES, ts AS LOCALTIMESTAMP) WITH (
            'connector' = 'datagen', 'number-of-rows' = '20000', 'fields.value.length' = '8')""",
        "CREATE TEMPORARY TABLE counts (w STRING, c BIGINT) WITH ('connector' = 'blackhole')",
    ):
        t_env.execute_sql(statement)
    words = "SELECT t.word FROM records AS r, LATERAL TABLE(tokens(r.`value`)) AS t(word)"
    if not tokenizer:
        words = "SELECT CAST(`value` AS STRING) AS word FROM records"
    t_env.execute_sql(
        f"INSERT INTO counts SELECT word, COUNT(*) FROM ({words}) GROUP BY word"
    ).wait()
    shutil.rmtree(counter.state_dir, ignore_errors=True)
    from pyflink.java_gateway import get_gateway

    _exit_jvm_and_wait(get_gateway().jvm)


def _exit_jvm_and_wait(jvm) -> None:
    """End the engine's JVM the normal way (so it writes its class archive), and wait until it has.

    Left to itself it would be stopped as this process ends, before or while it writes the archive.
    """
    try:
        jvm.java.lang.System.exit(0)
    except Exception:  # the gateway's connection drops as the JVM exits: that is the point
        pass
    while True:
        try:
            os.wait()  # the JVM is this process's child
        except ChildProcessError:
            return


JOBS = {"spark": spark_job, "flink": flink_job}
STARTS = {"spark": start_spark, "flink": start_flink}


def start_in_background(*engines: str, settings: Settings | None = None) -> None:
    """Start the engines' JVMs one after the other in a daemon thread; counters started later reuse them.

    Safe to call twice and from Run All: an engine already started (or starting) is left alone. A
    failure here is kept, not raised: the counter that needs the engine reports it in one line.
    """
    settings = settings or load()
    unknown = [engine for engine in engines if engine not in STARTS]
    if unknown:
        raise CourseError(f"No engine {unknown[0]!r} to start; choose from {', '.join(STARTS)}.")
    wanted = [engine for engine in engines if engine not in _started]

    def start() -> None:
        for engine in wanted:  # one at a time: two JVMs starting at once on two cores help neither
            try:
                STARTS[engine](settings)
            except Exception as error:  # the counter will meet it again and say it in one line
                _failed[engine] = first_cause(error)

    thread = threading.Thread(target=start, name="start-engines", daemon=True)
    for engine in wanted:
        _started[engine] = thread
    if wanted:
        thread.start()


def wait_started(engine: str, timeout: float = 120.0) -> bool:
    """Block until a background start of ``engine`` ended (at once if none began); True if it worked."""
    thread = _started.get(engine)
    if thread is not None:
        thread.join(timeout)
    return engine not in _failed


def main() -> None:
    """``python -m helpers.warmup ENGINE``: run the engine's warm-up job once, then exit."""
    engine = sys.argv[1] if len(sys.argv) > 1 else ""
    if engine not in JOBS:
        raise SystemExit(f"usage: python -m helpers.warmup {{{','.join(JOBS)}}}")
    JOBS[engine](load())


if __name__ == "__main__":
    main()
