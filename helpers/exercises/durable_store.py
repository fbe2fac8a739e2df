"""Chapter 08's exercise, graded by crashing it: a batch's counts and next offsets in one transaction.

The learner writes ``save_batch(db, batch)`` (store a polled batch's word counts and where each of its
partitions goes on) and ``resume_at(db, partition)`` (where a restarted process reads on). The grader
runs them in a real poll loop on a real topic, then kills the loop at two moments of its second batch —
mid-transaction, and just after the first commit — and restarts it on the same SQLite file. A process
killed with SIGKILL leaves a SQLite file as it was at its last commit (the open transaction is rolled back
on the next open); here the grader closes the connection without committing, which leaves the file the
same way. Exactly-once means the stored counts equal the ledger after every crash.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from helpers import topics
from helpers.config import Settings, load
from helpers.exercises.graders import Verdict, _practice_topic, after_a_crash, at_the_end
from helpers.wait import batches_until_idle

SCHEMA = """
CREATE TABLE IF NOT EXISTS counts (word TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);
"""
BATCH = 50  # records per poll: the practice topic's 600 words make about a dozen batches
IDLE = 1.5  # seconds without records that end a run: everything was read


def open_store(path: Path | str) -> sqlite3.Connection:
    """A SQLite file with the exercise's two tables (``counts`` and ``offsets``), made if new."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    return db


class _Crash(Exception):
    """The process 'dies' here: nothing after this database call runs, nothing uncommitted stays."""


class _Armed:
    """When a run of the loop dies.

    At its ``call``-th database call from the 2nd batch on, or at the first call after the first
    commit from the 2nd batch on; never twice.
    """

    def __init__(self, call: int | None = None, after_commit: bool = False) -> None:
        self.call, self.after_commit = call, after_commit
        self.calls = 0
        self.live = False  # set when the 2nd batch begins

    def before_call(self) -> None:
        if not self.live:
            return
        self.calls += 1
        if self.call is not None and self.calls >= self.call:
            self.live = False
            raise _Crash

    def committed(self) -> None:
        if self.live and self.after_commit:
            self.call, self.after_commit = self.calls + 1, False


class _DyingCursor(sqlite3.Cursor):
    def execute(self, *args, **kwargs):
        self.connection.armed.before_call()
        return super().execute(*args, **kwargs)

    def executemany(self, *args, **kwargs):
        self.connection.armed.before_call()
        return super().executemany(*args, **kwargs)


class _DyingConnection(sqlite3.Connection):
    """A real SQLite connection whose process can die at a chosen call (see :class:`_Armed`)."""

    armed = _Armed()

    def cursor(self, factory=_DyingCursor):
        return super().cursor(factory)

    def execute(self, *args, **kwargs):
        return self.cursor().execute(*args, **kwargs)

    def executemany(self, *args, **kwargs):
        return self.cursor().executemany(*args, **kwargs)

    def commit(self) -> None:
        self.armed.before_call()
        super().commit()
        self.armed.committed()

    def __exit__(self, kind, error, trace):
        if kind is None:  # `with db:` commits here
            self.armed.before_call()
        result = super().__exit__(kind, error, trace)
        if kind is None:
            self.armed.committed()
        return result


def _run(
    save: Callable, resume: Callable, topic: str, path: Path, settings: Settings, armed: _Armed
) -> bool:
    """The course's poll loop with the learner's two functions, until all is read; True if it died.

    Partitions are assigned, not shared in a group: the store alone says where to read on.
    """
    db = sqlite3.connect(path, factory=_DyingConnection)
    db.armed = armed
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        max_poll_records=BATCH,
    )
    try:
        ends = topics.latest_offsets(topic, settings)  # written in full before the run
        partitions = [TopicPartition(topic, p) for p in sorted(ends)]
        consumer.assign(partitions)
        for tp in partitions:
            at = resume(db, tp.partition)
            if at is None:
                consumer.seek_to_beginning(tp)
            elif isinstance(at, int) and not isinstance(at, bool) and at >= 0:
                consumer.seek(tp, at)
            else:
                raise ValueError(
                    f"resume_at must return an offset (an int >= 0) or None, not {at!r}"
                )

        batches_read = batches_until_idle(
            consumer, IDLE, 120, done=lambda: at_the_end(consumer, ends)
        )
        for batches, batch in enumerate(batches_read, start=1):
            if batches == 2:
                armed.live = True  # from here on, until the process has died once
            try:
                save(db, batch)
            except _Crash:
                return True
        return False
    finally:
        consumer.close()
        db.close()  # no commit: whatever the learner left uncommitted is rolled back, as after kill -9


def _stored(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT word, n FROM counts").fetchall())


def _differs(stored: dict[str, int], ledger: dict[str, int], moment: str) -> str | None:
    """What is wrong with the stored counts after ``moment``, in one sentence; None if nothing."""
    return after_a_crash(
        stored, ledger, moment, "the store",
        empty="a transaction that is never committed is rolled back when its connection closes "
        "(`with db:` commits at its end).",
        twice="the restart read again records whose counts were already saved. The next offsets "
        "must be saved in the same transaction as the counts, and resume_at must return them.",
        lost="counts that were never saved, or offsets saved past counts that were not.",
    )  # fmt: skip


def grade(answer: tuple[Callable, Callable], settings: Settings | None = None) -> Verdict:
    """Fair weather, then a crash mid-transaction, then a crash just after a commit; each restarted."""
    save, resume = answer
    settings = settings or load()
    topic, ledger = _practice_topic(settings, words=600, partitions=3, seed=8)
    moments = {
        "Undisturbed": _Armed(),
        "Killed in the middle of saving the 2nd batch, then restarted": _Armed(call=2),
        "Killed just after the 2nd batch's first commit, then restarted": _Armed(after_commit=True),
    }
    try:
        with tempfile.TemporaryDirectory(prefix="exercise08-") as folder:
            for number, (moment, armed) in enumerate(moments.items()):
                path = Path(folder) / f"counts-{number}.sqlite"
                open_store(path).close()
                died = _run(save, resume, topic, path, settings, armed)
                if died:
                    _run(save, resume, topic, path, settings, _Armed())  # the restart
                wrong = _differs(_stored(path), ledger, moment)
                if wrong:
                    return Verdict(False, wrong, answer)
                if not died and armed.call is not None:
                    return Verdict(
                        False, "your save_batch made no database call to die in.", answer
                    )
            restarted = _stored(path)
            _run(save, resume, topic, path, settings, _Armed())  # a restart with nothing new
            wrong = _differs(_stored(path), restarted, "Restarted once more with nothing new")
            if wrong:
                return Verdict(False, wrong, answer)
    finally:
        topics.delete_topic(topic, settings)
    words = sum(ledger.values())
    return Verdict(
        True,
        f"{words} words stored exactly once, undisturbed and after being killed mid-transaction "
        f"and just after a commit: exactly-once, with one SQLite file ({math.ceil(words / BATCH)}+ "
        "batches, 3 partitions).",
        answer,
    )
