"""Spark's real-time mode beside its micro-batches: one stateless query, two triggers, timed from topics.

Real-time mode (Spark 4.1 and later) runs long batches whose tasks pass each record on as it arrives,
instead of one small job per trigger. In Spark 4.2 it takes stateless queries only — projections,
filters, ``explode``, unions; the Kafka, foreach and console sinks — so it cannot keep a running count
yet (aggregations arrive in Spark 4.3). Chapter 04 therefore times a query it can run: split each line
into words and write every word to a topic, with the time its line was sent. Reading that topic back
gives each word's latency (the output record's timestamp minus its line's) and the words themselves,
to check against the producer's ledger.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field

from kafka import KafkaConsumer

from helpers.config import Settings
from helpers.errors import CourseError, first_cause
from helpers.jvm_tokens import tokenizer_jar
from helpers.wait import batches_until_idle


def session(settings: Settings):
    """The process's Spark session, with ``course_tokens`` (the course's tokenizer, in Java) registered.

    Real-time mode runs no Python UDF (each would be a batch of its own): the Java tokenizer it needs.
    """
    from pyspark.sql import types as T  # noqa: N812 (Spark's own convention)

    from helpers.consumers.spark import spark_session

    jar = tokenizer_jar(settings)
    if jar is None:
        raise CourseError(
            "Real-time mode needs the course's Java tokenizer, and it could not be built: install a "
            "JDK with javac (make setup says how), then run this cell again."
        )
    spark = spark_session(settings)
    spark.udf.registerJavaFunction(
        "course_tokens", "course.SparkTokens", T.ArrayType(T.StringType())
    )
    return spark


@dataclass
class Timed:
    """What one query wrote: words per word, and for each word when its line was sent and its latency."""

    counts: Counter = field(default_factory=Counter)
    sent_ms: list[int] = field(default_factory=list)
    latencies_ms: list[int] = field(default_factory=list)

    @property
    def words(self) -> int:
        """Words written, all told."""
        return sum(self.counts.values())

    @property
    def first_written_ms(self) -> int | None:
        """When the query wrote its first word: its start-up is over."""
        if not self.sent_ms:
            return None
        return min(sent + late for sent, late in zip(self.sent_ms, self.latencies_ms, strict=True))

    def percentiles(self, since_ms: int = 0) -> dict[str, float]:
        """p50 and p99 (ms) of the words sent since ``since_ms`` (all, if fewer than two were)."""
        pairs = zip(self.sent_ms, self.latencies_ms, strict=True)
        late = [ms for sent, ms in pairs if sent >= since_ms] or self.latencies_ms
        if len(late) < 2:
            return {}
        cuts = statistics.quantiles(late, n=100, method="inclusive")
        return {"p50": round(cuts[49], 1), "p99": round(cuts[98], 1)}


def read_words(topic: str, settings: Settings, expected: int, timeout: float = 60.0) -> Timed:
    """Read ``topic`` from its start until ``expected`` words arrived (or ``timeout`` s passed).

    Each record: key the word, value the milliseconds its line was sent; the broker's timestamp of
    the record is when Spark wrote it.
    """
    timed = Timed()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    try:
        for batch in batches_until_idle(consumer, idle=timeout, limit=timeout, poll_ms=200):
            for records in batch.values():
                for record in records:
                    sent = int(record.value)
                    timed.counts[record.key.decode()] += 1
                    timed.sent_ms.append(sent)
                    timed.latencies_ms.append(record.timestamp - sent)
            if timed.words >= expected:
                break
    finally:
        consumer.close()
    return timed


def compare(runs: dict[str, Timed]) -> list[dict]:
    """One row per trigger: words written, p50 and p99 latency in the steady state — for a DataFrame.

    Steady: words sent once every query had written its first one (a query's start is not latency).
    """
    firsts = [run.first_written_ms for run in runs.values() if run.first_written_ms is not None]
    since = max(firsts, default=0)
    return [
        {"trigger": name, "words": run.words, **run.percentiles(since)}
        for name, run in runs.items()
    ]


def refusal(error: BaseException) -> str:
    """Spark's refusal of a query in real-time mode, in one line: the operators it cannot run yet."""
    found = re.search(r"operator\(s\): (.+?) are not in the operator allowlist", str(error))
    if found is None:
        return first_cause(error)
    operators = [name.strip().rsplit(".", 1)[-1] for name in found.group(1).split(",")]
    return f"real-time mode cannot run {', '.join(operators)} (not in its allowlist yet)"
