"""Count words with Apache Flink: a Flink SQL job, tokenized in the JVM, that survives a crash.

The seed's Flink job printed ``(word, count)`` for every word. This one keeps the same running count per
word, at engine speed, as a Flink SQL job (:func:`job_sql` shows it whole):

1. a Kafka table in ``raw`` format, so empty, null and non-UTF-8 values arrive and count as skipped;
2. ``LATERAL TABLE(tokens(value))``: the course's one ``tokenize()`` rule, run in Java (``helpers/jvm``)
   from the ledger's own Unicode table — no record crosses into Python;
3. ``GROUP BY word``: keyed state, one running count per word, updated record at a time and emitted at
   most every ``MINI_BATCH_MS`` (mini-batch aggregation: a word's count shows within a fraction of a
   second, without one message per record);
4. beside it, 5-second tumbling event-time windows, closed by a watermark.

Results go to a *read-back topic* as upserts keyed by word (an absolute count, never a delta), and the
counter reads them back into its snapshot. A checkpoint every ``CHECKPOINT_MS`` holds the counts *and*
the Kafka offsets together; a new counter on the same group resumes from the newest one by itself, so a
``kill -9`` loses nothing: the job replays from the checkpoint's offsets with the checkpoint's counts,
and the replayed upserts overwrite the results with the same values.

With ``results_topic`` the job also writes each closed window's counts there, as increments per word
(:mod:`helpers.consumers.results`), through Flink's ``KafkaSink``: ``at-least-once`` flushes them at
each checkpoint, so a crash after a window was written and before the next checkpoint writes it again;
``exactly-once`` writes them in a Kafka transaction that the checkpoint commits (two-phase commit), so
a ``read_committed`` reader sees each window once, a checkpoint after it was counted. Such a counter
stops with a drained savepoint: every open window closes and is committed, and the next counter on the
group goes on from that savepoint. A window the drain closed early fires again if more of its records come
after the restart: R gets the rest as a second increment (the sums stay right), while the snapshot's
windows, upserts per window, show only the later part.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import sysconfig
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from helpers import class_archive, engine_rest, jars, processes, topics, ui_links
from helpers.config import DISCOVERY_MS, PROJECT_ROOT, Settings
from helpers.consumers.base import (
    BROKER_AWAY_LIMIT,
    Bound,
    Progress,
    Snapshot,
    WordCounter,
    epoch_seconds,
)
from helpers.consumers.results import TRANSACTION_TIMEOUT_MS, check_results_options, crash_now
from helpers.errors import CourseError, first_cause
from helpers.java import LATER_C2, find_java
from helpers.jvm_output import jvm_output_to, log_path
from helpers.jvm_tokens import tokenizer_jar
from helpers.text import RECORD, split_controls, tokens_with_controls
from helpers.wait import wait_until

WINDOW_SECONDS = 5
IDLE_TIMEOUT_SECONDS = 5.0  # a partition silent this long holds the watermark back no more
WATERMARK_SECONDS = 10
CHECKPOINT_MS = 2000
# With a crash point asked for (crash_before_commit) no checkpoint comes before the crash: the results
# written are in no checkpoint, so at-least-once writes them again after the restart.
CRASH_CHECKPOINT_MS = 3_600_000
MINI_BATCH_MS = 20  # how long Flink may hold count updates to emit one per word: latency vs work
BUFFER_TIMEOUT_MS = 10  # how long a network buffer between operators waits to fill (Flink: 100)
TERMINAL = {"FINISHED", "FAILED", "CANCELED"}
PLANNING_ATTEMPTS = 3  # see _planned_again_on_lost_metadata
WEB_UI_PORTS = range(8081, 8181)  # a local job's web UI binds the first free one
# Every call into pyflink's JVM goes through this lock. Flink's table planner keeps per-thread state,
# and Py4J picks a JVM thread per connection: one caller at a time keeps one JVM thread.
_GATEWAY = threading.RLock()


# The course's running count: keyed by word, one count per key, updated as each word arrives. A learner's
# own query (chapter 05's exercise) takes its place through FlinkWordCounter(running_count=...).
RUNNING_COUNT = "SELECT word, COUNT(*) FROM words GROUP BY word"
# The course's windows: 5-second tumbling windows of event time, each emitted once, when the watermark
# passes its end. A learner's own (chapter 05's second exercise) takes its place through
# FlinkWordCounter(windowed_count=...): (word, window_start, window_end, count).
WINDOWED_COUNT = f"""SELECT word, window_start, window_end, COUNT(*)
            FROM TABLE(TUMBLE(TABLE words, DESCRIPTOR(ts), INTERVAL '{WINDOW_SECONDS}' SECOND))
            GROUP BY window_start, window_end, word"""


NEWEST_EVENT = "newest event"  # the read-back row that holds the newest event time the job has seen
WATERMARK_EVERY = (
    1.0  # seconds between two questions to Flink's REST API for the windows' watermark
)


def readback_topic_for(group: str) -> str:
    """Where the job of consumer group ``group`` publishes its counts (kept across restarts)."""
    return f"_course-flink-{group}"


def results_transactions(group: str) -> str:
    """The prefix of the Kafka transactions a group's job writes its results topic in."""
    return f"course-flink-results-{group}"


