"""How each exercise is graded: the learner's code runs on the real broker and engines; the ledger judges.

Every grader returns a :class:`Verdict`; a stub's ``NotImplementedError`` passes through, so
:func:`helpers.exercises.check` can tell "not written yet" from "wrong".
"""

from __future__ import annotations

import inspect
import math
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener

from helpers import topics
from helpers.config import Settings, load
from helpers.consumers.base import Bound
from helpers.errors import CourseError
from helpers.producer import DEFAULT_WORDS
from helpers.text import tokenize
from helpers.wait import batches_until_idle, wait_until

RUN_TIMEOUT = 300.0  # seconds a graded engine run may take (Spark and Flink start included)


@dataclass(frozen=True)
class Verdict:
    """Whether the learner's code agrees with the truth, and one line that says so (or why not)."""

    ok: bool
    message: str
    answer: object = None  # what was graded: the learner's code, or the solution under COURSE_SOLVE
    details: dict = field(default_factory=dict)

    @property
    def line(self) -> str:
        """The verdict as every chapter says it: RIGHT or WRONG, then why."""
        return f"{'RIGHT' if self.ok else 'WRONG'}: {self.message}"


def _first_difference(expected: dict[str, int], got: dict[str, int]) -> str:
    for word in sorted(set(expected) | set(got)):
        if expected.get(word, 0) != got.get(word, 0):
            return f"'{word}': {got.get(word, 0)} instead of {expected.get(word, 0)}"
    return "none"


def after_a_crash(
    got: dict[str, int], ledger: dict[str, int], moment: str, holder: str, *,
    empty: str, twice: str, lost: str,
) -> str | None:  # fmt: skip
    """What is wrong with ``holder``'s counts after ``moment``, in one sentence; None if nothing.

    ``empty``, ``twice`` and ``lost`` say why, for no count at all, a surplus and a shortfall.
    """
    if got == ledger:
        return None
    if not got:
        return f"{moment}, {holder} holds no count at all: {empty}"
    extra = sum(got.values()) - sum(ledger.values())
    first = _first_difference(ledger, got)
    if extra > 0:
        return (
            f"{moment}, {holder} holds {extra} words more than the ledger (first difference "
            f"{first}): {twice}"
        )
    if extra < 0:
        return (
            f"{moment}, {holder} holds {-extra} words fewer than the ledger (first difference "
            f"{first}): {lost}"
        )
    return f"{moment}, the counts {holder} holds differ from the ledger: first difference {first}."


def _practice_topic(
    settings: Settings, words: int = 300, partitions: int = 1, seed: int = 4
) -> tuple[str, dict[str, int]]:
    """A fresh topic holding ``words`` words, and their ledger: what an exercise is graded on."""
    from helpers.producer import WordProducer

    topic = topics.fresh_topic("exercise", partitions=partitions, settings=settings)
    producer = WordProducer(rate=math.inf, topic=topic, count=words, seed=seed, settings=settings)
    producer.start().wait(60)
    return topic, producer.stop().ledger


def _on_topic(grade: Callable[[str, dict[str, int]], Verdict], topic, ledger, settings) -> Verdict:
    """Grade on ``topic`` and its ``ledger``, or on a practice topic made (and deleted) for it."""
    if topic is not None:
        return grade(topic, ledger)
    topic, ledger = _practice_topic(settings)
    try:
        return grade(topic, ledger)
    finally:
        topics.delete_topic(topic, settings)


def _compare(answer: object, ledger: dict[str, int], counts: dict[str, int], what: str) -> Verdict:
    total = sum(counts.values())
    if counts == ledger:
        return Verdict(True, f"{what} counted {total} words, exactly the ledger.", answer)
    return Verdict(
        False,
        f"{what} counted {total} words, the ledger holds {sum(ledger.values())}; first "
        f"difference {_first_difference(ledger, counts)}.",
        answer,
        {"counts": counts},
    )


