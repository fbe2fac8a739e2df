"""Chapter 04's second exercise, graded by a restart: the learner's whole Spark job, from Kafka to a table.

The learner writes ``start_count(spark, bootstrap_servers, topic, checkpoint)``: ``readStream`` from
Kafka, a running count per word, ``writeStream`` into an in-memory table ``word_counts`` with an output
mode, a trigger and a checkpoint; it returns the running query. The grader runs it on a practice topic
until everything is counted, stops it, and while it is down sends more words *and* deletes every record
the job had read (as retention would). Started again with the same checkpoint, the job's table must
hold every word ever sent: the totals can only come back from the checkpoint, never from Kafka.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable

from helpers import topics
from helpers.config import Settings, load
from helpers.errors import first_cause
from helpers.exercises.graders import Verdict, _first_difference, _practice_topic

TABLE = "word_counts"  # the memory sink's query name: the table the learner's job keeps up to date


def _start(answer: Callable, spark, settings: Settings, topic: str, checkpoint: str):
    """The learner's running query, or why there is none (a string)."""
    from pyspark.errors import AnalysisException

    try:
        query = answer(spark, settings.bootstrap_servers, topic, checkpoint)
    except AnalysisException as error:
        if "recovering from checkpoint" not in str(error):
            raise  # the learner's own mistake: check() names its line
        return (
            "Spark refused to start your query again from its checkpoint: a memory sink can be "
            "rebuilt only in complete mode, where every batch hands over the whole table."
        )
    if not hasattr(query, "processAllAvailable"):
        return (
            f"start_count must return the running query (what `.start()` returns), not {query!r}."
        )
    return query


def _drain(query) -> str | None:
    """Let the query count every record there is now; None, or why it could not."""
    try:
        if query.isActive:
            query.processAllAvailable()  # every record there is now, counted and in the sink
        else:
            query.awaitTermination()  # a trigger that ends by itself (availableNow)
    except Exception as error:  # the query failed in Spark: its first cause, in one line
        return f"your query failed in Spark: {first_cause(error)}"
    return None


def _table(spark) -> tuple[dict[str, int], Counter] | None:
    """The learner's table: {word: count}, and how many rows each word has; None if there is none."""
    if not spark.catalog.tableExists(TABLE):
        return None
    rows = spark.table(TABLE).collect()
    if rows and not {"word", "count"} <= set(rows[0].asDict()):
        return {}, Counter()
    rows_per_word = Counter(row["word"] for row in rows)
    return {row["word"]: int(row["count"]) for row in rows}, rows_per_word


def _judge(spark, expected: dict[str, int], moment: str) -> str | None:
    """What is wrong with the table after ``moment``, in one sentence; None if it equals ``expected``."""
    found = _table(spark)
    if found is None:
        return (
            f"{moment}, there is no table `{TABLE}`: write into the memory sink, "
            f'`.format("memory").queryName("{TABLE}")`.'
        )
    counts, rows_per_word = found
    if not counts and expected:
        return f"{moment}, `{TABLE}` holds no word and count: name the columns `word` and `count`."
    repeated = [word for word, rows in rows_per_word.items() if rows > 1]
    if repeated:
        return (
            f"{moment}, `{TABLE}` has {rows_per_word[repeated[0]]} rows for '{repeated[0]}': in "
            "update or append mode each micro-batch adds the rows it changed; the complete mode "
            "rewrites the whole table of totals."
        )
    if counts == expected:
        return None
    return (
        f"{moment}, `{TABLE}` holds {sum(counts.values())} words, the ledger "
        f"{sum(expected.values())}; first difference {_first_difference(expected, counts)}."
    )


def _send(topic: str, words: int, seed: int, settings: Settings) -> Counter:
    """``words`` more words on the topic, acknowledged; their ledger."""
    from helpers.producer import WordProducer

    more = WordProducer(rate=float("inf"), topic=topic, count=words, seed=seed, settings=settings)
    more.start().wait(60)
    return Counter(more.stop().ledger)


def _grade_on(
    answer: Callable, spark, settings: Settings, topic: str, ledger: Counter
) -> str | None:
    """Run, more words while it runs, stop, more words and retention, restart; what went wrong.

    ``ledger`` grows in place with every word sent.
    """
    checkpoint = tempfile.mkdtemp(prefix="exercise04-job-")
    try:
        query = _start(answer, spark, settings, topic, checkpoint)
        if isinstance(query, str):
            return query
        try:
            wrong = _drain(query)
            ledger += _send(topic, 100, 12, settings)  # a second micro-batch, while it runs
            wrong = wrong or _drain(query) or _judge(spark, dict(ledger), "Running")
        finally:
            if query.isActive:
                query.stop()
        if wrong:
            return wrong
        read = topics.latest_offsets(topic, settings)
        ledger += _send(topic, 200, 13, settings)  # while the job is down...
        for partition, end in read.items():  # ...and retention deletes what it had read
            topics.delete_records_before(topic, end, partition, settings)
        query = _start(answer, spark, settings, topic, checkpoint)
        if isinstance(query, str):
            return f"Restarted, {query[0].lower()}{query[1:]}"
        try:
            wrong = _drain(query)
        finally:
            if query.isActive:
                query.stop()
        moment = "Restarted after 200 more words and retention"
        wrong = wrong or _judge(spark, dict(ledger), moment)
        counts = (_table(spark) or ({},))[0]
        if wrong and sum(counts.values()) < ledger.total():
            wrong += (
                " The words read before the stop are gone from Kafka: their totals can only come "
                "back from the checkpoint (`checkpointLocation`)."
            )
        return wrong
    finally:
        shutil.rmtree(checkpoint, ignore_errors=True)


def _clear(spark) -> None:
    """No query named ``word_counts`` running, and no table of that name."""
    for query in spark.streams.active:
        if query.name == TABLE:
            query.stop()
    spark.catalog.dropTempView(TABLE)


def grade(answer: Callable, settings: Settings | None = None) -> Verdict:
    """Count a practice topic, running; stop; more words arrive and the old ones go; restart."""
    from helpers.spark_realtime import session

    settings = settings or load()
    spark = session(settings)
    _clear(spark)  # a query the learner started by hand in a cell would hold the name
    topic, first = _practice_topic(settings, words=300, partitions=2, seed=11)
    ledger = Counter(first)
    try:
        wrong = _grade_on(answer, spark, settings, topic, ledger)
    finally:
        _clear(spark)
        topics.delete_topic(topic, settings)
    if wrong:
        return Verdict(False, wrong, answer)
    return Verdict(
        True,
        f"your job counted {sum(first.values())} words, then 100 more while it ran, was stopped, "
        "and started again from its checkpoint after 200 more had arrived and Kafka had deleted the "
        f"first ones: its table holds all {ledger.total()}, exactly the ledger.",
        answer,
    )
