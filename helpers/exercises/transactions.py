"""Chapter 10's exercise, graded by crashing it: a batch's results and its offsets in one transaction.

The learner writes ``count_batch(producer, consumer, batch, results_topic)``: count the batch, write the
increments to the results topic and move the group past the batch, all or nothing. The grader runs it in
the course's poll loop on a real broker and a practice topic (600 words, 3 partitions): undisturbed;
killed in its 2nd batch just before its first commit (the transaction's, or the offsets'); killed just
after that commit. A killed run is restarted on the same group, with a new producer under the same
transactional id, whose ``init_transactions`` aborts whatever the dead one left open. Exactly-once means
the results topic, read ``read_committed``, sums to the ledger after every crash.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from kafka import KafkaConsumer, KafkaProducer

from helpers import topics
from helpers.config import Settings, load
from helpers.consumers.results import TRANSACTION_TIMEOUT_MS, read_results
from helpers.exercises.graders import Verdict, _practice_topic, after_a_crash, at_the_end
from helpers.wait import batches_until_idle

BATCH = 50  # records per poll: the practice topic's 600 words make about a dozen batches
IDLE = 1.5  # seconds without records that end a run: everything was read
# The calls that commit something: the transaction, or the offsets outside it. A crash "before" comes
# before the first of them or of send_offsets_to_transaction; one "after" just after the first of them.
COMMITS = {"commit_transaction", "commit", "commit_async"}
TOWARD_A_COMMIT = COMMITS | {"send_offsets_to_transaction"}


class _Crash(BaseException):
    """The process dies here (a BaseException: an ``except Exception`` in the learner's code lets it by)."""


class _Armed:
    """When a run dies, in its 2nd batch: just before its first step toward a commit, or just after it.

    ``before``: before the first call of :data:`TOWARD_A_COMMIT`; ``after``: right after the first
    call of :data:`COMMITS` returns (the transaction, or the offsets outside it, committed).
    """

    def __init__(self, moment: str | None = None) -> None:
        self.moment = moment
        self.live = False  # set when the 2nd batch begins
        self.fired = False

    def around(self, name: str, call: Callable[[], object]) -> object:
        if not self.live or self.fired or self.moment is None:
            return call()
        if self.moment == "before":
            self.fired = True
            raise _Crash
        result = call()
        if name in COMMITS:
            self.fired = True
            raise _Crash
        return result


class _Dying:
    """A producer or consumer whose commit calls may be the process's last (see :class:`_Armed`)."""

    def __init__(self, target: object, armed: _Armed) -> None:
        self._target, self._armed = target, armed

    def __getattr__(self, name: str):
        attribute = getattr(self._target, name)
        if name not in TOWARD_A_COMMIT:
            return attribute
        return lambda *args, **kwargs: self._armed.around(name, lambda: attribute(*args, **kwargs))


def _run(answer: Callable, topic: str, group: str, results: str, settings: Settings,
         armed: _Armed) -> bool:  # fmt: skip
    """The poll loop with the learner's body, to the topic's end; True if it died on the way."""
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        transactional_id=f"exercise10-{group}",  # a restart's producer aborts what this one left
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
    )
    consumer = KafkaConsumer(
        topic,
        group_id=group,
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=BATCH,
    )
    try:
        producer.init_transactions()
        ends = topics.latest_offsets(topic, settings)  # written in full before the run
        batches = batches_until_idle(consumer, IDLE, 120, done=lambda: at_the_end(consumer, ends))
        for number, batch in enumerate(batches, start=1):
            armed.live = number >= 2
            try:
                answer(_Dying(producer, armed), _Dying(consumer, armed), batch, results)
            except _Crash:
                return True
        return False
    finally:
        consumer.close(autocommit=False)
        # What a crash left open stays uncommitted either way: this close, or the restart, aborts it
        producer.close(timeout=5)


def _differs(on_topic: dict[str, int], ledger: dict[str, int], moment: str) -> str | None:
    """What is wrong with the results topic after ``moment``, in one sentence; None if nothing."""
    return after_a_crash(
        on_topic, ledger, moment, "the results topic",
        empty="a transaction is visible to read_committed readers only once "
        "`producer.commit_transaction()` ran.",
        twice="the restart read again a batch whose counts were committed. The offsets must go "
        "into the same transaction: `producer.send_offsets_to_transaction(offsets, "
        "consumer.group_metadata())` before `commit_transaction()`.",
        lost="offsets committed past counts that never were.",
    )  # fmt: skip


def grade(answer: Callable, settings: Settings | None = None) -> Verdict:
    """Undisturbed, then killed just before and just after its first commit; each restarted."""
    settings = settings or load()
    topic, ledger = _practice_topic(settings, words=600, partitions=3, seed=10)
    moments = {
        "Undisturbed": _Armed(),
        "Killed in its 2nd batch just before committing, then restarted": _Armed("before"),
        "Killed in its 2nd batch just after committing, then restarted": _Armed("after"),
    }
    made: list[str] = []
    try:
        for moment, armed in moments.items():
            tag = uuid.uuid4().hex[:8]
            group, results = f"exercise10-{tag}", f"exercise10-results-{tag}"
            topics.create_topic(results, settings=settings)
            made.append(results)
            died = _run(answer, topic, group, results, settings, armed)
            if armed.moment is not None and not died:
                return Verdict(False, "your count_batch made no commit to die at.", answer)
            if died:
                _run(answer, topic, group, results, settings, _Armed())  # the restart
            wrong = _differs(dict(read_results(results, settings)), ledger, moment)
            if wrong:
                return Verdict(False, wrong, answer)
    finally:
        for name in [topic, *made]:
            topics.delete_topic(name, settings)
    words = sum(ledger.values())
    return Verdict(
        True,
        f"{words} words on the results topic exactly once, undisturbed and after being killed just "
        "before and just after a commit (read_committed, 3 partitions).",
        answer,
    )