# --- chapter 02: the delivery callback --------------------------------------------------------------


def delivery_callback(answer: Callable, settings: Settings | None = None) -> Verdict:
    """Send 300 words and one message the topic refuses (too old).

    The callback's ledger must equal what the topic holds.
    """
    from helpers.consumers.kafka import KafkaWordCounter

    settings = settings or load()
    topic = f"exercise02-{uuid.uuid4().hex[:8]}"
    with topics.admin(settings) as client:
        refuses_old = {"message.timestamp.before.max.ms": "60000"}  # older than a minute: refused
        client.create_topics([NewTopic(topic, 1, 1, topic_configs=refuses_old)])
    ledger: Counter[str] = Counter()
    raised: list[BaseException] = []

    def outcome(text: str, error: Exception | None) -> None:
        try:
            answer(ledger, text, error)
        except BaseException as problem:  # noqa: BLE001 - the learner's code: report, never crash
            raised.append(problem)

    texts = random.Random(2).choices(DEFAULT_WORDS, k=300)
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    producer = KafkaProducer(  # kafka-python 3.0, idempotent, fails every batch after a refused one
        bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=False
    )
    try:
        for part, stamp in (
            (texts[:150], None),
            (["late words"], an_hour_ago),
            (texts[150:], None),
        ):
            for text in part:  # the late message travels alone in its batch
                future = producer.send(topic, text.encode("utf-8"), timestamp_ms=stamp)
                future.add_callback(lambda _metadata, t=text: outcome(t, None))
                future.add_errback(lambda error, t=text: outcome(t, error))
            producer.flush(30)
    finally:
        producer.close(5)
    try:
        if raised:
            if isinstance(raised[0], NotImplementedError):
                raise NotImplementedError
            problem = raised[0]
            return Verdict(
                False, f"your callback raised {type(problem).__name__}: {problem}", answer
            )
        held = KafkaWordCounter(topic=topic, settings=settings).run(Bound(until_idle=1.0), 60)
    finally:
        topics.delete_topic(topic, settings)
    if ledger.get("late"):
        return Verdict(
            False,
            "your ledger counted the words of the message the broker refused "
            "(InvalidTimestampError: stamped an hour ago): they are not in the topic.",
            answer,
        )
    return _compare(answer, held.counts, dict(ledger), "your callback's ledger")


# --- chapter 03: the body of the poll loop ----------------------------------------------------------


class _Crash(Exception):
    """The grading loop's process 'dies' here: nothing after this point of the body runs."""


class _CountsThatCrash(Counter):
    """The loop's counts, kept across a restart as a database would keep them.

    ``crash_at``: the change (an ``update`` or a ``counts[word] = ...``) at which the process dies,
    before that change is made; counted from the loop's start.
    """

    def __init__(self) -> None:
        self.changes = 0  # before Counter's own __init__, which calls update()
        self.crash_at: int | None = None
        super().__init__()

    def _change(self) -> None:
        self.changes += 1
        if self.crash_at is not None and self.changes >= self.crash_at:
            self.crash_at = None
            raise _Crash

    def update(self, *args, **kwargs) -> None:
        self._change()
        super().update(*args, **kwargs)

    def __setitem__(self, key, value) -> None:
        self._change()
        super().__setitem__(key, value)


def at_the_end(consumer: KafkaConsumer, ends: dict[int, int]) -> bool:
    """Every partition of ``ends`` assigned to ``consumer`` and read up to its end offset."""
    assigned = consumer.assignment()
    return len(assigned) == len(ends) and all(
        consumer.position(tp) >= ends[tp.partition] for tp in assigned
    )


