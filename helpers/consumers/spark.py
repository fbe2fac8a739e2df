"""Count words with Spark Structured Streaming reading Kafka (the seed used DStreams, now gone from Python).

Two streaming queries read the topic: running totals per word, and counts per word per 5-second
tumbling window of the Kafka record timestamp (with a watermark). Both write through ``foreachBatch``
into a snapshot the live view reads.

Why restarts neither lose nor double-count: the totals are Spark's own aggregation state, kept in the
checkpoint together with the Kafka offsets it has read; each batch emits the *complete* table of totals
(or, for windows, the *updated* rows), and the sink overwrites its snapshot with them. Replaying a batch
after a crash writes the same values again — an idempotent overwrite, never an increment.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import sys
import threading
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kafka import errors as kafka_errors

from helpers import class_archive, engine_clusters, jars, topics, ui_links
from helpers.config import Settings
from helpers.consumers.base import (
    BROKER_AWAY_LIMIT,
    Bound,
    Progress,
    Snapshot,
    WordCounter,
    epoch_seconds,
)
from helpers.consumers.results import (
    FENCED,
    BatchResults,
    ResultsWriter,
    check_results_options,
    crash_now,
)
from helpers.errors import CourseError, first_cause
from helpers.java import LATER_C2, find_java
from helpers.jvm_output import jvm_output_to, log_path
from helpers.jvm_tokens import tokenizer_jar
from helpers.text import RECORD, split_controls, tokens_with_controls
from helpers.wait import wait_until

log = logging.getLogger(__name__)

WINDOW = "5 seconds"
SPARK_UI_PORT = 4040  # Spark's own first choice; the next free one when taken
SECRET = "spark.authenticate.secret"
# A micro-batch of the running count takes ~0.2 s here (Spark alone at 500 words/s, checkpoints written
# without forks): a trigger every 0.5 s gives p50 ~0.6 s while every engine counts at once (1 s: ~1.6 s).
TRIGGER_SECONDS = 0.5
WATERMARK = "10 seconds"
ISO_SECONDS = "yyyy-MM-dd'T'HH:mm:ss"  # window starts and ends, as Flink's and the producer's


def spark_session(settings: Settings, app: str = "course-spark"):
    """A SparkSession with the locked Kafka connector on its classpath, tuned for a small machine.

    The course's jar (the tokenizer, built at first use) goes on the classpath too, when a JDK can
    build it: then checkpoints are written without a process per file (see
    :func:`_checkpoints_without_forks`).
    """
    java = find_java()
    classpath = jars.classpath(settings, "spark")  # a one-line error when the connector is missing
    course_jar = tokenizer_jar(settings)
    classpath += [course_jar] if course_jar else []
    os.environ.setdefault("JAVA_HOME", str(java.home))
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers run in this very venv
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    master = settings.spark_master
    # Spark's UI binds SPARK_LOCAL_IP, else every address: read by the JVM pyspark launches below
    os.environ["SPARK_LOCAL_IP"] = settings.bind_address
    ui_port = ui_links.free_port(SPARK_UI_PORT, settings.bind_address) if settings.engine_ui else 0
    authentication = engine_clusters.spark_authentication(settings, master)  # the cluster's secret
    running = SparkContext._active_spark_context  # noqa: SLF001 — pyspark's own gateway state: no public way to ask
    if running is not None and (
        running.master != master or running.getConf().get(SECRET) != authentication.get(SECRET)
    ):  # another master, or a new cluster on the same port (a new secret): a context for it
        running.stop()
    options = {
        "spark.jars": ",".join(str(p) for p in classpath),
        "spark.driver.memory": settings.spark_memory,
        "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:ReservedCodeCacheSize=64m "
        f"{LATER_C2} "
        f"-XX:ErrorFile={settings.logs_dir / 'hs_err_spark_%p.log'} "  # not in the notebooks' folder
        + class_archive.java_options("spark", settings),  # classes mapped from one file
        "spark.sql.shuffle.partitions": "2",  # 200 by default: seconds per local batch
        # no batch without new records: with two cores, an empty batch delays the next real one
        "spark.sql.streaming.noDataMicroBatches.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        "spark.python.worker.reuse": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.pythonUDF.arrow.enabled": "false",  # plain UDF: no pyarrow pin
        "spark.driver.host": "127.0.0.1",  # executors on a standalone cluster call back here
        "spark.driver.bindAddress": settings.bind_address,  # its RPC and block manager
        "spark.ui.enabled": str(settings.engine_ui).lower(),  # off: a faster start (the CLI)
        "spark.ui.port": str(ui_port),
        "spark.executor.memory": settings.spark_executor_memory,
    }
    if settings.engine_ui and (
        proxied := ui_links.proxied_base(ui_port)
    ):  # behind a hub: the UI's own links go through it
        options["spark.ui.proxyBase"] = proxied
    try:
        with jvm_output_to(log_path(settings, "spark")):  # Spark's console, never a cell's output
            if SparkContext._gateway is None:  # noqa: SLF001 — pyspark's own gateway state: no public way to ask
                # pyspark puts a new JVM's settings on its command line, which anyone on the machine
                # can read: the JVM starts without the secret, which then travels over Py4J
                SparkContext._ensure_initialized(conf=SparkConf().setAll(list(options.items())))  # noqa: SLF001 — pyspark's own gateway state: no public way to ask
            builder = SparkSession.builder.appName(app).master(master)
            for key, value in {**options, **authentication}.items():
                builder = builder.config(key, value)
            session = builder.getOrCreate()
    except Exception as error:  # Py4J and JVM start-up failures: one line, not a trace
        raise CourseError(f"Spark did not start: {first_cause(error)}") from None
    session.sparkContext.setLogLevel("WARN")
    if course_jar:
        for key, value in _checkpoints_without_forks().items():
            session.conf.set(key, value)
    return session


def _checkpoints_without_forks() -> dict[str, str]:
    """Session settings that halve a micro-batch here (measured: 390 -> 200 ms, Spark alone).

    Without Hadoop's native library, its local file system starts a ``chmod`` process for every file
    it creates and Spark's default checkpoint manager a ``readlink`` for every rename: several per
    micro-batch, 45 ms for each of the offset log's and commit log's writes. Hadoop's FileSystem API
    renames in Java, and the course's ``LocalFilesWithoutForks`` (in the tokenizer's jar) sets
    permissions in Java. Set in the session, not at launch: ``spark-submit`` itself reads ``file:``
    paths before the jar is loaded; the session's Hadoop settings reach every checkpoint and state
    store, on a cluster's executors too (uncached, since the cached ``file:`` system is Hadoop's).
    """
    return {
        "spark.sql.streaming.checkpointFileManagerClass": "org.apache.spark.sql.execution.streaming."
        "checkpointing.FileSystemBasedCheckpointFileManager",
        "fs.file.impl": "course.LocalFilesWithoutForks",
        "fs.file.impl.disable.cache": "true",
    }


def _crash_spark() -> None:
    """SIGKILL Spark's JVM, then this process: a crash in which neither commits the batch."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway  # noqa: SLF001 — pyspark's own gateway state: no public way to ask
    if gateway is not None and getattr(gateway, "proc", None) is not None:
        os.kill(gateway.proc.pid, signal.SIGKILL)
    crash_now()


