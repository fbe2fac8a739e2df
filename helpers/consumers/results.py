"""A counter's results written to a Kafka topic, with a stated guarantee.

Each batch a counter has counted becomes one record per word on the results topic: the word as the key
(UTF-8) and ``{"count": n}``, the batch's increment, as the value. The sum per word over the topic then
equals the producer's ledger only if no batch was written twice, so a duplicate shows as a surplus.

- **At-least-once** (:class:`ResultsWriter`): write the increments, wait for the broker's acks, then
  commit the input offsets. A crash between the two re-reads the batch and writes it again.
- **Exactly-once** (:class:`TransactionalResults`): the increments and the input offsets go into one
  Kafka transaction (``send_offsets_to_transaction``), committed or aborted together. A crash mid-way
  leaves an open transaction that the restarted counter's producer aborts (same transactional id), and
  a ``read_committed`` reader never sees it; a ``read_uncommitted`` one does.
- **Exactly-once by batch id** (:class:`BatchResults`), for an engine that keeps its offsets itself and
  replays a failed batch whole, under the same id (Spark's ``foreachBatch``): each batch's increments go
  out in one transaction, each value carrying the batch's id, and a batch whose id the topic already
  holds is a replay, skipped. Spark's own Kafka sink is at-least-once; this is its idempotent path.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Mapping

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata

from helpers.config import Settings
from helpers.errors import CourseError, no_broker
from helpers.wait import wait_until

# A member killed in a transaction holds back read_committed readers until its transaction is aborted:
# at once by a restarted member with the same transactional id, or by the broker after this long.
# A transaction open longer (a broker away for a minute) is aborted by the broker: see FENCED.
TRANSACTION_TIMEOUT_MS = 60_000
# What a producer gets once the broker aborted its transaction for it (timed out) or a newer producer
# with its id started: either way it must start afresh (init_transactions) and write the batch again.
FENCED = (kafka_errors.ProducerFencedError, kafka_errors.InvalidProducerEpochError)
READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"
# a batch stuck after a broker bounce fails in 30 s, not 120: the writer is replaced
REQUEST_TIMEOUT_MS = 10_000
DELIVERY_TIMEOUT_MS = 30_000


def result_records(counts: Mapping[str, int], **extra: int | str) -> list[tuple[bytes, bytes]]:
    """(key, value) per word of one batch: the word, and ``{"count": n, **extra}``, its increment."""
    return [
        (word.encode("utf-8"), json.dumps({"count": count, **extra}).encode("utf-8"))
        for word, count in sorted(counts.items())
        if count
    ]


def check_results_options(results_topic: str | None, exactly_once: bool) -> None:
    """A counter's results options make sense together (the CLI says the same of its flags)."""
    if exactly_once and not results_topic:
        raise CourseError("exactly_once is about results written to a topic: give results_topic.")


def transactional_id(group: str) -> str:
    """One id per group: a restarted member fences its dead predecessor and aborts its transaction.

    Two live members of one group would fence each other with it; give each its own id then.
    """
    return f"course-results-{group}"


class ResultsWriter:
    """At-least-once: write a batch's increments and wait for the acks; the caller commits after."""

    def __init__(self, topic: str, settings: Settings, **config) -> None:
        self.topic = topic
        try:
            self.producer = KafkaProducer(
                bootstrap_servers=settings.bootstrap_servers,
                acks="all",
                client_id=f"course-results-{topic}",
                request_timeout_ms=REQUEST_TIMEOUT_MS,
                delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
                **config,
            )
        except (kafka_errors.KafkaError, OSError) as error:
            raise no_broker(settings.bootstrap_servers, error) from None

    def _send(self, counts: Mapping[str, int], **extra: int | str) -> list:
        return [
            self.producer.send(self.topic, key=key, value=value)
            for key, value in result_records(counts, **extra)
        ]

    def _acked(self, futures: list) -> None:
        """Block until every send is answered; a failed one raises its error here.

        Before a transaction commits, this is what keeps it whole: kafka-python fails a batch that
        timed out (a broker away past ``delivery_timeout_ms``) without marking its transaction
        abortable, as the Java client does, so a commit after it would drop those records unseen.
        """
        self.producer.flush()
        for future in futures:
            future.get(timeout=0)

    def write(self, counts: Mapping[str, int]) -> None:
        """Send the increments and block until the broker has them all (raises if it has not)."""
        self._acked(self._send(counts))  # before any offset is committed

    def close(self) -> None:
        """Close the producer (what was written is already acknowledged)."""
        try:
            self.producer.close(timeout=5)
        except (kafka_errors.KafkaError, OSError):
            pass