def _poll_loop(
    answer: Callable, topic: str, group: str, counts: _CountsThatCrash, settings: Settings,
    crash_in_batch: int | None = None, batch_size: int = 500,
) -> bool:  # fmt: skip
    """The chapter's poll loop with the learner's body, to the topic's end; True if it crashed.

    With ``crash_in_batch`` the process dies halfway through counting that batch (halfway by the
    changes the body made to ``counts`` in the first one), as a killed consumer would.
    """
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,  # only the learner's body commits
        max_poll_records=batch_size,
    )
    ends = topics.latest_offsets(topic, settings)  # the practice topic is written in full already
    first_batch_changes = 1
    try:
        batches_read = batches_until_idle(
            consumer, 3.0, 120, 500, done=lambda: at_the_end(consumer, ends)
        )
        for batches, batch in enumerate(batches_read, start=1):
            if batches == crash_in_batch:
                counts.crash_at = counts.changes + max(1, math.ceil(first_batch_changes / 2))
            before = counts.changes
            try:
                answer(batch, counts, consumer)
            except _Crash:
                return True
            if batches == 1:
                first_batch_changes = counts.changes - before
    finally:
        consumer.close(autocommit=False)  # a crash commits nothing more
    return False


def _after_a_crash(answer: Callable, settings: Settings) -> Verdict:
    """Crash the loop halfway through its second batch, restart it on its group, look for lost words.

    At-least-once (count, then commit) re-reads the uncommitted batch and counts part of it twice;
    at-most-once (commit, then count) resumes after a batch it never finished counting: words lost.
    """
    topic, ledger = _practice_topic(settings)
    group = f"exercise03-crash-{uuid.uuid4().hex[:6]}"
    counts = _CountsThatCrash()
    try:
        crashed = _poll_loop(
            answer, topic, group, counts, settings, crash_in_batch=2, batch_size=50
        )
        _poll_loop(answer, topic, group, counts, settings)  # the restart: same group, same counts
    finally:
        topics.delete_topic(topic, settings)
    if not crashed:
        return Verdict(False, "your loop never counted the second batch.", answer)
    lost = {word: n - counts.get(word, 0) for word, n in ledger.items() if counts.get(word, 0) < n}
    if lost:
        return Verdict(
            False,
            f"after a crash halfway through counting the 2nd batch, {sum(lost.values())} "
            "words were never counted (lost): that batch was committed before it was counted, so the "
            "restart resumed after it (at-most-once).",
            answer,
            {"lost": lost},
        )
    twice = sum(counts.values()) - sum(ledger.values())
    return Verdict(
        True,
        f"After a crash halfway through a batch, the restart re-read what was not committed and "
        f"counted {twice} words twice: at-least-once, nothing lost.",
        answer,
        {"counted_twice": twice},
    )


def poll_body(
    answer: Callable, topic: str | None = None, ledger: dict | None = None, settings=None
) -> Verdict:
    """Run a real poll loop with the learner's body, then crash it mid-batch and restart it.

    Undisturbed, its counts must equal the ledger and the group must have committed every offset (lag
    0); crashed halfway through a batch and restarted on its group, it must have lost nothing.
    """
    settings = settings or load()

    def grade(topic: str, ledger: dict[str, int]) -> Verdict:
        group = f"exercise03-{uuid.uuid4().hex[:6]}"
        counts = _CountsThatCrash()  # never told to crash here: a plain Counter
        _poll_loop(answer, topic, group, counts, settings)
        verdict = _compare(answer, ledger, dict(counts), "your loop")
        if not verdict.ok:
            return verdict
        lag = topics.group_lag(group, topic, settings)
        if any(row["committed"] is None for row in lag["partitions"]) or lag["lag"]:
            return Verdict(
                False,
                f"your counts match, but the group left {lag['lag']} offsets uncommitted: a "
                "restart would read those records again and count them twice.",
                answer,
            )
        crash = _after_a_crash(answer, settings)
        if not crash.ok:
            return crash
        return Verdict(
            True, f"{verdict.message} Every offset committed (lag 0). {crash.message}", answer
        )

    return _on_topic(grade, topic, ledger, settings)


