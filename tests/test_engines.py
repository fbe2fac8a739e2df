"""What every engine must do alike: count exactly the ledger, skip bad records, window the same words."""

import os
from collections import Counter
from pathlib import Path

import pytest
from support import merged, produced

from helpers import class_archive, engines, processes
from helpers.consumers import Bound
from helpers.consumers.registry import make_counter
from helpers.producer import send_raw

pytestmark = pytest.mark.jvm


@pytest.mark.parametrize("engine", engines.NAMES)
def test_counts_and_windows_equal_the_ledger(
    engine, settings, topic, mixed_file, multilingual_file
):
    jittered = produced(topic, count=3000, seed=4, jitter=3.0)  # out of order, none late
    words = jittered.stats()
    text = produced(topic, lines=mixed_file, keep_event_times=True)
    scripts = produced(topic, lines=multilingual_file, keep_event_times=True)
    truth = Counter(jittered.event_windows(5))
    truth.update(text.event_windows(5))
    truth.update(scripts.event_windows(5))
    text, scripts = text.stats(), scripts.stats()
    send_raw([b"", None, b"\xff\xfe"], topic, settings)
    counter = make_counter(engine, topic=topic)
    snapshot = counter.run(Bound(until_idle=1.0), timeout=240)
    assert snapshot.error is None
    assert snapshot.counts == merged(words.ledger, text.ledger, scripts.ledger)
    assert snapshot.records == 3000 + text.acked + scripts.acked + 3
    assert snapshot.skipped == {"empty": 1, "null": 1, "not-utf8": 1}
    if engines.engine(engine).windows:  # Spark and Flink also count per 5-second window
        by_word = {}
        for row in snapshot.windows:
            by_word[row["word"]] = by_word.get(row["word"], 0) + row["count"]
        assert by_word == snapshot.counts  # the windows add up to the running totals
        shown = snapshot.window_counts()
        assert shown == {key: n for key, n in truth.items() if not key[1].startswith("\0")}
        assert all(row["end"] > row["start"] for row in snapshot.windows)
        assert counter.seconds_to_first_count is not None


@pytest.mark.parametrize("engine", engines.JVM_ENGINES)
def test_the_engine_jvm_maps_its_class_archive(engine, settings, topic):
    """`make setup` made the archive; the engine's JVM was given it and kept it mapped.

    A JVM drops an archive silently when a jar on its classpath changed since the archive was made
    (a rebuilt tokenizer did so once): the engine then starts as slowly as without one.
    """
    archive = class_archive.archive_path(engine, settings)
    flag = f"-XX:SharedArchiveFile={archive}"
    assert archive.exists(), f"no {engine} class archive: make setup makes it"
    assert make_counter(engine, topic=topic).run(Bound(until_idle=0.5), timeout=240).error is None
    given = [pid for pid in processes.process_tree(os.getpid()) if flag in _read(pid, "cmdline")]
    assert given, f"no JVM of this process was started with {archive.name}"
    for pid in given:
        assert str(archive) in _read(pid, "maps"), f"the {engine} JVM ({pid}) dropped its archive"


def _read(pid: int, name: str) -> str:
    """/proc/<pid>/<name> as text ('' once the process is gone)."""
    try:
        return (
            Path(f"/proc/{pid}/{name}").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""
