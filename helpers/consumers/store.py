"""Counts and offsets in one transaction: what makes the plain consumer exactly-once across a crash.

The classic pattern for a consumer without a framework: keep the results and the position they were
computed up to side by side, and change both in one transaction. On start (or when a partition is
assigned) the consumer loads a partition's counts and seeks to the offset stored with them; Kafka's own
committed offsets are then only for show (lag). SQLite in the course's data folder is enough: one file,
many groups and topics, safe for several processes at once (WAL, a busy timeout).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS position (
    grp TEXT, topic TEXT, part INTEGER, next_offset INTEGER, records INTEGER,
    PRIMARY KEY (grp, topic, part));
CREATE TABLE IF NOT EXISTS counts (
    grp TEXT, topic TEXT, part INTEGER, word TEXT, n INTEGER,
    PRIMARY KEY (grp, topic, part, word));
CREATE TABLE IF NOT EXISTS skipped (
    grp TEXT, topic TEXT, part INTEGER, reason TEXT, n INTEGER,
    PRIMARY KEY (grp, topic, part, reason));
"""


class Fenced(Exception):
    """Another member moved this partition on since it was loaded: the batch must not be saved."""


class CountStore:
    """One group's per-partition counts, skips, record totals and next offsets on one topic.

    Safe to use from the poll loop and from kafka-python's rebalance callbacks (one lock).
    """

    def __init__(self, path: Path, group: str, topic: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.key = (group, topic)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed batch survives a power cut too
        self._db.executescript(SCHEMA)

    def load(self, partition: int) -> tuple[int | None, int, Counter[str], Counter[str]]:
        """(next offset or None if never saved, records, counts, skipped) of one partition."""
        with self._lock:
            return self._load(partition)

    def _load(self, partition: int) -> tuple[int | None, int, Counter[str], Counter[str]]:
        key = (*self.key, partition)
        row = self._db.execute(
            "SELECT next_offset, records FROM position WHERE grp=? AND topic=? AND part=?", key
        ).fetchone()
        counts = Counter(
            dict(
                self._db.execute(
                    "SELECT word, n FROM counts WHERE grp=? AND topic=? AND part=?", key
                )
            )
        )
        skipped = Counter(
            dict(
                self._db.execute(
                    "SELECT reason, n FROM skipped WHERE grp=? AND topic=? AND part=?", key
                )
            )
        )
        if row is None:
            return None, 0, counts, skipped
        return row[0], row[1], counts, skipped

    def save(self, batch: dict[int, tuple[int | None, int, int, Counter, Counter]]) -> None:
        """Add a counted batch and move the offsets, all or nothing.

        ``batch`` maps partition -> (next offset it was loaded at, next offset now, records, counts,
        skipped). Raises :class:`Fenced` (and saves nothing) when a partition's stored offset is no
        longer the one this member loaded: someone else counted past it meanwhile.
        """
        with self._lock:
            self._save(batch)

    def _save(self, batch: dict[int, tuple[int | None, int, int, Counter, Counter]]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for partition, (loaded_at, next_offset, records, counts, skipped) in batch.items():
                key = (*self.key, partition)
                row = db.execute(
                    "SELECT next_offset FROM position WHERE grp=? AND topic=? AND part=?", key
                ).fetchone()
                if (row[0] if row else None) != loaded_at:
                    raise Fenced(f"partition {partition} moved on from {loaded_at} to {row[0]}")
                db.execute(
                    "INSERT INTO position VALUES (?, ?, ?, ?, ?) ON CONFLICT (grp, topic, part) "
                    "DO UPDATE SET next_offset=excluded.next_offset, records=records + excluded.records",
                    (*key, next_offset, records),
                )
                for table, column, values in (
                    ("counts", "word", counts),
                    ("skipped", "reason", skipped),
                ):
                    db.executemany(
                        f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?) "  # fixed names, no user input
                        f"ON CONFLICT (grp, topic, part, {column}) DO UPDATE SET n = n + excluded.n",
                        [(*key, name, n) for name, n in values.items()],
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