# --- chapters 04 and 05: the engines' queries -------------------------------------------------------


def _graded_run(answer, counter, ledger: dict[str, int], what: str, clean_up) -> Verdict:
    """Run an engine's counter over the topic until it is idle; its totals against the ledger."""
    try:
        snapshot = counter.run(Bound(until_idle=2.0), RUN_TIMEOUT)
    except CourseError as error:
        return Verdict(False, str(error), answer)
    finally:
        clean_up()
    if snapshot.error:
        return Verdict(False, f"{what} ran, then failed: {snapshot.error}", answer)
    return _compare(answer, ledger, snapshot.counts, what)


def spark_query(
    answer: Callable, topic: str | None = None, ledger: dict | None = None, settings=None
) -> Verdict:
    """Run the learner's query as the streaming counter's running count; the totals must match."""
    from helpers.consumers.spark import SparkWordCounter

    settings = settings or load()

    def grade(topic: str, ledger: dict[str, int]) -> Verdict:
        counter = SparkWordCounter(topic=topic, query=answer, settings=settings)
        return _graded_run(answer, counter, ledger, "your Spark query", counter.delete_checkpoint)

    return _on_topic(grade, topic, ledger, settings)


def flink_sql(
    answer: str, topic: str | None = None, ledger: dict | None = None, settings=None
) -> Verdict:
    """Run the learner's SQL as the Flink job's running count; the totals must match."""
    from helpers.consumers.flink import FlinkWordCounter

    if not isinstance(answer, str):
        return Verdict(False, "running_count must be a SQL query in quotes.", answer)
    settings = settings or load()

    def grade(topic: str, ledger: dict[str, int]) -> Verdict:
        counter = FlinkWordCounter(topic=topic, running_count=answer, settings=settings)

        def clean_up() -> None:
            shutil.rmtree(counter.state_dir, ignore_errors=True)
            topics.delete_topic(counter.readback_topic, settings)

        return _graded_run(answer, counter, ledger, "your Flink query", clean_up)

    return _on_topic(grade, topic, ledger, settings)


# --- chapter 06: the reconciliation -----------------------------------------------------------------


def differences(answer: Callable, ledger: dict[str, int], counts: dict[str, int]) -> Verdict:
    """The learner's differences on the chapter's real counts, and on two broken copies of them."""
    from helpers.reconcile import Reconciliation

    first = next(iter(sorted(ledger)), "one")
    short = {**counts, first: counts.get(first, 0) - 1}  # one word lost
    extra = {**counts, "surplus": 2}  # a word that was never sent
    for case in (counts, short, extra):
        rows = Reconciliation(ledger, {"engine": case}).rows()
        expected = {
            r["word"]: r["engine"] - r["ledger"] for r in rows if r["engine"] != r["ledger"]
        }
        got = answer(dict(ledger), dict(case))
        if got != expected:
            return Verdict(
                False,
                f"For counts differing by {expected or 'nothing'}, differences gave {got}.",
                answer,
            )
    return Verdict(
        True,
        "differences finds nothing on the real counts, a lost word and a surplus word.",
        answer,
    )


# --- chapter 07: predicting the assignment ----------------------------------------------------------