def job_sql(
    topic: str,
    group: str,
    bootstrap_servers: str,
    start: str = "earliest-offset",
    bounded: bool = False,
    running_count: str = RUNNING_COUNT,
    windowed_count: str = WINDOWED_COUNT,
    results_topic: str | None = None,
    exactly_once: bool = False,
) -> list[str]:
    """The whole Flink job as SQL statements: tables and views (CREATE), then the counts (INSERT).

    ``running_count`` is a query over the view ``words`` (word, ts) giving (word, count);
    ``windowed_count`` one giving (word, window_start, window_end, count). With ``results_topic``
    each closed window's counts go there too, as increments (``exactly_once``: in transactions).
    """
    bounded_option = (
        "'scan.bounded.mode' = 'latest-offset',"
        if bounded  # else: partitions added while the job runs are read from their first record
        else f"'scan.topic-partition-discovery.interval' = '{DISCOVERY_MS} ms',"
    )
    kafka = f"'properties.bootstrap.servers' = '{bootstrap_servers}'"
    iso = "'yyyy-MM-dd''T''HH:mm:ss'"
    windows = f"""SELECT w, DATE_FORMAT(s, {iso}), DATE_FORMAT(e, {iso}), c
            FROM ({windowed_count.strip().rstrip(";")}) AS q(w, s, e, c)
            WHERE SUBSTRING(w FROM 1 FOR 1) <> CHR(0)"""
    statements = [
        f"""CREATE TEMPORARY TABLE records (
            `value` BYTES,
            `ts` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
            WATERMARK FOR `ts` AS `ts` - INTERVAL '{WATERMARK_SECONDS}' SECOND
        ) WITH (
            'connector' = 'kafka', 'topic' = '{topic}', {kafka},
            'properties.group.id' = '{group}',
            'properties.auto.offset.reset' = 'earliest',
            'scan.startup.mode' = '{start}', {bounded_option}
            'format' = 'raw'
        )""",
        # (word, ts): words and control keys (records, skips), as helpers.text.tokens_with_controls
        """CREATE TEMPORARY VIEW words AS
            SELECT t.word, r.ts FROM records AS r, LATERAL TABLE(tokens(r.`value`)) AS t(word)""",
        f"""CREATE TEMPORARY TABLE results (
            w STRING, s STRING, e STRING, c BIGINT, PRIMARY KEY (w, s) NOT ENFORCED
        ) WITH (
            'connector' = 'upsert-kafka', 'topic' = '{readback_topic_for(group)}', {kafka},
            'key.format' = 'json', 'value.format' = 'json'
        )""",
        # the running count per word: the seed's (word, count) stream
        f"INSERT INTO results SELECT w, '', '', c FROM ({running_count.strip().rstrip(';')}) AS q(w, c)",
        # the windows, without the control rows (they count records, not words)
        f"INSERT INTO results {windows}",
        # the newest event time seen: beside the watermark, how far behind the windows are
        f"""INSERT INTO results SELECT '{NEWEST_EVENT}',
            DATE_FORMAT(MAX(ts), 'yyyy-MM-dd''T''HH:mm:ss.SSS'), '', CAST(0 AS BIGINT) FROM words""",
    ]
    if (
        results_topic
    ):  # each window's counts once it closes: increments, {"count": n, "window": start}
        guarantee = "exactly-once" if exactly_once else "at-least-once"
        statements += [
            f"""CREATE TEMPORARY TABLE increments (word STRING, `count` BIGINT, `window` STRING)
            WITH (
                'connector' = 'kafka', 'topic' = '{results_topic}', {kafka},
                'key.format' = 'raw', 'key.fields' = 'word',
                'value.format' = 'json', 'value.fields-include' = 'EXCEPT_KEY',
                'sink.delivery-guarantee' = '{guarantee}',
                'sink.transactional-id-prefix' = '{results_transactions(group)}',
                'properties.transaction.timeout.ms' = '{TRANSACTION_TIMEOUT_MS}'
            )""",
            f"INSERT INTO increments SELECT w, c, s FROM ({windows}) AS q(w, s, e, c)",
        ]
    return statements


def plan_graph(plan: str) -> str:
    """The execution plan in Flink's explanation as a mermaid flowchart.

    Its boxes are operators; its arrows say how records travel between them (FORWARD: to the same
    parallel instance; HASH: by key, so that all records of one word meet).
    """
    start = plan.find("{", plan.find("== Physical Execution Plan =="))
    if start < 0:
        raise CourseError("Flink's explanation holds no execution plan.")
    graph, _ = json.JSONDecoder().raw_decode(plan[start:])
    lines = ["flowchart LR"]
    for node in graph["nodes"]:
        name = re.sub(r"\[\d+\]", "", node["type"]).replace('"', "'").strip()
        lines.append(f'    n{node["id"]}["{name} ×{node["parallelism"]}"]')
        for before in node.get("predecessors", []):
            lines.append(f"    n{before['id']} -->|{before['ship_strategy']}| n{node['id']}")
    return "\n".join(lines)


