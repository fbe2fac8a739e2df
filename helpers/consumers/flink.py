"""Count words with Apache Flink (PyFlink DataStream API): record at a time, keyed state, event-time windows.

The seed's Flink job printed ``(word, count)`` for every word it received. This job does the same with
today's Kafka connector: a Kafka table in ``raw`` format (so empty, null and non-UTF-8 values arrive
and can be counted as skipped) becomes a DataStream; words go through the one ``tokenize()``, are keyed,
and summed — the running counts — and also counted in 5-second tumbling event-time windows.

The job runs in Flink's JVM, not in this Python process, so it publishes every count update to a
one-partition *results topic*, and this counter reads that topic back into its snapshot. Each update is
an absolute count (never a delta), so reading a replayed update again is harmless: after a restore from
a checkpoint or savepoint the counts converge to the same values, neither lost nor doubled.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from helpers import jars, topics
from helpers.config import PROJECT_ROOT, Settings
from helpers.consumers.base import Bound, Snapshot, WordCounter
from helpers.errors import CourseError, first_cause
from helpers.java import find_java
from helpers.text import split_controls, tokens_with_controls

WINDOW_SECONDS = 5
WATERMARK_SECONDS = 10
CHECKPOINT_MS = 2000
TERMINAL = {"FINISHED", "FAILED", "CANCELED"}
# Every call into pyflink's JVM goes through this lock. Flink's table planner keeps per-thread state,
# and Py4J picks a JVM thread per connection: if another thread borrowed the connection between
# building a table and converting it (toDataStream), the planner would fail with
# "NullPointerException: metadataHandlerProvider". One caller at a time keeps one JVM thread.
_GATEWAY = threading.RLock()


def _prepare_python_path() -> None:
    """Let Flink's embedded Python (thread mode) import this venv's packages and ``helpers``."""
    extra = [sysconfig.get_paths()["purelib"], str(PROJECT_ROOT)]
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(extra + current))


def _prepare_gateway_classpath(connector: list[Path]) -> None:
    """Put the Kafka connector on the classpath of the JVM that pyflink launches.

    pyflink appends HADOOP_CLASSPATH to it, so every thread's class loader finds the Kafka table
    factory and sink (``add_jars`` alone reaches only the calling thread's).
    """
    current = [p for p in os.environ.get("HADOOP_CLASSPATH", "").split(os.pathsep) if p]
    os.environ["HADOOP_CLASSPATH"] = os.pathsep.join(
        dict.fromkeys([str(path) for path in connector] + current)
    )


def results_topic_for(group: str) -> str:
    """Where the job of consumer group ``group`` publishes its counts (kept across restarts)."""
    return f"_course-flink-{group}"


def _source_table(settings: Settings, topic: str, group: str, start: str, bounded: bool) -> str:
    bounded_option = "'scan.bounded.mode' = 'latest-offset'," if bounded else ""
    return f"""
        CREATE TEMPORARY TABLE records (
            `value` BYTES,
            `ts` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
            WATERMARK FOR `ts` AS `ts` - INTERVAL '{WATERMARK_SECONDS}' SECOND
        ) WITH (
            'connector' = 'kafka',
            'topic' = '{topic}',
            'properties.bootstrap.servers' = '{settings.bootstrap_servers}',
            'properties.group.id' = '{group}',
            'scan.startup.mode' = '{start}',
            {bounded_option}
            'format' = 'raw'
        )"""


def _build_job(env, t_env, settings: Settings, topic: str, group: str, start: str, bounded: bool):
    """Source -> tokens -> keyed running sum and 5-second windows -> the results topic."""
    from pyflink.common import Time, Types
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.kafka import (
        DeliveryGuarantee,
        KafkaRecordSerializationSchema,
        KafkaSink,
    )
    from pyflink.datastream.functions import KeyedProcessFunction, ProcessWindowFunction
    from pyflink.datastream.state import ValueStateDescriptor
    from pyflink.datastream.window import TumblingEventTimeWindows

    class RunningCount(KeyedProcessFunction):
        """The running count per word, in keyed state named "count".

        pyflink's own reduce() names its state randomly, so no savepoint could ever restore it.
        """

        def open(self, runtime_context):
            self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

        def process_element(self, value, ctx):
            total = (self.count.value() or 0) + value[1]
            self.count.update(total)
            yield json.dumps({"w": value[0], "c": total})

    class CountInWindow(ProcessWindowFunction):
        def process(self, key, context, elements):
            window = context.window()
            total = sum(count for _, count in elements)
            yield json.dumps({"w": key, "c": total, "s": window.start, "e": window.end})

    t_env.execute_sql(_source_table(settings, topic, group, start, bounded))
    rows = t_env.to_data_stream(t_env.from_path("records"))  # Row(value, ts), event time = ts
    pair = Types.TUPLE([Types.STRING(), Types.LONG()])
    tokens = rows.flat_map(
        lambda row: [(token, 1) for token in tokens_with_controls(row[0])], output_type=pair
    )  # (token, 1)
    totals = tokens.key_by(lambda t: t[0], key_type=Types.STRING()).process(
        RunningCount(), output_type=Types.STRING()
    )  # {"w": word, "c": running count}: the seed's (word, count) stream
    windows = (
        tokens.filter(lambda t: not t[0].startswith("\x00"))
        .key_by(lambda t: t[0], key_type=Types.STRING())
        .window(TumblingEventTimeWindows.of(Time.seconds(WINDOW_SECONDS)))
        .process(CountInWindow(), output_type=Types.STRING())
    )  # {"w", "c", "s", "e"} once the watermark passes a window's end
    sink = (
        KafkaSink.builder()
        .set_bootstrap_servers(settings.bootstrap_servers)
        .set_record_serializer(
            KafkaRecordSerializationSchema.builder()
            .set_topic(results_topic_for(group))
            .set_value_serialization_schema(SimpleStringSchema())
            .build()
        )
        .set_delivery_guarantee(
            DeliveryGuarantee.AT_LEAST_ONCE
        )  # updates are absolute: replays are safe
        .build()
    )
    totals.union(windows).sink_to(sink).name("results")


class FlinkWordCounter(WordCounter):
    """Running counts and 5-second windowed counts with a PyFlink job on a local mini-cluster.

    Give ``savepoint`` (a path returned by ``stop(savepoint=True)``) and the same ``group`` to resume a
    stopped job with its state. Set FLINK_REST_ADDRESS (host:port) to submit to a running Flink cluster.
    """

    engine = "flink"

    def __init__(
        self,
        topic: str | None = None,
        group: str | None = None,
        from_beginning: bool = True,
        bound: Bound | None = None,
        settings: Settings | None = None,
        savepoint: str | None = None,
        execution_mode: str = "thread",
    ) -> None:
        super().__init__(topic, group, from_beginning, bound, settings)
        self.savepoint = savepoint
        self.execution_mode = execution_mode
        self.state_dir = self.settings.data_dir / "checkpoints" / f"flink-{self.group}"
        self.results_topic = results_topic_for(self.group)
        self.savepoint_path: str | None = None
        self._totals: dict[str, int] = {}
        self._windows: dict[tuple[int, str], tuple[int, int]] = {}
        self._client = None
        self._reader: threading.Thread | None = None
        self._monitor: threading.Thread | None = None
        self._stop_reading = threading.Event()
        self._lag: int | None = None
        self._job_status = "CREATED"
        self._results_read = 0
        self._bounded_source = False
        self._first_count_at: float | None = None
        self.started_at: float | None = None

    # --- the job -------------------------------------------------------------------------------

    def _configuration(self):
        from pyflink.common import Configuration

        conf = Configuration()
        conf.set_string("parallelism.default", "1")
        conf.set_string("python.execution-mode", self.execution_mode)  # thread: ~3x process mode
        conf.set_string("python.executable", sys.executable)
        conf.set_string("python.client.executable", sys.executable)
        conf.set_string("execution.checkpointing.interval", f"{CHECKPOINT_MS} ms")
        conf.set_string("execution.checkpointing.dir", (self.state_dir / "checkpoints").as_uri())
        conf.set_string(
            "execution.checkpointing.savepoint-dir", (self.state_dir / "savepoints").as_uri()
        )
        conf.set_string("table.exec.source.idle-timeout", "5 s")  # idle partitions hold no window
        if self.savepoint:
            conf.set_string("execution.state-recovery.path", self.savepoint)  # Flink 2 key
        remote = os.environ.get("FLINK_REST_ADDRESS", "").strip()
        if remote:
            host, _, port = remote.rpartition(":")
            conf.set_string("execution.target", "remote")
            conf.set_string("rest.address", host)
            conf.set_string("rest.port", port)
        return conf

    def start(self) -> FlinkWordCounter:
        """Submit the job without blocking, and start reading its results; returns self."""
        if self._client is not None:
            return self
        topics.describe_topic(self.topic, self.settings)  # broker reachable, topic exists
        topics.create_topic(self.results_topic, settings=self.settings)  # kept for a restart
        find_java()
        os.environ.setdefault("JAVA_HOME", str(find_java().home))
        _prepare_python_path()
        from pyflink.datastream import StreamExecutionEnvironment
        from pyflink.table import StreamTableEnvironment

        connector = jars.classpath(self.settings, "flink")  # one-line error when missing
        _prepare_gateway_classpath(connector)
        os.environ.setdefault(  # the heap of the JVM pyflink starts (mini-cluster included)
            "JVM_ARGS",
            f"-Xmx{self.settings.flink_heap} -XX:+UseSerialGC -XX:ReservedCodeCacheSize=64m",
        )
        self.started_at = time.monotonic()
        start = "earliest-offset" if self.from_beginning else "group-offsets"
        if self.savepoint:
            start = "group-offsets"  # the savepoint's own offsets win anyway
        # A bounded source stops at the offsets that are latest now; a job resumed from a savepoint
        # keeps its restored (unbounded) reader, so it ends on lag 0 and idleness instead.
        self._bounded_source = self.bound.until_idle is not None and not self.savepoint
        bounded = self._bounded_source
        with _GATEWAY:
            env = StreamExecutionEnvironment.get_execution_environment(self._configuration())
            env.add_jars(
                *(path.as_uri() for path in connector)
            )  # shipped with the job to a cluster
            t_env = StreamTableEnvironment.create(env)
            try:
                _build_job(env, t_env, self.settings, self.topic, self.group, start, bounded)
                self._client = self._submit(env, f"count words on {self.topic} ({self.group})")
            except Exception as error:
                raise CourseError(f"Flink did not accept the job: {first_cause(error)}") from None
        self._job_status = "RUNNING"
        self._reader = threading.Thread(
            target=self._read_results, name="flink-results", daemon=True
        )
        self._reader.start()
        self._monitor = threading.Thread(target=self._watch, name="flink-counter", daemon=True)
        self._monitor.start()
        return self

    def _submit(self, env, name: str):
        """``env.execute_async`` — plus the savepoint to restore, which pyflink's own call drops."""
        from pyflink.common.job_client import JobClient
        from pyflink.java_gateway import get_gateway

        graph = env._generate_stream_graph(clear_transformations=True, job_name=name)
        if self.savepoint:
            restore = get_gateway().jvm.org.apache.flink.runtime.jobgraph.SavepointRestoreSettings
            graph.setSavepointRestoreSettings(restore.forPath(self.savepoint, False))
        return JobClient(env._j_stream_execution_environment.executeAsync(graph))

    @property
    def job_id(self) -> str | None:
        """The Flink job id (shown in the Flink web UI when running on a cluster)."""
        if self._client is None:
            return None
        with _GATEWAY:
            return str(self._client.get_job_id())

    @property
    def seconds_to_first_count(self) -> float | None:
        """From start() to the first count update read back."""
        if self._first_count_at is None or self.started_at is None:
            return None
        return self._first_count_at - self.started_at

    def _status(self) -> str:
        if self._job_status in TERMINAL or self._client is None:
            return self._job_status
        try:
            with _GATEWAY:
                self._job_status = str(self._client.get_job_status().result()).split(".")[-1]
        except Exception:  # the local mini-cluster is shut down once its job ends
            self._job_status = "FINISHED" if self._job_status != "CANCELED" else "CANCELED"
        return self._job_status

    def _wait_for_result(self, timeout: float) -> None:
        """Wait (polling, so the JVM stays free for others) until the job ends; keep its failure."""
        try:
            with _GATEWAY:
                future = self._client.get_job_execution_result()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with _GATEWAY:
                    if future.done():
                        future.result()  # raises the job's failure, if it failed
                        self._job_status = "FINISHED"
                        return
                time.sleep(0.2)
        except Exception as error:
            if self._job_status != "CANCELED":
                self._error = first_cause(error)
                self._job_status = "FAILED"

    def stop(self, savepoint: bool = False, timeout: float = 120.0) -> Snapshot:
        """Stop the job (taking a savepoint first when asked), read its last results, stop reading.

        With ``savepoint=True`` the path is kept in ``savepoint_path``: give it to a new counter with
        the same group to resume exactly where this one stopped.
        """
        self._stop.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout)
        self._end_job(savepoint, timeout)
        return self.snapshot()

    def _stop_with_savepoint(self) -> str:
        """Flink 2's Java call (pyflink's wrapper still passes the 1.x arguments)."""
        from pyflink.java_gateway import get_gateway

        jvm = get_gateway().jvm
        formats = jvm.org.apache.flink.core.execution.SavepointFormatType
        directory = (self.state_dir / "savepoints").as_uri()
        future = self._client._j_job_client.stopWithSavepoint(False, directory, formats.CANONICAL)
        return str(future.get())

    def _end_job(self, savepoint: bool, timeout: float) -> None:
        if self._client is not None and self._status() not in TERMINAL:
            try:
                with _GATEWAY:
                    if savepoint:
                        self.savepoint_path = self._stop_with_savepoint()
                    else:
                        self._client.cancel().result()
                self._job_status = "CANCELED"
            except Exception as error:  # it finished or failed meanwhile
                if self._status() not in TERMINAL:
                    self._error = f"Could not stop the Flink job: {first_cause(error)}"
        try:
            self._drain_results(timeout)
        except CourseError as error:  # the broker is gone: keep what was read
            self._error = self._error or str(error)
        self._stop_reading.set()
        if self._reader is not None:
            self._reader.join(timeout)
        self._finished.set()

    # --- reading the results topic --------------------------------------------------------------

    def _results_end(self) -> int:
        return topics.latest_offsets(self.results_topic, self.settings).get(0, 0)

    def _drain_results(self, timeout: float) -> None:
        """Wait until every result the job wrote has been read into the snapshot."""
        end = self._results_end()
        deadline = time.monotonic() + timeout
        while self._results_read < end and time.monotonic() < deadline and self._reader_alive():
            time.sleep(0.05)

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def _read_results(self) -> None:
        partition = TopicPartition(self.results_topic, 0)
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            bootstrap_timeout_ms=5000,
        )
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        try:
            while not self._stop_reading.is_set():
                batch = consumer.poll(timeout_ms=200)
                for records in batch.values():
                    self._apply([json.loads(r.value) for r in records])
                self._results_read = consumer.position(partition)
        except Exception as error:  # the broker went away: report it in the snapshot
            self._error = f"results reader: {type(error).__name__}: {error}"
        finally:
            consumer.close()

    def _apply(self, updates: list[dict]) -> None:
        with self._lock:
            for update in updates:
                if "s" in update:  # a window's count
                    self._windows[(update["s"], update["w"])] = (update["e"], update["c"])
                else:  # a running count
                    self._totals[update["w"]] = update["c"]
            if updates and self._first_count_at is None:
                self._first_count_at = time.monotonic()

    # --- bounds and lag ------------------------------------------------------------------------

    def _watch(self) -> None:
        started = idle_since = time.monotonic()
        bound, last_records = self.bound, -1
        try:
            while not self._stop.wait(0.5):
                records = self.snapshot().records
                self._meter.add(records)
                if records != last_records:
                    last_records, idle_since = records, time.monotonic()
                self._lag = topics.group_lag(self.group, self.topic, self.settings)["lag"]
                idle = time.monotonic() - idle_since
                if (
                    bound.until_idle is not None
                    and not self._bounded_source
                    and self._lag == 0
                    and idle >= max(bound.until_idle, CHECKPOINT_MS / 1000)
                ):
                    break
                status = self._status()
                if status in TERMINAL:
                    self._wait_for_result(30)
                    break
                if bound.duration is not None and time.monotonic() - started >= bound.duration:
                    break
                if bound.count is not None and records >= bound.count:
                    break
        except Exception as error:
            self._error = f"{type(error).__name__}: {error}"
        if not self._stop.is_set():
            self._end_job(savepoint=False, timeout=60)

    # --- results -------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Running counts, windows, records, skipped and lag, as read back from the job."""
        with self._lock:
            counts, records, skipped = split_controls(self._totals)
            windows = [
                {"start": _iso(start), "end": _iso(end), "word": word, "count": count}
                for (start, word), (end, count) in sorted(self._windows.items())
            ]
        return self._snapshot(
            counts=counts,
            records=records,
            skipped=skipped,
            windows=windows,
            lag=self._lag,
        )


def _iso(millis: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis / 1000))


__all__ = ["FlinkWordCounter", "Path", "results_topic_for"]