class _Member(threading.Thread):
    """One member of the graded group: polls, counts slowly, never commits by itself.

    Its loop would commit every half minute (to save round trips): never within the grading run. So
    when its partitions are revoked, only the learner's ``on_revoke`` can save what it counted.
    """

    def __init__(self, name: str, answer: Callable, topic: str, group: str, settings: Settings):
        super().__init__(name=f"exercise07-{name}", daemon=True)
        self.answer, self.counts = answer, Counter()
        self.by_partition: Counter[int] = Counter()  # records counted, per partition
        self.assigned: set[int] = set()
        self.counted_at_revoke: dict[int, int] = {}  # records counted per partition, uncommitted
        self.raised: list[BaseException] = []
        self.stop_asked = threading.Event()
        self.topic, self.group, self.settings = topic, group, settings
        self.consumer: KafkaConsumer | None = None

    def run(self) -> None:
        # made here, when the member starts: a consumer that exists but does not poll yet must not
        # take part in the group's first rebalance
        self.consumer = KafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers, group_id=self.group,
            auto_offset_reset="earliest", enable_auto_commit=False,
            max_poll_records=20, max_partition_fetch_bytes=512,  # small polls from every partition
            session_timeout_ms=10_000, heartbeat_interval_ms=1_000,
        )  # fmt: skip
        try:
            # Know the topic's partitions before the first join: a leader that assigns without them
            # gives the group nothing, and kafka-python may not join again (as KafkaWordCounter).
            self.consumer.partitions_for_topic(self.topic)
            self.consumer.subscribe([self.topic], listener=_LearnersListener(self))
            while not self.stop_asked.is_set():
                for partition, records in self.consumer.poll(timeout_ms=200).items():
                    for record in records:
                        self.counts.update(tokenize(record.value.decode("utf-8")))
                        self.by_partition[partition.partition] += 1
                    time.sleep(0.02)  # counting takes time: the other member joins mid-stream
        finally:
            self.consumer.close(autocommit=False)


class _LearnersListener(AsyncConsumerRebalanceListener):
    """Awaits the learner's ``on_revoke(consumer, revoked)``; keeps what moved, and what it raised.

    kafka-python 3 runs a group's callbacks on its IO thread, where a blocking call (``commit()``)
    raises: an async listener awaits the async variants instead (``await consumer.commit_async()``).
    """

    def __init__(self, member: _Member) -> None:
        self.member = member

    async def on_partitions_revoked(self, revoked) -> None:
        member = self.member
        member.counted_at_revoke = dict(member.by_partition)  # nothing is committed before this
        try:
            outcome = member.answer(member.consumer, set(revoked))
            if inspect.isawaitable(outcome):
                await outcome
        except BaseException as problem:  # noqa: BLE001 - the learner's code: report, never crash
            member.raised.append(problem)

    async def on_partitions_assigned(self, assigned) -> None:
        self.member.assigned = {tp.partition for tp in assigned}


def revoke_listener(answer: Callable, settings: Settings | None = None) -> Verdict:
    """A member counts alone, a second joins mid-stream; the two together must count every word once.

    The first member has counted records it has not committed when its partitions are revoked: unless
    the learner's ``on_revoke`` commits them, their new owner reads them again from the last commit.
    """
    settings = settings or load()
    topic, ledger = _practice_topic(settings, words=600, partitions=3, seed=7)
    group = f"exercise07-{uuid.uuid4().hex[:6]}"
    first = _Member("a", answer, topic, group, settings)
    second = _Member("b", answer, topic, group, settings)
    members = (first, second)
    try:
        first.start()
        wait_until(lambda: sum(first.by_partition.values()) >= 150, 60, "member A to count")
        moved_at = sum(first.by_partition.values())
        second.start()  # joins: the group rebalances while A is mid-stream
        total = sum(ledger.values())

        def done() -> bool:
            return sum(sum(m.counts.values()) for m in members) >= total and all(
                m.assigned for m in members
            )

        wait_until(done, 60, "the group to count every word")
        time.sleep(2.0)  # anything counted twice arrives late too
    finally:
        for member in members:
            member.stop_asked.set()
        for member in members:
            if member.ident is not None:  # started (B is not, when A never got to count)
                member.join(15)
        topics.delete_topic(topic, settings)
    raised = first.raised + second.raised
    if raised:
        if isinstance(raised[0], NotImplementedError):
            raise NotImplementedError
        return Verdict(False, f"your on_revoke raised {type(raised[0]).__name__}: {raised[0]}")
    counts = first.counts + second.counts
    moved = sorted(second.assigned)
    if counts == ledger:
        return Verdict(
            True,
            f"member B joined after A had counted {moved_at} records; partition(s) {moved} moved "
            f"to B, which started where A's commit on revoke left off: every word counted once.",
            answer,
        )
    at_risk = sum(first.counted_at_revoke.get(p, 0) for p in moved)
    twice = sum(max(0, counts.get(w, 0) - n) for w, n in ledger.items())
    lost = sum(max(0, n - counts.get(w, 0)) for w, n in ledger.items())
    if lost:
        return Verdict(
            False, f"{lost} words were never counted: a commit went past what was counted.", answer
        )
    return Verdict(
        False,
        f"{twice} words were counted twice: when its partitions were revoked, member A had "
        f"counted {at_risk} records of partition(s) {moved} without committing them; they moved "
        "to member B, which read them again from the last commit.",
        answer,
        {"counted_twice": twice, "at_risk": at_risk},
    )


