"""The plain Kafka consumer: a poll loop in a background thread, counting words as records arrive.

The seed's consumer logged each record. This one counts: it reads in its own consumer group, tokenizes
with the one ``tokenize()``, keeps running totals, commits offsets after every batch it has counted,
and reports its lag. Bounded modes end it on its own (see :class:`~helpers.consumers.base.Bound`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence

from kafka import KafkaConsumer, TopicPartition
from kafka import errors as kafka_errors
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from helpers.config import DISCOVERY_MS, Settings
from helpers.consumers.base import BROKER_AWAY_LIMIT, Bound, Progress, Snapshot, WordCounter
from helpers.consumers.results import (
    FENCED,
    ResultsWriter,
    TransactionalResults,
    check_results_options,
    crash_now,
)
from helpers.consumers.store import CountStore, Fenced
from helpers.errors import CourseError, no_broker
from helpers.text import tokenize, words_of

MAX_POLL_RECORDS = (
    5000  # records per poll, counted and committed together (kafka-python's default: 500)
)
# A classroom's timing: a member killed with kill -9 sends no goodbye; the group notices it when its
# heartbeats stop for this long, then hands its partitions on (kafka-python's default is 45 s).
SESSION_TIMEOUT_MS = 10_000
LAG_EVERY = 1.0  # seconds between end-offset look-ups
GIVE_UP_AFTER = BROKER_AWAY_LIMIT  # seconds of only retriable errors before the counter gives up
ASSIGN_WITHIN = 90.0  # a bounded run that never gets a partition ends with an error, never hangs
STALL_AFTER = 5.0  # seconds between two looks at a group that has records to read but reads none
FENCED_LIMIT = 3  # fenced more often in a row: another live member shares the transactional id
log = logging.getLogger(__name__)
REBALANCED = (
    kafka_errors.CommitFailedError,
    kafka_errors.RebalanceInProgressError,
    kafka_errors.IllegalGenerationError,
    kafka_errors.UnknownMemberIdError,
)


class Tally:
    """What one partition's records added up to: words, records, skips."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.records = 0

    def add(self, value: bytes | None) -> None:
        """Count one record's value."""
        words, skipped = words_of(value)
        if skipped:
            self.skipped[skipped] += 1
        self.counts.update(words)
        self.records += 1

    def add_all(self, values: list[bytes | None]) -> None:
        """Count many records' values at once: the poll loop's fast path, same answer as ``add``.

        Joined by a line break, the records tokenize as they would one by one (a line break is no
        word character, composes with nothing and lower-cases to itself), so the whole batch is
        decoded and tokenized in one call. A batch with invalid UTF-8 in it goes record by record.
        """
        present = [value for value in values if value]
        nulls = values.count(None)
        empties = len(values) - len(present) - nulls
        if nulls:
            self.skipped["null"] += nulls
        if empties:
            self.skipped["empty"] += empties
        try:
            text = b"\n".join(present).decode("utf-8")
        except UnicodeDecodeError:
            for value in present:
                self.add(value)
            self.records += len(values) - len(present)
            return
        self.counts.update(tokenize(text))
        self.records += len(values)

    def merge(self, other: Tally) -> None:
        """Add another tally into this one."""
        self.counts.update(other.counts)
        self.skipped.update(other.skipped)
        self.records += other.records


class _Assignments(ConsumerRebalanceListener):
    """Follows rebalances; with ``rewind`` each owned partition is counted from its first record.

    So in ``from_beginning`` mode a counter's totals always cover exactly the partitions it owns now.
    """

    def __init__(self, consumer: KafkaConsumer, rewind: bool, forget) -> None:
        self.consumer = consumer
        self.rewind = rewind
        self.forget = forget

    def on_partitions_revoked(self, revoked) -> None:
        if self.rewind:  # their new owner counts them from the beginning
            self.forget([tp.partition for tp in revoked])

    def on_partitions_assigned(self, assigned) -> None:
        if assigned and self.rewind:
            self.forget([tp.partition for tp in assigned])  # re-read from 0: count them afresh
            self.consumer.seek_to_beginning(*assigned)