def latest_checkpoint(state_dir: Path) -> Path | None:
    """The newest completed checkpoint or savepoint under a group's state folder, if any.

    A savepoint counts too: a counter writing results stops with a drained one, whose windows (and
    committed results) no checkpoint before it holds.
    """
    done = list((state_dir / "checkpoints").glob("*/chk-*/_metadata"))
    done += (state_dir / "savepoints").glob("*/_metadata")
    return max(done, key=lambda path: path.stat().st_mtime).parent if done else None


def _prepare_python_path() -> None:
    """Let Flink's embedded Python (the fallback tokenizer) import this venv's packages and helpers."""
    extra = [sysconfig.get_paths()["purelib"], str(PROJECT_ROOT)]
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(extra + current))


def _prepare_gateway_classpath(extra: list[Path]) -> None:
    """Put the connector and tokenizer jars on the classpath of the JVM that pyflink launches.

    pyflink appends HADOOP_CLASSPATH to it, so every thread's class loader finds the Kafka table
    factories (``pipeline.jars`` alone reaches only the job's own class loader).
    """
    current = [p for p in os.environ.get("HADOOP_CLASSPATH", "").split(os.pathsep) if p]
    os.environ["HADOOP_CLASSPATH"] = os.pathsep.join(
        dict.fromkeys([str(path) for path in extra] + current)
    )


def prepare_jvm(settings: Settings) -> tuple[list[Path], Path | None]:
    """Set up the environment of the JVM pyflink starts; the pipeline's jars and the tokenizer jar.

    The connector and the tokenizer go on the JVM's classpath, its heap is sized for a small
    machine, and it maps the course's class archive (:mod:`helpers.class_archive`) when there is one.
    Done before the first ``TableEnvironment`` of a process: the JVM reads it once, at its start.
    """
    os.environ.setdefault("JAVA_HOME", str(find_java().home))
    _prepare_python_path()
    connector = jars.classpath(settings, "flink")  # one-line error when missing
    tokenizer = tokenizer_jar(settings)
    pipeline_jars = [*connector, *([tokenizer] if tokenizer else [])]
    _prepare_gateway_classpath(pipeline_jars)
    # pyflink starts a Beam "loopback" Python worker server (~2 s) unless told the worker mode;
    # thread mode runs Python functions inside the JVM and needs no such server
    os.environ.setdefault("_python_worker_execution_mode", "process")
    os.environ.setdefault(  # the heap of the JVM pyflink starts (mini-cluster included)
        "JVM_ARGS",
        f"-Xmx{settings.flink_heap} -XX:+UseSerialGC -XX:ReservedCodeCacheSize=64m {LATER_C2} "
        f"-XX:ErrorFile={settings.logs_dir / 'hs_err_flink_%p.log'} "  # not in the notebooks' folder
        + class_archive.java_options("flink", settings),
    )
    return pipeline_jars, tokenizer


def _planned_again_on_lost_metadata(plan: Callable[[], None]) -> None:
    """Run ``plan``, again (up to ``PLANNING_ATTEMPTS`` times) if Calcite lost its metadata provider.

    Flink's planner keeps Calcite's metadata provider in a thread-local (FLINK-23020); when Py4J
    happens to run one planning call on another JVM thread, planning fails with a
    NullPointerException naming ``metadataHandlerProvider``. Nothing was submitted then, so the
    plan is simply made again, in a fresh table environment.
    """
    for attempt in range(PLANNING_ATTEMPTS):
        try:
            plan()
            return
        except CourseError as error:
            if "metadataHandlerProvider" not in str(error) or attempt + 1 == PLANNING_ATTEMPTS:
                raise