def assignment(answer: list[int], settings: Settings | None = None) -> Verdict:
    """The prediction (partitions per member, largest first) against a real group.

    The group has two members, the topic three partitions.
    """
    from helpers.groups import ConsumerGroup

    try:
        predicted = sorted((int(n) for n in answer), reverse=True)
    except (TypeError, ValueError):
        return Verdict(False, f"prediction must be a list of numbers, like [1, 1]; got {answer!r}")
    settings = settings or load()
    topic = topics.fresh_topic("exercise07", partitions=3, settings=settings)
    group = ConsumerGroup(topic, settings=settings)
    try:
        group.add()
        group.add()
        rows = group.wait_settled()
    finally:
        group.stop()
        topics.delete_topic(topic, settings)
    real = sorted((len(row["partitions"]) for row in rows), reverse=True)
    if predicted == real:
        return Verdict(True, f"the group really split its partitions {real}.", answer)
    return Verdict(
        False, f"the group split its partitions {real}; you predicted {predicted}.", answer
    )


def judge_width(width: int, slots: int, partitions: int) -> Verdict:
    """A Flink parallelism against a cluster's slots and a topic's partitions.

    Every instance needs a slot of its own, and one with no partition to read sits idle (Kafka splits
    a topic by partition, never finer).
    """
    best = min(slots, partitions)
    if width > slots:
        return Verdict(
            False,
            f"{width} instances need {width} slots, and the cluster has {slots}: the job would wait "
            "for slots that never come.",
        )
    if width > partitions:
        return Verdict(
            False,
            f"{width - partitions} of {width} instances would sit idle: the topic has {partitions} "
            "partitions, and a partition is read by one instance.",
        )
    if width < best:
        return Verdict(
            False,
            f"{width} leaves {best - width} slot(s) unused while {partitions} partitions share "
            f"{width} instances: the job could run {best} wide.",
        )
    return Verdict(
        True,
        f"{width} wide: one slot and at least one partition for every instance ({slots} slots, "
        f"{partitions} partitions on the real cluster).",
        details={"width": width},
    )


def flink_width(
    answer: Callable[[int, int, int], int], rest: str, topic: str, settings: Settings | None = None
) -> Verdict:
    """The learner's width, given the real cluster's TaskManagers and slots and the real topic."""
    from helpers.engine_rest import flink_slots

    taskmanagers, slots = flink_slots(rest)
    if not taskmanagers:
        raise CourseError(f"Flink's JobManager at {rest} lists no TaskManager: is the cluster up?")
    partitions = len(topics.latest_offsets(topic, settings or load()))
    width = answer(partitions, taskmanagers, slots // taskmanagers)
    if not isinstance(width, int) or isinstance(width, bool):
        return Verdict(False, f"flink_width must return a whole number; it returned {width!r}.")
    verdict = judge_width(width, slots, partitions)
    return Verdict(verdict.ok, verdict.message, answer, verdict.details)