class KafkaWordCounter(WordCounter):
    """Count words with kafka-python's consumer, in consumer group ``group``.

    ``from_beginning`` rewinds to the start of the topic whenever partitions are assigned; otherwise
    the group resumes from its committed offsets, and where it has none from ``reset`` ("earliest": a
    new group counts the topic from its first record and skips nothing; "latest" as the seed did).
    """

    engine = "kafka"

    def __init__(
        self,
        topic: str | None = None,
        group: str | None = None,
        from_beginning: bool = True,
        bound: Bound | None = None,
        settings: Settings | None = None,
        poll_ms: int = 200,
        reset: str = "earliest",
        assignors: Sequence[type] | None = None,
        results_topic: str | None = None,
        exactly_once: bool = False,
        crash_before_commit: int | None = None,
        member: str | None = None,
    ) -> None:
        super().__init__(topic, group, from_beginning, bound, settings)
        if member and not group:
            raise CourseError("A static member belongs to a group: give the group too (--group G).")
        # A static member (Kafka's group.instance.id): restarted under the same name it takes its
        # partitions back at once, where a new member waits out the dead one's session first.
        self.member = member
        if results_topic and from_beginning:
            raise CourseError(
                "A counter writing results must resume from its group's offsets, not rewind: "
                "drop from_beginning (--from-beginning)."
            )
        check_results_options(results_topic, exactly_once)
        # Each counted batch written to this topic as increments per word (see consumers.results):
        # produce then commit (at-least-once), or both in one Kafka transaction (exactly_once).
        self.results_topic = results_topic
        self.exactly_once = exactly_once
        # A lesson's crash point: SIGKILL this process once batch N's results are written and its
        # offsets not yet committed (the moment at-least-once writes twice).
        self.crash_before_commit = crash_before_commit
        self._results: ResultsWriter | None = None
        self._batches_written = 0
        self._fenced = 0  # transactions refused as fenced in a row
        self.poll_ms = poll_ms
        self.reset = reset
        # the group's assignment strategies (kafka-python's default: range, then round robin; eager)
        self.assignors = tuple(assignors) if assignors else None
        self._thread: threading.Thread | None = None
        self._stop_polling = threading.Event()
        self._tallies: dict[int, Tally] = {}  # partition -> what its records added up to
        self._leaving = False
        self._lag: int | None = None
        self._caught_up = False
        self._partitions: list[int] = []
        self.reconnects = 0  # times the watchdog found the group stuck and joined it afresh
        self._consumer: KafkaConsumer | None = None
        self._paused = threading.Event()  # set by pause(): stay in the group, fetch nothing
        self._we_paused = False  # the poll loop paused its partitions because of pause()

    # --- lifecycle -----------------------------------------------------------------------------

    def _connect(self) -> KafkaConsumer:
        strategy = {"partition_assignment_strategy": self.assignors} if self.assignors else {}
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.settings.bootstrap_servers,
                group_id=self.group,
                client_id=f"course-{self.group}",
                enable_auto_commit=False,  # commit only what has been counted
                auto_offset_reset=self.reset,
                bootstrap_timeout_ms=5000,
                max_poll_records=MAX_POLL_RECORDS,
                reconnect_backoff_max_ms=2000,  # a restarted broker is found within seconds, not 30
                metadata_max_age_ms=DISCOVERY_MS,  # partitions added meanwhile are found soon
                request_timeout_ms=15_000,  # a call to a broker that is away fails soon, and is retried
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=SESSION_TIMEOUT_MS // 5,
                group_instance_id=self.member,
                **strategy,
            )
        except (kafka_errors.KafkaError, OSError) as error:
            raise no_broker(self.settings.bootstrap_servers, error) from None
        # Know the topic's partitions before the first join: a group leader that assigns without
        # them gives itself nothing, and kafka-python does not always notice it should join again.
        consumer.partitions_for_topic(self.topic)
        consumer.subscribe([self.topic], listener=self._listener(consumer))
        self._consumer = consumer  # owned by the poll thread; kept here for fault-injection tests
        return consumer

    def _listener(self, consumer: KafkaConsumer) -> ConsumerRebalanceListener:
        return _Assignments(consumer, self.from_beginning, self.forget_partitions)

    def _results_writer(self) -> ResultsWriter:
        from helpers.topics import create_topic

        create_topic(self.results_topic, settings=self.settings)
        if self.exactly_once:
            return TransactionalResults(self.results_topic, self.settings, self.group)
        return ResultsWriter(self.results_topic, self.settings)

    def _open(self) -> None:
        """Join the group and start the poll loop in a background thread."""
        if self.results_topic:
            self._results = self._results_writer()
        consumer = self._connect()
        self._thread = threading.Thread(
            target=self._run, args=(consumer,), name=f"kafka-poll-{self.group}", daemon=True
        )
        self._thread.start()

    def _progress(self) -> Progress:
        records = self._records
        waited = time.monotonic() - (self.started_at or time.monotonic())
        if self.bound.until_idle is not None and not self._partitions and waited > ASSIGN_WITHIN:
            self._error = f"no partition of {self.topic} was assigned within {ASSIGN_WITHIN:.0f}s"
            return Progress(records, ended=True)
        ended = self._thread is not None and not self._thread.is_alive()
        return Progress(records, caught_up=self._caught_up, ended=ended)

    def _close(self, stopped: bool, timeout: float = 30.0) -> None:
        """Stop polling, leave the group (every counted batch is already committed)."""
        self._stop_polling.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self) -> None:
        """Stop fetching but stay in the group (heartbeats go on): lag builds, nothing is lost."""
        self._paused.set()

    def resume(self) -> None:
        """Fetch again from where it stopped."""
        self._paused.clear()

    # --- results -------------------------------------------------------------------------------

    @property
    def _records(self) -> int:
        with self._lock:  # a rebalance may drop a partition's tally meanwhile
            return sum(t.records for t in self._tallies.values())

    def forget_partitions(self, partitions: list[int]) -> None:
        """Drop the tallies of partitions the group took away (their new owner counts them on)."""
        if self._leaving:  # leaving the group at the end: keep what was counted
            return
        with self._lock:
            for partition in partitions:
                self._tallies.pop(partition, None)

    def records_shown(self) -> int:
        """Records in the counts kept so far (committed ones only)."""
        with self._lock:
            return sum(tally.records for tally in self._tallies.values())

    def snapshot(self) -> Snapshot:
        """Counts, records, skipped, lag, owned partitions and rate right now."""
        total = Tally()
        with self._lock:
            for tally in self._tallies.values():
                total.merge(tally)
            return self._snapshot(
                counts=dict(total.counts),
                records=total.records,
                skipped=dict(total.skipped),
                lag=self._lag,
                partitions=list(self._partitions),
            )

    # --- the poll loop -------------------------------------------------------------------------

    def _tally(self, batch: dict) -> dict[int, Tally]:
        """Count a polled batch, per partition, without touching the totals yet."""
        tallies: dict[int, Tally] = {}
        for partition, records in batch.items():
            tally = tallies.setdefault(partition.partition, Tally())
            tally.add_all([record.value for record in records])
        return tallies

    def _keep(self, tallies: dict[int, Tally]) -> None:
        """Add a committed batch to the totals."""
        with self._lock:
            for partition, tally in tallies.items():
                self._tallies.setdefault(partition, Tally()).merge(tally)

    def _update_lag(self, consumer: KafkaConsumer) -> bool:
        """Refresh lag and owned partitions; True when every owned partition is read to its end.

        Lag is unknown (None) until every owned partition has both an end offset and a position: a
        new topic's metadata lags, a fresh member's position is found after its first fetch, and a
        rebalance may take a partition away between two of these calls.
        """
        assigned = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        ends = consumer.end_offsets(assigned) if assigned else {}
        positions: dict[TopicPartition, int | None] = {}
        for tp in assigned:
            try:
                positions[tp] = consumer.position(tp)
            except (kafka_errors.IllegalStateError, KeyError):  # no longer ours: a rebalance
                positions[tp] = None
        known = bool(assigned) and all(tp in ends and positions[tp] is not None for tp in assigned)
        lag = sum(max(ends[tp] - positions[tp], 0) for tp in assigned) if known else None
        with self._lock:
            self._lag = lag
            self._partitions = [tp.partition for tp in assigned]
        return known and lag == 0

    def _step(self, consumer: KafkaConsumer) -> bool:
        """One poll: count, commit, and keep the counts only once the commit succeeded.

        A batch whose commit fails because the group rebalanced is dropped: Kafka hands those records
        again to whichever member owns the partition now, so they are counted exactly once.
        Returns True when records arrived.
        """
        if self._paused.is_set():
            assigned = consumer.assignment()
            if assigned - consumer.paused():  # partitions assigned since: pause them too
                consumer.pause(*assigned)
                self._we_paused = True
        elif self._we_paused:  # resume only what pause() paused
            consumer.resume(*consumer.paused())
            self._we_paused = False
        limit = None
        if self.bound.count is not None:
            limit = self.bound.count - self._records
            if limit <= 0:  # the bound is reached: read nothing more until the watch loop ends us
                self._stop_polling.wait(self.poll_ms / 1000)
                return False
        batch = consumer.poll(timeout_ms=self.poll_ms, max_records=limit)
        if not batch:
            return False
        tallies = self._tally(batch)
        if not self._persist(consumer, batch, tallies):
            return False
        self._keep(tallies)
        return True

    def _persist(self, consumer: KafkaConsumer, batch: dict, tallies: dict[int, Tally]) -> bool:
        """Make a counted batch stick before it joins the totals; False drops it (to be re-read).

        Here: commit the offsets to Kafka, synchronously. The counts themselves live in memory, so
        a crashed process resumes after what it had counted but without its counts: at-most-once
        for the totals. :class:`DurableKafkaWordCounter` stores both together instead. With a
        results topic, the batch's increments are written there first (see :meth:`_write_results`).
        """
        if self._results is not None:
            return self._write_results(consumer, batch, tallies)
        return self._commit(consumer, batch)

    def _write_results(self, consumer: KafkaConsumer, batch: dict, tallies: dict) -> bool:
        """The batch's increments to the results topic, then its offsets: apart, or in one transaction."""
        increments: Counter[str] = Counter()
        for tally in tallies.values():
            increments.update(tally.counts)
        self._batches_written += 1
        crash = crash_now if self._batches_written == self.crash_before_commit else None
        if isinstance(self._results, TransactionalResults):
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            try:
                if self._results.write_with_offsets(increments, offsets, consumer, crash):
                    self._fenced = 0
                    return True
            except FENCED:  # the broker aborted our transaction (timed out while it was away)
                self._fenced += 1
                if self._fenced > FENCED_LIMIT:  # another live member uses our transactional id
                    raise
                self._results.close()
                self._results = self._results_writer()  # a new epoch; what was open is aborted
            _rewind(consumer, batch)  # aborted: nothing of it is visible, read it again
            return False
        try:
            self._results.write(increments)
        except kafka_errors.KafkaError as error:
            if not error.retriable:
                raise
            _rewind(consumer, batch)  # some increments may be written: at-least-once
            return False
        if crash is not None:
            crash()
        return self._commit(consumer, batch)

    def _commit(self, consumer: KafkaConsumer, batch: dict) -> bool:
        """Commit the polled offsets; False (and the batch to be read again) if the group refused."""
        try:
            consumer.commit()
        except REBALANCED:  # the partition has a new owner, who reads the batch again
            return False
        except kafka_errors.KafkaError as error:
            if not error.retriable:
                raise
            # The broker is away. Keeping these counts uncommitted would count them twice if the
            # group rebalances before the next commit (the new position is the committed one), so
            # drop them and read the batch again once the broker is back.
            _rewind(consumer, batch)
            return False
        return True

    def _group_look(self) -> tuple[int, tuple] | None:
        """(records the group has yet to read, its committed offsets), or None if that cannot be told.

        Stuck means: records wait and the commits did not move between two looks. Lag alone cannot
        tell, since a producer still sending makes it grow while nobody reads.
        """
        from helpers.topics import group_lag

        try:
            rows = group_lag(self.group, self.topic, self.settings)["partitions"]
        except (CourseError, kafka_errors.KafkaError, OSError):
            return None
        new_starts_at_end = self.reset == "latest" and not self.from_beginning
        behind = sum(r["lag"] for r in rows if r["committed"] is not None or not new_starts_at_end)
        return behind, tuple((r["partition"], r["committed"]) for r in rows)

    def _rejoin(self, consumer: KafkaConsumer) -> KafkaConsumer:
        """Leave the group and join it again with a new consumer."""
        log.info("%s: the group reads nothing while records wait; joining it again", self.group)
        self.reconnects += 1
        try:
            consumer.close()
        except (kafka_errors.KafkaError, OSError):
            pass
        if self.member:
            self._remove_static_member()
        return self._connect()

    def _remove_static_member(self) -> None:
        """Take this static member out of its group, so the join that follows rebalances it.

        A static member leaves nothing when it closes (KIP-345): joining again under the same
        ``group.instance.id`` it would be handed back the very assignment it was stuck with.
        """
        from kafka.admin import MemberToRemove

        from helpers.topics import admin

        try:
            with admin(self.settings) as client:
                client.remove_group_members(
                    self.group, [MemberToRemove(group_instance_id=self.member)]
                )
        except (CourseError, kafka_errors.KafkaError, OSError):  # gone already: the join is fresh
            pass

    def _done_by_count(self) -> bool:
        return self.bound.count is not None and self._records >= self.bound.count

    def _run(self, consumer: KafkaConsumer) -> None:
        """Poll, count, commit, until told to stop; with a watchdog for a group that is stuck.

        kafka-python sometimes leaves a fresh member with nothing assigned, or assigned but never
        fetching, after a first join that raced the topic's metadata. When this counter reads
        nothing while its group has records to read and its commits have not moved for two looks
        ``STALL_AFTER`` seconds apart, it leaves the group and joins again (nothing counted is lost:
        every counted batch is committed, and a rewinding counter recounts what it is given).
        """
        last_lag = last_ok = last_progress = time.monotonic()
        look_before: tuple[int, tuple] | None = None
        try:
            while not self._stop_polling.is_set():
                try:
                    got = self._step(consumer)
                    now = time.monotonic()
                    if now - last_lag >= LAG_EVERY or not got:
                        self._caught_up = self._update_lag(consumer)
                        last_lag = time.monotonic()
                    if got or self._caught_up or self._done_by_count() or self._paused.is_set():
                        last_progress, look_before = now, None
                    elif now - last_progress > STALL_AFTER:
                        look = self._group_look()
                        if look and look_before and look[0] > 0 and look[1] == look_before[1]:
                            consumer = self._rejoin(consumer)
                            look = None
                        last_progress, look_before = time.monotonic(), look
                    last_ok = time.monotonic()
                except kafka_errors.KafkaError as error:  # a slow broker: retry, up to a point
                    if not error.retriable or time.monotonic() - last_ok > GIVE_UP_AFTER:
                        raise
                    time.sleep(0.5)
        except Exception as error:  # the poll loop never dies silently: the snapshot says why
            self._error = f"{type(error).__name__}: {error}"
        finally:
            self._leaving = True
            try:  # the lag shown after the stop is the lag at the stop, not the last look's
                self._update_lag(consumer)
            except (kafka_errors.KafkaError, OSError, AssertionError):
                pass
            try:
                consumer.close()  # commits nothing more: every counted batch is already committed
            except (kafka_errors.KafkaError, OSError):
                pass
            if self._results is not None:
                self._results.close()