def _python_tokens():
    """The fallback when no JDK compiler built the Java tokenizer: ``tokenize()`` in a Python UDTF."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import udtf

    @udtf(result_types=[DataTypes.STRING()])
    def tokens(value):
        yield from tokens_with_controls(value)

    return tokens


class FlinkWordCounter(WordCounter):
    """Running counts and 5-second windowed counts with a Flink SQL job on a local mini-cluster.

    A counter on a group whose earlier job stopped or died resumes from that group's newest checkpoint
    (unless ``from_beginning``). Give ``savepoint`` (a path from ``stop(savepoint=True)``) to resume
    from a savepoint instead. Set FLINK_REST_ADDRESS (host:port) to submit to a running Flink cluster:
    there a job outlives its client, so a new counter on the group first stops the old job with a
    savepoint and goes on from it. ``rescale(n)`` moves a running job to ``n`` instances, exactly.
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
        running_count: str = RUNNING_COUNT,
        parallelism: int | None = None,
        windowed_count: str = WINDOWED_COUNT,
        results_topic: str | None = None,
        exactly_once: bool = False,
        crash_before_commit: int | None = None,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(topic, group, from_beginning, bound, settings)
        check_results_options(results_topic, exactly_once)
        # a partition silent this long stops holding the watermark back (0: it holds it for ever)
        self.idle_timeout = idle_timeout
        if crash_before_commit not in (None, 1):
            raise CourseError(
                "Flink commits its results at checkpoints: crash_before_commit=1 "
                "(--crash-before-commit 1) crashes before the first one; no other point is built."
            )
        # Each closed window's counts written to this topic as increments (see the module's text).
        self.results_topic = results_topic
        self.exactly_once = exactly_once
        # A lesson's crash point: SIGKILL this process and Flink's JVM once results are written and no
        # checkpoint has committed them (there is none: see CRASH_CHECKPOINT_MS).
        self.crash_before_commit = crash_before_commit
        self.running_count = running_count  # SQL over `words` (word, ts) giving (word, count)
        self.windowed_count = windowed_count  # ... giving (word, window_start, window_end, count)
        self.savepoint = savepoint
        # instances of each operator: 1 on the local mini-cluster, the cluster's default on a session one
        self.parallelism = parallelism
        self._switching = threading.Lock()  # held while rescale() swaps one job for the next
        self.state_dir = self.settings.data_dir / "checkpoints" / f"flink-{self.group}"
        self.readback_topic = readback_topic_for(self.group)
        self.savepoint_path: str | None = None
        self.restored_from: str | None = None  # the checkpoint or savepoint this job started from
        self.tokenizer = "java"  # or "python" when no JDK compiler was found
        self._totals: dict[str, int] = {}
        self._windows: dict[tuple[str, str], tuple[str, int]] = {}
        self._client = None
        self._reader: threading.Thread | None = None
        self._stop_reading = threading.Event()
        self._lag: int | None = None
        self._job_status = "CREATED"
        self._results_read = 0
        self._results_from: int | None = (
            0  # where the reader starts; None: at the end (a new count)
        )
        self._bounded_source = False
        self._web_ui: str | None = None
        self._jars: tuple[list[Path], Path | None] = ([], None)  # connector and tokenizer jars
        self._plan_text: str | None = None  # Flink's explanation of the job, made when first asked
        self._newest_event: float | None = None  # the newest event time the job has seen
        self._watermark: float | None = None  # the windows' input watermark, from the REST API
        self._watermark_asked = 0.0
        self._rest: str | None = None  # host:port of the REST API that knows this job

    # --- the job -------------------------------------------------------------------------------

    def configuration(self, pipeline_jars: list[Path]):
        """Flink's settings for this counter's job: checkpoints, mini-batches, where it runs."""
        from pyflink.common import Configuration

        conf = Configuration()
        for key, value in {
            "pipeline.name": self.job_name,  # how a cluster's REST API and web UI list it
            "pipeline.object-reuse": "true",  # operators pass records on without copying them
            "pipeline.jars": ";".join(path.as_uri() for path in pipeline_jars),
            "python.execution-mode": "thread",  # the Python fallback: ~3x process mode
            "python.executable": sys.executable,
            "python.client.executable": sys.executable,
            "execution.checkpointing.interval": f"{CHECKPOINT_MS} ms",
            "execution.checkpointing.dir": (self.state_dir / "checkpoints").as_uri(),
            "execution.checkpointing.savepoint-dir": (self.state_dir / "savepoints").as_uri(),
            # kept when the job is cancelled too, so the next counter on this group resumes from it
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            "execution.buffer-timeout.interval": f"{BUFFER_TIMEOUT_MS} ms",
            "table.exec.mini-batch.enabled": "true",
            "table.exec.mini-batch.allow-latency": f"{MINI_BATCH_MS} ms",
            "table.exec.mini-batch.size": "5000",
            "table.exec.sink.upsert-materialize": "NONE",  # counts are absolute: last write wins
            # a partition silent this long holds back no window
            "table.exec.source.idle-timeout": f"{self.idle_timeout * 1000:.0f} ms",
            "table.local-time-zone": "UTC",
        }.items():
            conf.set_string(key, value)
        if self.results_topic:
            # An idle source's end of time never reaches the windows (FLINK-40499): the drained stop
            # would leave windows open. Without idleness an idle partition holds windows back till then.
            conf.set_string("table.exec.source.idle-timeout", "0 ms")
        if self.crash_before_commit:
            # No checkpoint may come before the crash (see CRASH_CHECKPOINT_MS), nor the one a bounded
            # source's end makes at once: it would commit every result, and the restart, with nothing
            # left to read, waited for lag 0 forever.
            conf.set_string("execution.checkpointing.interval", f"{CRASH_CHECKPOINT_MS} ms")
            conf.set_string("execution.checkpointing.checkpoints-after-tasks-finish", "false")
        if self.restored_from:
            conf.set_string("execution.state-recovery.path", self.restored_from)
        remote = self.settings.flink_rest_address
        if remote:
            host, _, port = remote.rpartition(":")
            conf.set_string("execution.target", "remote")
            conf.set_string("rest.address", host)
            conf.set_string("rest.port", port)
        else:  # the local mini-cluster serves Flink's REST API and web UI too, on the first free port
            conf.set_string("parallelism.default", "1")  # a session cluster sets its own default
            conf.set_string("rest.bind-address", self.settings.bind_address)
            # the blob server and the task managers' data port bind every address otherwise
            conf.set_string("jobmanager.bind-host", self.settings.bind_address)
            conf.set_string("taskmanager.bind-host", self.settings.bind_address)
            conf.set_string("taskmanager.host", "127.0.0.1")
            conf.set_string("rest.bind-port", f"{WEB_UI_PORTS[0]}-{WEB_UI_PORTS[-1]}")
            # the REST API's metrics (the watermark the live view shows) are this fresh (Flink: 10 s)
            conf.set_string("metrics.fetcher.update-interval", f"{WATERMARK_EVERY * 1000:.0f} ms")
        if self.parallelism:
            conf.set_string("parallelism.default", str(self.parallelism))
        return conf

    def leftovers(self) -> list:
        """The group's checkpoints and savepoints, and its read-back topic."""
        return [self.state_dir, self.readback_topic]

    @property
    def job_name(self) -> str:
        """The job's name on a Flink cluster: one per consumer group."""
        return f"course-flink-{self.group}"

    @property
    def web_ui_url(self) -> str | None:
        """Flink's web UI showing this job while it runs (found by asking each port of the range)."""

        def found() -> bool:
            if self.job_id is None or self._job_status != "RUNNING":
                return True  # no running job: nothing to find
            self._web_ui = self._answering_web_ui()
            return self._web_ui is not None

        if self._web_ui is None:  # a job just submitted may not answer at once
            wait_until(found, 5.0, "", every=0.5, on_timeout="return")
        return self._web_ui

    def _answering_web_ui(self) -> str | None:
        """The link to this job's page on the first of Flink's UI ports that knows it."""
        remote = self.settings.flink_rest_address
        candidates = [remote] if remote else [f"localhost:{p}" for p in WEB_UI_PORTS]
        for address in candidates:
            try:
                with urllib.request.urlopen(
                    f"http://{address}/jobs/{self.job_id}", timeout=0.5
                ) as answer:
                    if answer.status == 200:
                        self._rest = address
                        return ui_links.browser_link(
                            f"http://{address}/#/job/running/{self.job_id}/overview"
                        )
            except OSError:
                continue
        return None

    def _take_over_orphans(self) -> str | None:
        """Stop this group's jobs that still run on the cluster (their client died); a savepoint of one.

        On a session cluster a job outlives the process that submitted it; two jobs on one group would
        both write its results. The old one stops with a savepoint, so the new one continues exactly.
        """
        remote = self.settings.flink_rest_address
        if not remote:
            return None
        savepoint = None
        for job_id in engine_rest.flink_jobs_named(remote, self.job_name):
            if self.from_beginning or savepoint:
                engine_rest.flink_cancel(remote, job_id)
            else:
                directory = (self.state_dir / "savepoints").as_uri()
                savepoint = engine_rest.flink_stop_with_savepoint(remote, job_id, directory)
        return savepoint

    def _restore_point(self) -> str | None:
        """The savepoint given, else the newest checkpoint of this group (unless from the beginning).

        On a cluster, a job of this group left running by a client that died is stopped first, and
        its savepoint is where this one starts.
        """
        orphan = self._take_over_orphans()
        if self.savepoint:
            return self.savepoint
        if self.from_beginning:
            return None
        if orphan:
            return orphan
        checkpoint = latest_checkpoint(self.state_dir)
        return checkpoint.as_uri() if checkpoint else None

    def _open(self) -> None:
        """Submit the job without blocking, and start reading its results."""
        topics.describe_topic(self.topic, self.settings)  # broker reachable, topic exists
        topics.create_topic(self.readback_topic, settings=self.settings)  # kept for a restart
        if self.results_topic:
            topics.create_topic(self.results_topic, settings=self.settings)
        pipeline_jars, tokenizer = prepare_jvm(self.settings)
        self.tokenizer = "java" if tokenizer else "python"
        self.restored_from = self._restore_point()
        # results of an earlier job on this group count only when this one continues its state
        self._results_from = 0 if self.restored_from or not self.from_beginning else None
        # A bounded source stops at the offsets that are latest now; a restored job keeps its restored
        # (unbounded) reader, so it ends on lag 0 and idleness instead.
        self._bounded_source = self.bound.until_idle is not None and not self.restored_from
        self._submit(pipeline_jars, tokenizer)
        self._reader = threading.Thread(
            target=self._read_results, name="flink-results", daemon=True
        )
        self._reader.start()
        if self.crash_before_commit:
            threading.Thread(target=self._crash_once_written, name="crash", daemon=True).start()

    def _submit(self, pipeline_jars: list[Path], tokenizer: Path | None) -> None:
        """Plan the job and hand it to Flink (the local mini-cluster or FLINK_REST_ADDRESS's)."""
        self._jars = (pipeline_jars, tokenizer)  # kept for rescale()
        _planned_again_on_lost_metadata(lambda: self._plan_and_execute(pipeline_jars, tokenizer))
        self._job_status = "RUNNING"
        self._web_ui = None  # a new job: a new page
        self._rest = None  # maybe on another port (rescale): found again, with its watermark
        self._watermark = None
        self._plan_text = None  # and a new plan, explained when asked

    def _plan(self, pipeline_jars: list[Path], tokenizer: Path | None, explain: bool = False):
        """The job as a statement set in a fresh table environment; explained too when asked.

        Call with ``_GATEWAY`` held and Flink's console sent to its log. Explaining plans the job a
        second time (0.6 s warm, 3 s in a new JVM), so a job is explained only when ``plan`` is read.
        """
        start = "group-offsets" if not self.from_beginning else "earliest-offset"
        from pyflink.table import EnvironmentSettings, ExplainDetail, TableEnvironment

        env_settings = (
            EnvironmentSettings.new_instance()
            .in_streaming_mode()
            .with_configuration(self.configuration(pipeline_jars))
            .build()
        )
        t_env = TableEnvironment.create(env_settings)
        if tokenizer:
            t_env.execute_sql(
                "CREATE TEMPORARY FUNCTION tokens AS 'course.FlinkTokens' LANGUAGE JAVA"
            )
        else:
            t_env.create_temporary_function("tokens", _python_tokens())
        statements = job_sql(
            self.topic, self.group, self.settings.bootstrap_servers, start,
            self._bounded_source, self.running_count, self.windowed_count,
            self.results_topic, self.exactly_once,
        )  # fmt: skip
        job = t_env.create_statement_set()
        for statement in statements:
            if statement.startswith("INSERT"):
                job.add_insert_sql(statement)
            else:
                t_env.execute_sql(statement)
        if explain:
            self._plan_text = job.explain(ExplainDetail.JSON_EXECUTION_PLAN)
        return job

    def _plan_and_execute(self, pipeline_jars: list[Path], tokenizer: Path | None) -> None:
        with _GATEWAY, jvm_output_to(log_path(self.settings, "flink")):  # Flink's console: a file
            try:
                self._client = self._plan(pipeline_jars, tokenizer).execute().get_job_client()
            except Exception as error:
                raise CourseError(f"Flink did not accept the job: {first_cause(error)}") from None

    def explain_only(self) -> str:
        """Plan the job without running it (no broker needed): starts and warms Flink's JVM."""
        pipeline_jars, tokenizer = prepare_jvm(self.settings)

        def explain() -> None:
            with _GATEWAY, jvm_output_to(log_path(self.settings, "flink")):
                try:
                    self._plan(pipeline_jars, tokenizer, explain=True)
                except Exception as error:
                    raise CourseError(
                        f"Flink could not plan the job: {first_cause(error)}"
                    ) from None

        _planned_again_on_lost_metadata(explain)
        return self._plan_text

    def rehearse(self, rows: int = 20_000) -> None:
        """Plan this counter's job, then run a small bounded job through the same kind of operators.

        A datagen source of ``rows`` records instead of Kafka, a blackhole instead of the results
        topic: no broker needed. It loads what a first job loads (planner, mini-cluster, the
        tokenizer, keyed state), so the first real counter of this process starts warm.
        """
        self.explain_only()
        pipeline_jars, tokenizer = prepare_jvm(self.settings)
        from pyflink.table import EnvironmentSettings, TableEnvironment

        words = "SELECT CAST(`value` AS STRING) AS word FROM records"
        if tokenizer:
            words = "SELECT t.word FROM records AS r, LATERAL TABLE(tokens(r.`value`)) AS t(word)"
        with _GATEWAY, jvm_output_to(log_path(self.settings, "flink")):
            t_env = TableEnvironment.create(
                EnvironmentSettings.new_instance()
                .in_streaming_mode()
                .with_configuration(self.configuration(pipeline_jars))
                .build()
            )
            if tokenizer:
                t_env.execute_sql(
                    "CREATE TEMPORARY FUNCTION tokens AS 'course.FlinkTokens' LANGUAGE JAVA"
                )
            t_env.execute_sql(
                f"""CREATE TEMPORARY TABLE records (`value` BYTES) WITH ('connector' = 'datagen',
                    'number-of-rows' = '{rows}', 'fields.value.length' = '8')"""
            )
            t_env.execute_sql(
                "CREATE TEMPORARY TABLE counts (w STRING, c BIGINT) WITH ('connector' = 'blackhole')"
            )
            result = t_env.execute_sql(
                f"INSERT INTO counts SELECT word, COUNT(*) FROM ({words}) GROUP BY word"
            )
        result.wait()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    @property
    def plan(self) -> str:
        """Flink's explanation of the job (its JSON execution plan last), as planned for this counter.

        Its parallelism is the job's: after ``rescale(n)``, the plan shows ``n`` instances.
        """
        if self._plan_text is None:
            self.explain_only()
        return self._plan_text

    def rescale(self, parallelism: int) -> str:
        """Stop the running job with a savepoint and start it again from there, ``parallelism`` wide.

        Flink hands each word's count (keyed state, in key groups) and the Kafka offsets to the new
        instances, so the counts go on exactly; the results keep flowing into the same snapshot.
        Returns the savepoint's path.
        """
        if parallelism < 1:
            raise CourseError(f"Parallelism must be 1 or more, not {parallelism}.")
        if not self.running or self._client is None or self._status() in TERMINAL:
            raise CourseError("The Flink job is not running; start the counter first.")
        with self._switching:  # the watch loop waits: the old job's end is not the counter's end
            try:
                with _GATEWAY:
                    savepoint = self._stop_with_savepoint()
            except Exception as error:
                raise CourseError(f"Flink took no savepoint: {first_cause(error)}") from None
            self.savepoint_path = self.restored_from = savepoint
            self.parallelism = parallelism
            self._bounded_source = False
            self._submit(*self._jars)
        return savepoint

    @property
    def job_id(self) -> str | None:
        """The Flink job id (shown in the Flink web UI when running on a cluster)."""
        if self._client is None:
            return None
        with _GATEWAY:
            return str(self._client.get_job_id())

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

            def done() -> bool:
                with _GATEWAY:
                    return future.done()

            if wait_until(done, timeout, "", on_timeout="return"):
                with _GATEWAY:
                    future.result()  # raises the job's failure, if it failed
                self._job_status = "FINISHED"
        except Exception as error:
            if self._job_status != "CANCELED":
                self._error = first_cause(error)
                self._job_status = "FAILED"

    def stop(self, timeout: float = 120.0, savepoint: bool = False) -> Snapshot:
        """Stop the job (taking a savepoint first when asked), read its last results, stop reading.

        With ``savepoint=True`` the path is kept in ``savepoint_path``: give it to a new counter with
        the same group to resume exactly where this one stopped.
        """
        return super().stop(timeout, savepoint=savepoint)

    def _stop_with_savepoint(self, drain: bool = False, timeout: float = 120.0) -> str:
        """Flink 2's Java call (pyflink's wrapper still passes the 1.x arguments).

        ``drain`` first ends the event time: every open window closes and its results are written.
        Raises if no savepoint completed within ``timeout`` seconds (e.g. its sink cannot commit).
        """
        from pyflink.java_gateway import get_gateway

        jvm = get_gateway().jvm
        formats = jvm.org.apache.flink.core.execution.SavepointFormatType
        directory = (self.state_dir / "savepoints").as_uri()
        future = self._client._j_job_client.stopWithSavepoint(drain, directory, formats.CANONICAL)  # noqa: SLF001 — pyflink's JobClient wraps the Java one
        return str(future.get(int(timeout), jvm.java.util.concurrent.TimeUnit.SECONDS))

    def _cancel_quietly(self) -> None:
        """Cancel the job after a stop that failed: nothing of it keeps running."""
        try:
            with _GATEWAY:
                self._client.cancel().result()
            self._job_status = "CANCELED"
        except Exception:  # it ended meanwhile
            pass

    def _close(self, stopped: bool, savepoint: bool = False, timeout: float = 120.0) -> None:
        if self._client is not None and self._status() not in TERMINAL:
            try:
                with _GATEWAY:
                    if savepoint or self.results_topic:  # results: every window closed, committed
                        self.savepoint_path = self._stop_with_savepoint(
                            drain=bool(self.results_topic), timeout=timeout
                        )
                    else:
                        self._client.cancel().result()
                self._job_status = "CANCELED"
            except Exception as error:  # it finished or failed meanwhile, or took no savepoint
                if self._status() not in TERMINAL:
                    self._error = f"Could not stop the Flink job: {first_cause(error)}"
                    self._cancel_quietly()
        try:
            self._drain_results(timeout)
            self._final_lag()
        except CourseError as error:  # the broker is gone: keep what was read
            self._error = self._error or str(error)
        self._stop_reading.set()
        if self._reader is not None:
            self._reader.join(timeout)

    # --- reading the read-back topic ------------------------------------------------------------

    def _results_end(self) -> int:
        return topics.latest_offsets(self.readback_topic, self.settings).get(0, 0)

    def _drain_results(self, timeout: float) -> None:
        """Wait until every result the job wrote has been read into the snapshot."""
        end = self._results_end()
        wait_until(lambda: self._results_read >= end or not self._reader_alive(), timeout, "",
                   every=0.05, on_timeout="return")  # fmt: skip

    def _final_lag(self) -> None:
        """The lag once every result is read: records on the topic that the counts do not cover.

        While the job runs, lag comes from the offsets Flink commits at each checkpoint, up to two
        seconds behind; at the end the counts themselves say how far the job got.
        """
        on_topic = topics.describe_topic(self.topic, self.settings)["messages"]
        with self._lock:
            counted = self._totals.get(RECORD, 0)
            self._lag = max(on_topic - counted, 0)

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def _read_results(self) -> None:
        partition = TopicPartition(self.readback_topic, 0)
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            enable_auto_commit=False,
            bootstrap_timeout_ms=5000,
        )
        consumer.assign([partition])
        if self._results_from is None:
            consumer.seek_to_end(partition)
        else:
            consumer.seek(partition, self._results_from)
        away_since: float | None = None
        try:
            while not self._stop_reading.is_set():
                try:
                    batch = consumer.poll(timeout_ms=100)
                    for records in batch.values():
                        self._apply([json.loads(r.value) for r in records if r.value is not None])
                    self._results_read = consumer.position(partition)
                    away_since = None
                except KafkaError as error:  # the broker went away: wait for it, up to a limit
                    away_since = away_since or time.monotonic()
                    if not error.retriable or time.monotonic() - away_since > BROKER_AWAY_LIMIT:
                        raise
                    time.sleep(0.5)
        except Exception as error:  # gone for good: report it in the snapshot
            self._error = f"results reader: {type(error).__name__}: {error}"
        finally:
            consumer.close()

    def _crash_once_written(self) -> None:
        """The crash point: once the results topic holds records, SIGKILL Flink's JVM and this process."""

        def written() -> bool:
            return sum(topics.latest_offsets(self.results_topic, self.settings).values()) > 0

        retry = (
            KafkaError,
            CourseError,
            OSError,
        )  # the broker busy or away for a moment: ask again
        if wait_until(written, 600, "", every=0.1, retry=retry, on_timeout="return"):
            for pid in processes.process_tree(os.getpid()) - {os.getpid()}:
                os.kill(pid, signal.SIGKILL)
            crash_now()

    def _apply(self, updates: list[dict]) -> None:
        with self._lock:
            for update in updates:  # {"w": word, "s": window start or "", "e": end, "c": count}
                if update["w"] == NEWEST_EVENT:
                    self._newest_event = epoch_seconds(update["s"])
                elif update["s"]:
                    self._windows[(update["s"], update["w"])] = (update["e"], update["c"])
                else:
                    self._totals[update["w"]] = update["c"]
            if updates:
                self._counted()

    # --- bounds and lag ------------------------------------------------------------------------

    def _progress(self) -> Progress:
        """Records, and lag from the offsets Flink commits at each checkpoint.

        A bounded source ends the job by itself; an unbounded (restored) one is caught up once the
        committed offsets reach the end, which a completed checkpoint covering every record implies.
        """
        records = self.snapshot().records
        self._lag = topics.group_lag(self.group, self.topic, self.settings)["lag"]
        with self._switching:  # during rescale() the old job has ended and the new one not begun
            status = self._status()
        if status in TERMINAL:
            self._wait_for_result(30)
            return Progress(records, ended=True)
        self._update_watermark()
        return Progress(records, caught_up=self._lag == 0 and not self._bounded_source)

    def _update_watermark(self) -> None:
        """The watermark reaching the windows, from Flink's REST API (once a second at most)."""
        if time.monotonic() - self._watermark_asked < WATERMARK_EVERY:
            return
        self._watermark_asked = time.monotonic()
        job_id = self.job_id
        if job_id is None or (self._rest is None and self._answering_web_ui() is None):
            return
        watermark = engine_rest.flink_input_watermark(self._rest, job_id, "WindowAggregate")
        if watermark is not None:
            self._watermark = watermark

    # --- results -------------------------------------------------------------------------------

    def records_shown(self) -> int:
        """Records in the totals shown so far (the control key that counts them)."""
        with self._lock:
            return self._totals.get(RECORD, 0)

    def snapshot(self) -> Snapshot:
        """Running counts, windows, records, skipped and lag, as read back from the job."""
        with self._lock:
            counts, records, skipped = split_controls(self._totals)
            windows = [
                {"start": start, "end": end, "word": word, "count": count}
                for (start, word), (end, count) in sorted(self._windows.items())
            ]
        return self._snapshot(
            counts=counts,
            records=records,
            skipped=skipped,
            windows=windows,
            lag=self._lag,
            newest_event=self._newest_event,
            watermark=self._watermark,
        )


__all__ = ["FlinkWordCounter", "job_sql", "latest_checkpoint", "readback_topic_for"]
