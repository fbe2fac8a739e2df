"""Start an engine before it is needed: in the background while a learner reads, or once at setup.

A chapter's first cell calls :func:`start_in_background`: the engine's own counter then rehearses on an
empty scratch topic while the learner reads the text above the first counter, and that counter finds
the JVM up, the planner warm and the Kafka classes loaded. At setup the warm-up jobs use the engines'
own sources (Spark's ``rate``, Flink's ``datagen``), then the counter rehearses on a scratch broker;
run in a child process, they are what :mod:`helpers.class_archive` records:
``python -m helpers.warmup spark``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import replace

from helpers import class_archive
from helpers.config import Settings, load
from helpers.engines import ENGINES, JVM_ENGINES
from helpers.engines import load as load_target
from helpers.errors import CourseError, first_cause

_started: dict[str, threading.Thread] = {}
_failed: dict[str, str] = {}


def start_spark(settings: Settings):
    """The Spark session every Spark counter of this process shares, with the tokenizer loaded."""
    from helpers.consumers.spark import spark_session

    return spark_session(settings)


def spark_job(
    settings: Settings, seconds: float = 6.0, exit_jvm: bool = False, kafka: str | None = None
) -> None:
    """The course's two Spark queries on Spark's own ``rate`` source: every class a counter uses.

    The session stays up for the counters, or with ``exit_jvm`` its JVM ends (writing its archive).
    With ``kafka`` (a broker's address) the course's counter then rehearses there too, loading the
    Kafka source's and sink's classes.
    """
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
        queries[0].awaitTermination(seconds)  # several batches (the rate source never runs out)
        for query in queries:
            query.stop()
    if kafka:
        _rehearse_for_the_archive("spark", replace(settings, bootstrap_servers=kafka))
    if exit_jvm:
        from pyspark import SparkContext

        SparkContext.getOrCreate().stop()
        _exit_jvm_and_wait(SparkContext._gateway.jvm)  # noqa: SLF001 — pyspark's gateway: no public way


def flink_job(
    settings: Settings, seconds: float = 6.0, exit_jvm: bool = False, kafka: str | None = None
) -> None:
    """Plan the course's Flink job, then run a small bounded one through the same operators.

    With ``exit_jvm`` the JVM ends afterwards (writing its class archive). With ``kafka`` (a broker's
    address) the course's counter then rehearses there too, loading the Kafka source's and sink's classes.
    """
    from helpers.consumers.flink import FlinkWordCounter

    FlinkWordCounter(topic="warm-up", settings=settings).rehearse(rows=int(seconds * 3000))
    if kafka:
        _rehearse_for_the_archive("flink", replace(settings, bootstrap_servers=kafka))
    if exit_jvm:
        from pyflink.java_gateway import get_gateway

        _exit_jvm_and_wait(get_gateway().jvm)


def _rehearse_for_the_archive(engine: str, settings: Settings) -> None:
    """The Kafka rehearsal of an archive's warm-up; if it fails, the archive is made without it."""
    try:
        rehearse(engine, settings)
    except Exception as error:
        print(f"The {engine} rehearsal on Kafka failed ({first_cause(error)}); archiving the rest.")


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


# The engine's modules (Engine.modules) are imported by the caller before the background start:
# pyspark's and pyflink's packages import each other in circles, and a learner's cell importing one
# while the thread imports it too fails with "cannot import name … from partially initialized module"
# (seen under Run All).


def start_in_background(*names: str, settings: Settings | None = None) -> None:
    """Start the engines' JVMs one after the other in a daemon thread; counters started later reuse them.

    Safe to call twice and from Run All: an engine already started (or starting) is left alone. A
    failure here is kept, not raised: the counter that needs the engine reports it in one line.
    """
    settings = settings or load()
    unknown = [engine for engine in names if engine not in JVM_ENGINES]
    if unknown:
        raise CourseError(
            f"No engine {unknown[0]!r} to start; choose from {', '.join(JVM_ENGINES)}."
        )
    wanted = [engine for engine in names if engine not in _started]
    for engine in wanted:  # here, not in the thread: see the note above
        for module in ENGINES[engine].modules:
            importlib.import_module(module)

    def start() -> None:
        for engine in wanted:  # one at a time: two JVMs starting at once on two cores help neither
            try:
                rehearse(engine, settings)
            except Exception as error:  # the counter will meet it again and say it in one line
                _failed[engine] = first_cause(error)

    thread = threading.Thread(target=start, name="start-engines", daemon=True)
    for engine in wanted:
        _started[engine] = thread
    if wanted:
        thread.start()


def rehearse(engine: str, settings: Settings) -> None:
    """Run the engine's own counter once, over an empty scratch topic, then remove what it left.

    The first counter of a process pays for its JVM, for planning and for loading the Kafka source
    and sink; after a rehearsal the chapter's first counter starts as fast as a later one.
    """
    from helpers import topics
    from helpers.consumers.base import Bound
    from helpers.consumers.registry import make_counter

    topic = topics.fresh_topic("warm-up", settings=settings)
    counter = make_counter(engine, topic=topic, group=f"warm-up-{topic}", settings=settings)
    try:
        counter.run(Bound(until_idle=0), timeout=300)
    finally:
        topics.delete_topic(topic, settings)
        for leftover in counter.leftovers():
            if isinstance(leftover, str):
                topics.delete_topic(leftover, settings)
            else:
                shutil.rmtree(leftover, ignore_errors=True)


def wait_started(engine: str, timeout: float = 120.0) -> bool:
    """Block until a background start of ``engine`` ended (at once if none began); True if it worked."""
    thread = _started.get(engine)
    if thread is not None:
        thread.join(timeout)
    return engine not in _failed


def main() -> None:
    """``python -m helpers.warmup ENGINE``: run the engine's warm-up job once, then end its JVM.

    With COURSE_WARMUP_KAFKA set to a broker, the engine's own counter also rehearses there, so that
    the JVM (and the class archive it writes) has loaded the Kafka source's and sink's classes too.
    """
    engine = sys.argv[1] if len(sys.argv) > 1 else ""
    if engine not in JVM_ENGINES:
        raise SystemExit(f"usage: python -m helpers.warmup {{{','.join(JVM_ENGINES)}}}")
    settings, kafka = load(), os.environ.get(class_archive.REHEARSAL_KAFKA, "").strip()
    load_target(ENGINES[engine].warmup)(settings, exit_jvm=True, kafka=kafka or None)


if __name__ == "__main__":
    main()