class _DurableAssignments(ConsumerRebalanceListener):
    """Load a partition's counts and seek to their offset when it is assigned; drop them when revoked."""

    def __init__(self, counter: DurableKafkaWordCounter, consumer: KafkaConsumer) -> None:
        self.counter = counter
        self.consumer = consumer

    def on_partitions_revoked(self, revoked) -> None:
        # their next owner loads them
        self.counter.forget_partitions([tp.partition for tp in revoked])

    def on_partitions_assigned(self, assigned) -> None:
        for tp in assigned:
            self.counter.load_partition(self.consumer, tp)


class DurableKafkaWordCounter(KafkaWordCounter):
    """The plain consumer, exactly-once across a crash: counts and offsets saved in one transaction.

    Each batch's counts and the offsets after it go into SQLite (:mod:`helpers.consumers.store`, in
    the course's data folder) in one transaction; a partition, when assigned, starts from the counts
    and the offset stored together. Kill the process at any moment: what was saved is consistent,
    and what was not is read again. Offsets are still committed to Kafka afterwards, for lag only.
    """

    engine = "kafka"

    def __init__(self, topic: str | None = None, group: str | None = None, **options) -> None:
        options["from_beginning"] = False  # resuming is the point: never rewind and recount
        super().__init__(topic, group, **options)
        self.store_path = self.settings.data_dir / "plain-counter.sqlite"
        self._store: CountStore | None = None
        self._loaded_at: dict[int, int | None] = {}  # partition -> stored next offset

    @property
    def label(self) -> str:
        """Named apart from the in-memory plain counter in charts and verdicts."""
        return "kafka (durable)"

    def _listener(self, consumer: KafkaConsumer) -> ConsumerRebalanceListener:
        return _DurableAssignments(self, consumer)

    @property
    def store(self) -> CountStore:
        """The group's store, opened on first use."""
        if self._store is None:
            self._store = CountStore(self.store_path, self.group, self.topic)
        return self._store

    def load_partition(self, consumer: KafkaConsumer, tp: TopicPartition) -> None:
        """An assigned partition: its counts from the store, and a seek to the offset kept with them."""
        next_offset, records, counts, skipped = self.store.load(tp.partition)
        tally = Tally()
        tally.counts, tally.skipped, tally.records = counts, skipped, records
        with self._lock:
            self._tallies[tp.partition] = tally
        self._loaded_at[tp.partition] = next_offset
        if next_offset is not None:
            consumer.seek(tp, next_offset)
        elif self.reset == "earliest":
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek_to_end(tp)

    def _persist(self, consumer: KafkaConsumer, batch: dict, tallies: dict[int, Tally]) -> bool:
        """Save counts and next offsets in one transaction, then commit to Kafka (for lag)."""
        saved = {}
        for tp, records in batch.items():
            tally = tallies[tp.partition]
            saved[tp.partition] = (
                self._loaded_at.get(tp.partition), records[-1].offset + 1,
                tally.records, tally.counts, tally.skipped,
            )  # fmt: skip
        try:
            self.store.save(saved)
        except Fenced:  # another member counted past us: take the stored state again
            for tp in batch:
                self.load_partition(consumer, tp)
            return False
        for partition, entry in saved.items():
            self._loaded_at[partition] = entry[1]
        try:
            consumer.commit()
        except kafka_errors.KafkaError:
            pass  # the store is the truth; Kafka's offsets only show lag
        return True

    def _run(self, consumer: KafkaConsumer) -> None:
        try:
            super()._run(consumer)
        finally:
            if self._store is not None:
                self._store.close()


def _rewind(consumer: KafkaConsumer, batch: dict) -> None:
    """Seek back to the first record of each partition in ``batch``, so it is read again."""
    for partition, records in batch.items():
        try:
            consumer.seek(partition, records[0].offset)
        except (ValueError, kafka_errors.IllegalStateError):
            pass  # no longer ours: its new owner starts from the committed offset anyway


def committed_offsets(group: str, topic: str, settings: Settings | None = None) -> dict[int, int]:
    """{partition: committed offset} of a group (for lessons about commits and restarts)."""
    from helpers.topics import group_lag

    rows = group_lag(group, topic, settings)["partitions"]
    return {r["partition"]: r["committed"] for r in rows if r["committed"] is not None}


__all__ = ["DurableKafkaWordCounter", "KafkaWordCounter", "TopicPartition", "committed_offsets"]