class TransactionalResults(ResultsWriter):
    """Exactly-once: the increments and the input offsets in one Kafka transaction."""

    def __init__(self, topic: str, settings: Settings, group: str) -> None:
        super().__init__(
            topic, settings,
            transactional_id=transactional_id(group),
            transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        )  # fmt: skip
        try:  # fences the id's earlier producer and aborts a transaction it left open (a killed member)
            self.producer.init_transactions()
        except Exception:
            self.close()  # a writer that could not start leaves no producer behind
            raise

    def write_with_offsets(
        self,
        counts: Mapping[str, int],
        offsets: Mapping[TopicPartition, int],
        consumer: KafkaConsumer,
        before_commit=None,
    ) -> bool:
        """Write increments and commit ``offsets`` (next to read) for the consumer's group, atomically.

        ``before_commit`` runs after everything is sent and before the commit (a crash point for
        lessons). False when the transaction was aborted because of a retriable error or a rebalance:
        the caller reads the batch again. Fenced (:data:`FENCED`) raises: the caller starts a new
        producer, which aborts what this one left open.
        """
        self.producer.begin_transaction()
        try:
            sent = self._send(counts)
            self.producer.send_offsets_to_transaction(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()},
                consumer.group_metadata(),
            )
            self._acked(sent)  # at the broker, not yet committed; a send that failed aborts
            if before_commit is not None:
                before_commit()
            self.producer.commit_transaction()
        except FENCED:
            raise
        except kafka_errors.KafkaError:
            self.producer.abort_transaction()
            return False
        return True


class BatchResults(TransactionalResults):
    """Exactly-once for a batch replayed under its id: one transaction per batch, replays skipped.

    ``writer`` names the batches' source (Spark's query id, kept in its checkpoint): only its own
    batch ids count as written, so a new checkpoint, whose ids start again at 0, skips nothing.
    """

    def __init__(self, topic: str, settings: Settings, transactional: str, writer: str) -> None:
        super().__init__(topic, settings, transactional)  # what a killed predecessor left: aborted
        self.writer = writer
        try:
            mine = [
                v["batch"] for _, v in read_records(topic, settings) if v.get("writer") == writer
            ]
        except Exception:
            self.close()
            raise
        self.last_batch = max(mine, default=-1)  # the newest batch whose results are committed

    def write_batch(
        self, counts: Mapping[str, int], batch: int, after_commit: Callable[[], None] | None = None
    ) -> bool:
        """Write batch ``batch``'s increments in one transaction; False for a replay (already written).

        ``after_commit`` runs once the transaction is committed, before the engine commits the batch:
        a lesson's crash point, the one where the engine replays a batch whose results are out.
        An error raises, the transaction left open: the next writer's ``init_transactions`` aborts it.
        """
        if batch <= self.last_batch:
            return False
        self.producer.begin_transaction()
        self._acked(self._send(counts, batch=batch, writer=self.writer))  # a failed send: no commit
        self.producer.commit_transaction()
        self.last_batch = batch
        if after_commit is not None:
            after_commit()
        return True


def crash_now() -> None:
    """SIGKILL this process: a crash with no clean-up, at a point a lesson chose."""
    os.kill(os.getpid(), signal.SIGKILL)


def results_reader(settings: Settings, isolation_level: str = READ_COMMITTED) -> KafkaConsumer:
    """A consumer in no group for a results topic: it commits nothing, and sees what its isolation lets."""
    return KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level=isolation_level,
        bootstrap_timeout_ms=5000,
    )


def assign_from_start(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic`` assigned to ``consumer`` from its start; none while there is no topic."""
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if partitions:
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
    return partitions


def read_records(
    topic: str, settings: Settings, isolation_level: str = READ_COMMITTED, timeout: float = 30.0
) -> list[tuple[str, dict]]:
    """Every (word, value) on a results topic, as a reader with ``isolation_level`` sees it.

    Reads every partition to its end (for ``read_committed``: to the last stable offset, so an open
    transaction's records are left out; they appear once it commits, and never if it aborts).
    """
    consumer = results_reader(settings, isolation_level)
    try:
        partitions = assign_from_start(consumer, topic)
        if not partitions:
            raise CourseError(f"No results topic {topic!r}; start a counter with --results-topic.")
        ends = consumer.end_offsets(partitions)
        found: list[tuple[str, dict]] = []

        def read_to_the_end() -> bool:
            for records in consumer.poll(timeout_ms=500).values():
                found.extend((r.key.decode("utf-8"), json.loads(r.value)) for r in records)
            return all(consumer.position(tp) >= ends[tp] for tp in partitions)

        wait_until(read_to_the_end, timeout, f"the results on {topic!r} to be read", every=0)
        return found
    finally:
        consumer.close()


def read_results(
    topic: str, settings: Settings, isolation_level: str = READ_COMMITTED, timeout: float = 30.0
) -> Counter[str]:
    """The sum per word over a results topic, as a reader with ``isolation_level`` sees it."""
    totals: Counter[str] = Counter()
    for word, value in read_records(topic, settings, isolation_level, timeout):
        totals[word] += value["count"]
    return totals
