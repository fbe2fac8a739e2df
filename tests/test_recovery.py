"""Crash recovery: a counter's whole process tree is killed (SIGKILL) mid-stream, then resumed on its group.

This is the course's exactly-once promise, tested the hard way (the plain engine: its durable counter,
counts and offsets stored together in SQLite): `python -m helpers
consume --engine E --group G` runs in its own process group while words are produced; the group is killed
with SIGKILL once the engine has counted some words and written a checkpoint; a new `consume` on the
same group with `--until-idle` must end with counts equal to the producer's ledger.
"""

from __future__ import annotations

import sqlite3
import subprocess
import uuid

import pytest
from support import kill_mid_stream, resume_and_match

from helpers import engines
from helpers.config import PROJECT_ROOT
from helpers.guarantees import consume_command
from helpers.producer import WordProducer

pytestmark = pytest.mark.jvm


def _checkpointed(engine: str, settings, group: str) -> bool:
    """True once the engine has completed a checkpoint that holds some counted records."""
    if engine == "kafka":
        store = settings.data_dir / "plain-counter.sqlite"
        if not store.exists():
            return False
        with sqlite3.connect(store) as db:
            row = db.execute("SELECT SUM(records) FROM position WHERE grp=?", (group,)).fetchone()
        return bool(row and row[0])
    root = settings.data_dir / "checkpoints" / f"{engine}-{group}"
    if engine == "flink":
        return any(root.glob("checkpoints/*/chk-*/_metadata"))
    return any(path.name != "0" for path in (root / "totals" / "commits").glob("*"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("engine", engines.NAMES)
def test_kill_9_mid_stream_then_resume_on_the_group_counts_exactly(engine, settings, topic):
    group = f"crash-{uuid.uuid4().hex[:8]}"
    first = subprocess.Popen(
        consume_command(engine, topic, group), cwd=PROJECT_ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    producer = WordProducer(topic=topic, rate=400, duration=300, seed=5, settings=settings).start()
    stats = kill_mid_stream(
        first, producer, lambda: _checkpointed(engine, settings, group), 240,  # a slow JVM start
        f"the {engine} counter's first checkpoint",
    )  # fmt: skip
    assert stats.failed == 0 and stats.acked > 1000
    resume_and_match(consume_command(engine, topic, group), stats, timeout=240)