def running_count(words):
    """The course's query: one running count per word (``words`` has columns word, timestamp).

    A learner's own query (chapter 04's exercise) takes its place through ``SparkWordCounter(query=)``.
    """
    return words.groupBy("word").count()


class SparkWordCounter(WordCounter):
    """Running totals and 5-second windowed counts with Spark Structured Streaming."""

    engine = "spark"

    def __init__(
        self,
        topic: str | None = None,
        group: str | None = None,
        from_beginning: bool = True,
        bound: Bound | None = None,
        settings: Settings | None = None,
        checkpoint: str | Path | None = None,
        trigger_seconds: float = TRIGGER_SECONDS,
        query: Callable | None = None,
        results_topic: str | None = None,
        exactly_once: bool = False,
        crash_before_commit: int | None = None,
    ) -> None:
        super().__init__(topic, group, from_beginning, bound, settings)
        check_results_options(results_topic, exactly_once)
        self.query = query or running_count  # (word, timestamp) -> (word, count)
        # Each micro-batch's own word counts written to this topic as increments (consumers.results):
        # as they come (at-least-once: a replayed batch is written again), or by batch id, once.
        self.results_topic = results_topic
        self.exactly_once = exactly_once
        # A lesson's crash point: SIGKILL Spark and this process once the results of this process's
        # batch N are written (exactly-once: committed), before Spark commits the batch: the batch is
        # replayed; at-least-once writes it twice, exactly-once sees its id on the topic and skips it.
        self.crash_before_commit = crash_before_commit
        self._results: ResultsWriter | None = None
        self._batches_written = 0
        self.checkpoint = Path(
            checkpoint or self.settings.data_dir / "checkpoints" / f"spark-{self.group}"
        )
        self.trigger_seconds = trigger_seconds
        self.tokenizer = "java"  # or "python" when no JDK compiler was found
        self._totals: Counter[str] = Counter()
        self._windows: dict[tuple[str, str], int] = {}
        self._window_ends: dict[str, str] = {}
        self._queries: list = []
        self._session = None
        self._lag: int | None = None
        self._lost = 0
        self._batches_seen: set[int] = set()
        self._stopping_queries = False
        self._newest_event: float | None = None  # the newest event time the windows have seen
        self._watermark: float | None = None

    # --- the sinks (run in the driver, once per micro-batch) -------------------------------------

    def _collect(self, batch) -> list | None:
        """The batch's rows; None when the batch was cut short because this counter is stopping.

        Spark interrupts a running batch when its query stops; that batch is not committed (the
        next start replays it), so there is nothing to report: left to itself, the interruption
        would print a Py4J stack trace into the learner's cell.
        """
        try:
            return batch.collect()
        except Exception:
            if self._stopping_queries:
                return None
            raise

    def _write_totals(self, batch, batch_id: int) -> None:
        rows = self._collect(batch)  # (word, count): one row per distinct word, small
        if rows is None:
            return
        with self._lock:
            for row in rows:
                self._totals[row["word"]] = row["count"]  # overwrite: replays are harmless
            if rows:
                self._counted()
            self._save_results()

    def _write_windows(self, batch, batch_id: int) -> None:
        rows = self._collect(batch)  # (window start, window end, word, count)
        if rows is None:
            return
        with self._lock:
            for row in rows:
                start = row["start"]
                self._windows[(start, row["word"])] = row["count"]
                self._window_ends[start] = row["end"]
            self._save_results()

    def _write_results(self, batch, batch_id: int) -> None:
        """The batch's own counts per word, to the results topic: as they come, or once per batch id."""
        rows = self._collect(batch.groupBy("word").count())  # this batch's words only
        if rows is None:  # cut short by a stop: fail the batch, or Spark would commit it unwritten
            raise CourseError(f"batch {batch_id} was stopped before its results were written")
        increments = {row["word"]: row["count"] for row in rows}
        self._batches_written += 1
        crash = _crash_spark if self._batches_written == self.crash_before_commit else None

        def written() -> bool:
            try:
                if self._results is None:  # a new writer: its transactional id aborts what was
                    self._results = self._results_writer()  # open; it reads what the topic holds
                if isinstance(self._results, BatchResults):
                    self._results.write_batch(increments, batch_id, crash)
                else:
                    self._results.write(increments)  # again after a failure: at-least-once
                    if crash is not None:
                        crash()
                return True
            except kafka_errors.KafkaError as error:
                if not (error.retriable or isinstance(error, FENCED)):
                    raise
                log.info("results to %s failed (%s); writing them again", self.results_topic, error)
                if self._results is not None:  # a commit that failed on our side may have landed:
                    self._results.close()  # the next writer reads which batches the topic holds
                    self._results = None
                return False

        # a broker away: write again once it is back (a writer made meanwhile fails: CourseError)
        wait_until(written, BROKER_AWAY_LIMIT, f"batch {batch_id}'s results on {self.results_topic}",
                   every=1.0, retry=(CourseError,))  # fmt: skip

    # --- the durable side of the sink ----------------------------------------------------------

    @property
    def _results_file(self) -> Path:
        return self.checkpoint / "results.json"

    def _save_results(self) -> None:
        """Overwrite the results file (atomically) before Spark commits the batch.

        A counter killed after this write resumes from the checkpoint and replays at most the batch
        that wrote it, which writes the same values again; so a resumed counter can show its counts
        at once, even when no new record arrives to trigger a batch.
        """
        data = {
            "totals": self._totals,
            "windows": [[s, w, c, self._window_ends[s]] for (s, w), c in self._windows.items()],
        }
        part = self._results_file.with_suffix(".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(json.dumps(data))
        os.replace(part, self._results_file)

    def _load_results(self) -> None:
        """Resume the snapshot from an earlier run's results, as Spark resumes its checkpoint."""
        if not self._results_file.exists():
            return
        data = json.loads(self._results_file.read_text())
        with self._lock:
            self._totals.update(data["totals"])
            for start, word, count, end in data["windows"]:
                self._windows[(start, word)] = count
                self._window_ends[start] = end

    # --- lifecycle -----------------------------------------------------------------------------

    def _tokens_function(self, session):
        """``tokenize()`` as a Spark function: the Java one (same rule, same Unicode table) if built.

        The Java UDF runs inside Spark's JVM; the Python fallback pickles every record to a Python
        worker and back, several times slower.
        """
        from pyspark.sql import functions as F  # noqa: N812
        from pyspark.sql import types as T  # noqa: N812

        if self.tokenizer == "java":
            session.udf.registerJavaFunction(
                "course_tokens", "course.SparkTokens", T.ArrayType(T.StringType())
            )
            return lambda column: F.call_function("course_tokens", column)
        return F.udf(tokens_with_controls, T.ArrayType(T.StringType()), useArrow=False)

    def _stream(self, session):
        from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)

        tokens = self._tokens_function(session)
        start = (
            "earliest"  # a new group (checkpoint) counts from the first record; a known one resumes
        )
        records = (
            session.readStream.format("kafka")
            .option("kafka.bootstrap.servers", self.settings.bootstrap_servers)
            .option("subscribe", self.topic)
            .option("startingOffsets", start)
            .option("groupIdPrefix", self.group)
            .option("failOnDataLoss", "false")
            .load()
        )  # (key, value, topic, partition, offset, timestamp, ...)
        return records.select(F.explode(tokens("value")).alias("word"), "timestamp")  # (word, ts)

    def _open(self) -> None:
        """Start the session (a few seconds) and both queries."""
        topics.describe_topic(
            self.topic, self.settings
        )  # broker reachable, topic exists: or one line
        self._load_results()
        self._stopping_queries = False
        tokenizer = tokenizer_jar(self.settings)
        self.tokenizer = "java" if tokenizer else "python"
        self._session = spark_session(self.settings)
        from pyspark.sql import functions as F  # noqa: N812

        words = self._stream(self._session)
        trigger = f"{self.trigger_seconds:g} seconds"
        try:
            counted = self.query(words)
        except NotImplementedError:
            raise
        except Exception as error:  # the learner's query: say what Spark did not like, in one line
            raise CourseError(f"The Spark query failed: {first_cause(error)}") from None
        if sorted(counted.columns) != ["count", "word"]:
            raise CourseError(
                f"The Spark query must give the columns word and count; it gives {counted.columns}."
            )
        totals = (
            counted.writeStream.outputMode("complete")
            .foreachBatch(self._write_totals)
            .option("checkpointLocation", str(self.checkpoint / "totals"))
            .trigger(processingTime=trigger)
            .queryName(f"totals_{self.group.replace('-', '_')}")
            .start()
        )
        windows = (
            words.where(~F.col("word").startswith("\x00"))
            .withWatermark("timestamp", WATERMARK)
            .groupBy(F.window("timestamp", WINDOW).alias("w"), "word")
            .count()
            .select(  # as text in the session's time zone (UTC): collect() would give local time
                F.date_format("w.start", ISO_SECONDS).alias("start"),
                F.date_format("w.end", ISO_SECONDS).alias("end"),
                "word",
                "count",
            )  # fmt: skip
            .writeStream.outputMode("update")
            .foreachBatch(self._write_windows)
            .option("checkpointLocation", str(self.checkpoint / "windows"))
            .trigger(processingTime=WINDOW)  # a window's worth at a time: half the batches to run
            .start()
        )
        self._queries = [totals, windows]
        if self.results_topic:
            self._queries.append(self._start_results(words, trigger))

    def _results_writer(self) -> ResultsWriter:
        if not self.exactly_once:
            return ResultsWriter(self.results_topic, self.settings)
        # the results query's id, kept in its checkpoint: a new checkpoint is a new writer
        query = json.loads((self.checkpoint / "results" / "metadata").read_text())["id"]
        return BatchResults(self.results_topic, self.settings, f"spark-{self.group}", query)

    def _start_results(self, words, trigger: str):
        """The third query: each micro-batch's words, counted, to the results topic."""
        from pyspark.sql import functions as F  # noqa: N812

        topics.create_topic(self.results_topic, settings=self.settings)
        self._results = None  # made at the first batch, once the query's checkpoint names it
        return (
            words.where(~F.col("word").startswith("\x00"))
            .writeStream.foreachBatch(self._write_results)
            .option("checkpointLocation", str(self.checkpoint / "results"))
            .trigger(processingTime=trigger)
            .start()
        )

    def explain(self) -> str:
        """The physical plan Spark runs for the running count (the query a learner wrote, or ours).

        Known once the first micro-batch has run; before that Spark says it is waiting for data.
        """
        if not self._queries:
            raise CourseError("The Spark counter is not running: start it, then ask for its plan.")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            self._queries[0].explain()
        return buffer.getvalue().strip()

    @property
    def ui_url(self) -> str | None:
        """The Spark UI of this session, as the learner's browser opens it (through a hub's proxy)."""
        address = self._session.sparkContext.uiWebUrl if self._session is not None else None
        port = urllib.parse.urlparse(address).port if address else None
        return ui_links.ui_link(port, "jobs/") if port else None

    def _close(self, stopped: bool, timeout: float = 60.0) -> None:
        """Asked to stop: let the queries finish what has arrived; then stop them.

        The checkpoint stays, for a later restart. The session stays too: the next Spark counter of
        this process starts in seconds instead of restarting Spark (the JVM ends with the process).
        """
        if stopped:
            self._finish_available(timeout)
        try:  # the lag shown after the stop: up to the last batch, not the last look's
            self._update_lag()
        except Exception:  # a failed query or an absent broker: keep the last known
            pass
        self._stopping_queries = True
        for query in self._queries:
            try:
                query.stop()
            except Exception:  # already stopped or failed: nothing left to release
                pass
        self._queries = []
        self._session = None  # the session stays up for the next counter; it ends with the process
        if self._results is not None:
            self._results.close()
            self._results = None

    def _finish_available(self, timeout: float) -> None:
        """Run the queries until they have processed every record available now.

        Totals and windows then end on the same records; ``timeout`` bounds the wait.
        """

        def finish() -> None:
            for query in self._queries:
                try:
                    query.processAllAvailable()
                except Exception:  # a stopped or failed query has nothing more to give
                    pass

        if self._queries and self._error is None:
            worker = threading.Thread(target=finish, daemon=True)
            worker.start()
            worker.join(timeout)

    def leftovers(self) -> list:
        """The checkpoint folder (state, offsets, results.json)."""
        return [self.checkpoint]

    def delete_checkpoint(self) -> None:
        """Forget the state: the next counter with this checkpoint starts from scratch."""
        shutil.rmtree(self.checkpoint, ignore_errors=True)

    # --- progress, lag and bounds --------------------------------------------------------------

    def _offsets(self, source: dict, which: str) -> dict[int, int] | None:
        offsets = source.get(which)
        if isinstance(offsets, str):
            offsets = json.loads(offsets)
        if not offsets:
            return None
        return {int(p): o for p, o in offsets.get(self.topic, {}).items()}

    def _read_offsets(self) -> dict[int, int] | None:
        progress = self._queries[0].lastProgress if self._queries else None
        if not progress or not progress.get("sources"):
            return None
        return self._offsets(progress["sources"][0], "endOffset")

    def _count_lost(self) -> None:
        """Add up records that vanished under the query (``failOnDataLoss`` is off): never silent.

        Each micro-batch reads the offsets from its start to its end; on a topic with dense offsets
        (no compaction, no transactions) every offset is a record, so fewer input rows than offsets
        means that many records were deleted (retention, a re-created topic) before Spark read them.
        """
        if not self._queries:
            return
        for progress in self._queries[0].recentProgress:
            if progress["batchId"] in self._batches_seen or not progress.get("sources"):
                continue
            self._batches_seen.add(progress["batchId"])
            source = progress["sources"][0]
            start, end = self._offsets(source, "startOffset"), self._offsets(source, "endOffset")
            if start is None or end is None:
                continue
            spanned = sum(max(end[p] - start.get(p, end[p]), 0) for p in end)
            lost = spanned - int(source.get("numInputRows", 0))
            if lost > 0:
                with self._lock:
                    self._lost += lost

    def _update_lag(self) -> bool:
        """Refresh the lag from the query's progress; True when it has read up to the end."""
        self._count_lost()
        read = self._read_offsets()
        if read is None:
            return False
        latest = topics.latest_offsets(self.topic, self.settings)
        lag = sum(max(end - read.get(p, 0), 0) for p, end in latest.items())
        with self._lock:
            self._lag = lag
        return lag == 0

    def _update_event_time(self) -> None:
        """The windows query's event time, from its last progress: newest seen so far, and watermark.

        A batch reports its own rows' newest time (``eventTime.max``): the newest over the run is
        the largest of those. The watermark is the one the batch ran with.
        """
        queries = self._queries  # stop() may empty the list meanwhile
        progress = queries[1].lastProgress if len(queries) > 1 else None
        event_time = (progress or {}).get("eventTime") or {}
        newest = epoch_seconds(event_time.get("max"))
        watermark = epoch_seconds(event_time.get("watermark"))
        with self._lock:
            if newest is not None:
                self._newest_event = max(newest, self._newest_event or newest)
            if watermark is not None:
                self._watermark = watermark

    def _check_failed(self) -> bool:
        for query in self._queries:
            failure = query.exception()
            if failure is not None:
                self._error = first_cause(failure)
                return True
        return False

    def _progress(self) -> Progress:
        if self._check_failed():
            return Progress(self.snapshot().records, ended=True)
        caught_up = self._update_lag()
        self._update_event_time()
        return Progress(self.snapshot().records, caught_up=caught_up)

    # --- results -------------------------------------------------------------------------------

    def records_shown(self) -> int:
        """Records in the totals shown so far (the control key that counts them)."""
        with self._lock:
            return self._totals.get(RECORD, 0)

    def snapshot(self) -> Snapshot:
        """Totals, windows, records, skipped, lag and rate right now."""
        with self._lock:
            counts, records, skipped = split_controls(self._totals)
            windows = [
                {"start": start, "end": self._window_ends[start], "word": word, "count": count}
                for (start, word), count in sorted(self._windows.items())
            ]
            return self._snapshot(
                counts=counts,
                records=records,
                skipped=skipped,
                windows=windows,
                lag=self._lag,
                lost=self._lost,
                newest_event=self._newest_event,
                watermark=self._watermark,
            )
