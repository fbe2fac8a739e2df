"""The course's solutions to the exercises: what ``COURSE_SOLVE=1`` grades in place of a stub.

Try your own first; ``exercises.show_solution(key)`` prints one.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata

from helpers.text import tokenize


def record_outcome(ledger: Counter, text: str, error: Exception | None) -> None:
    """Chapter 02: called once per message when the broker answered (error None) or it failed."""
    if error is None:
        ledger.update(tokenize(text))


def count_batch(batch: dict, counts: Counter, consumer: KafkaConsumer) -> None:
    """Chapter 03: the body of the poll loop. Count first, then commit what was counted."""
    for records in batch.values():
        for record in records:
            counts.update(tokenize(record.value.decode("utf-8")))
    consumer.commit()


def count_words(words):
    """Chapter 04: the Spark query; ``words`` is a streaming DataFrame of (word, timestamp)."""
    return words.groupBy("word").count()


def start_count(spark, bootstrap_servers: str, topic: str, checkpoint: str):
    """Chapter 04: the whole job, Kafka to a table of running totals that survives a restart."""
    from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)

    lines = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")  # a first start reads the topic from its beginning
        .load()
    )
    words = lines.select(F.explode(F.call_function("course_tokens", "value")).alias("word"))
    counts = words.where(~F.col("word").startswith("\x00")).groupBy("word").count()
    return (
        counts.writeStream.format("memory")
        .queryName("word_counts")
        .outputMode("complete")  # the whole table of totals, rewritten every batch
        .trigger(processingTime="1 second")
        .option("checkpointLocation", checkpoint)  # offsets and state: a restart resumes here
        .start()
    )


# Chapter 05: the Flink SQL query over the view `words` (word, ts): one running count per word.
running_count = "SELECT word, COUNT(*) AS n FROM words GROUP BY word"


# Chapter 05, windows: 5-second tumbling windows of event time, one count per word and window.
windowed_count = """
    SELECT word, window_start, window_end, COUNT(*) AS n
    FROM TABLE(TUMBLE(TABLE words, DESCRIPTOR(ts), INTERVAL '5' SECOND))
    GROUP BY window_start, window_end, word
"""


def differences(ledger: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    """Chapter 06: word -> counted minus sent, for every word where they differ."""
    words = set(ledger) | set(counts)
    gaps = {word: counts.get(word, 0) - ledger.get(word, 0) for word in words}
    return {word: gap for word, gap in gaps.items() if gap != 0}


def save_batch(db: sqlite3.Connection, batch: dict) -> None:
    """Chapter 08: the batch's word counts and each partition's next offset, in one transaction."""
    words: Counter[str] = Counter()
    for records in batch.values():
        for record in records:
            words.update(tokenize(record.value.decode("utf-8")))
    with db:  # one transaction: both tables change, or (killed before the commit) neither does
        db.executemany(
            "INSERT INTO counts (word, n) VALUES (?, ?) "
            "ON CONFLICT (word) DO UPDATE SET n = n + excluded.n",
            words.items(),
        )
        db.executemany(
            "INSERT INTO offsets (partition, next) VALUES (?, ?) "
            "ON CONFLICT (partition) DO UPDATE SET next = excluded.next",
            [(tp.partition, records[-1].offset + 1) for tp, records in batch.items()],
        )


def resume_at(db: sqlite3.Connection, partition: int) -> int | None:
    """Chapter 08: where a restarted process reads ``partition`` on (None: from its beginning)."""
    row = db.execute("SELECT next FROM offsets WHERE partition = ?", (partition,)).fetchone()
    return None if row is None else row[0]


# Chapter 07: partitions per member, largest first, for 3 partitions shared by 2 members.
prediction = [2, 1]


async def on_revoke(consumer: KafkaConsumer, revoked: set) -> None:
    """Chapter 07: partitions are leaving this member: commit what it has counted of them first."""
    await consumer.commit_async()  # the positions: everything polled, and so counted, here


def flink_width(partitions: int, taskmanagers: int, slots_per_taskmanager: int) -> int:
    """Chapter 09: as wide as the slots allow, and no wider than the partitions."""
    return min(taskmanagers * slots_per_taskmanager, partitions)


def count_batch_in_a_transaction(
    producer: KafkaProducer, consumer: KafkaConsumer, batch: dict, results_topic: str
) -> None:
    """Chapter 10: a batch's counts and the offsets past it, in one Kafka transaction.

    ``producer`` is transactional (its ``init_transactions`` already ran); ``batch`` is what
    ``consumer.poll()`` returned. The increments and the group's next offsets are committed together,
    or, if the process dies first, neither: a restart reads the batch again and writes it once.
    """
    counts = Counter(
        word
        for records in batch.values()
        for record in records
        for word in tokenize(record.value.decode("utf-8"))
    )
    offsets = {
        partition: OffsetAndMetadata(records[-1].offset + 1, "", -1)
        for partition, records in batch.items()
    }
    producer.begin_transaction()
    for word, count in counts.items():
        producer.send(results_topic, key=word.encode(), value=json.dumps({"count": count}).encode())
    producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
    producer.commit_transaction()
