"""Chapter 05's second exercise, graded with time out of order: the learner's event-time windows in Flink.

The learner writes the windowed count as Flink SQL over the view ``words`` (word, ts): one row per word
and 5-second window, ``(word, window_start, window_end, count)``. The grader runs it as the windows of a
real Flink job on a fresh topic of 150 words whose timestamps are out of order (each up to 4 s behind the
newest one sent, within the job's 10 s watermark). Once the first window is emitted — the watermark has
passed its end — one more record arrives, stamped inside that window: too late, and Flink must leave the
closed window as it was. A last record far ahead moves the watermark past every other window. The windows
must equal the truth computed from the timestamps, the late record in none of them.
"""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from datetime import datetime

from kafka import KafkaProducer

from helpers import topics
from helpers.config import Settings, load
from helpers.consumers.flink import WINDOW_SECONDS
from helpers.errors import CourseError
from helpers.exercises.graders import Verdict
from helpers.producer import DEFAULT_WORDS
from helpers.wait import wait_until

WORDS = 150  # in 6 windows
SPAN = 6 * WINDOW_SECONDS  # seconds of event time they cover
DISORDER = 4.0  # seconds a record may be behind the newest one sent: within the watermark's 10 s
LATE_WORD, AHEAD_WORD = "latecomer", "tomorrow"


def _events(base: int) -> list[tuple[str, int]]:
    """(word, timestamp in ms) in the order they are sent: by time, each up to DISORDER late."""
    rng = random.Random(5)
    stamped = [
        (rng.choice(DEFAULT_WORDS), base * 1000 + rng.randrange(SPAN * 1000)) for _ in range(WORDS)
    ]
    return sorted(stamped, key=lambda event: event[1] + rng.uniform(0, DISORDER * 1000))


def _send(settings: Settings, topic: str, events: list[tuple[str, int]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    try:
        for word, stamp in events:
            producer.send(topic, word.encode(), timestamp_ms=stamp)
        producer.flush(30)
    finally:
        producer.close()


def _truth(events: list[tuple[str, int]], base: int) -> Counter:
    """{(window number, word): count}: window 0 starts at ``base``."""
    return Counter(((stamp // 1000 - base) // WINDOW_SECONDS, word) for word, stamp in events)


def _numbered(windows: list[dict]) -> Counter:
    """The emitted windows as {(window number, word): count}, numbered by start time from the first."""
    starts = sorted({w["start"] for w in windows})
    first = datetime.fromisoformat(starts[0]) if starts else None
    numbered = Counter()
    for w in windows:
        seconds = (datetime.fromisoformat(w["start"]) - first).total_seconds()
        numbered[(int(seconds // WINDOW_SECONDS), w["word"])] += int(w["count"])
    return numbered


def _run(answer: str, settings: Settings, topic: str) -> tuple[list[dict], str | None]:
    """The learner's windows in a real job over the out-of-order words; (windows, why it failed)."""
    from helpers.consumers.flink import FlinkWordCounter

    base = (int(time.time()) // WINDOW_SECONDS) * WINDOW_SECONDS - 600  # ten minutes ago
    events = _events(base)
    counter = FlinkWordCounter(topic=topic, windowed_count=answer, settings=settings)
    try:
        counter.start()
        _send(settings, topic, events)
        try:
            wait_until(
                lambda: counter.snapshot().error or counter.snapshot().windows, 120, "a window"
            )
        except CourseError:
            return (
                [],
                "your windows were never emitted: is each window grouped by its start and end?",
            )
        if counter.snapshot().error:
            return [], counter.snapshot().error
        # the first window (window 0) is out: a record stamped inside it now comes too late
        _send(settings, topic, [(LATE_WORD, base * 1000 + 1000)])
        _send(settings, topic, [(AHEAD_WORD, (base + SPAN + 60) * 1000)])  # moves the watermark on
        try:
            wait_until(lambda: counter.snapshot().records >= WORDS + 2, 60, "every record read")
            wait_until(
                lambda: (
                    len({w["start"] for w in counter.snapshot().windows}) >= SPAN // WINDOW_SECONDS
                ),
                10,
                "every window",
            )
        except CourseError:
            pass  # judged on what came: the verdict says what is missing
        time.sleep(1.0)  # a late record wrongly counted would show by now
        return counter.snapshot().windows, counter.snapshot().error
    finally:
        counter.stop()
        shutil.rmtree(counter.state_dir, ignore_errors=True)
        topics.delete_topic(counter.readback_topic, settings)


def grade(answer: str, settings: Settings | None = None) -> Verdict:
    """The learner's windows against the truth from the timestamps; the late record in none."""
    if not isinstance(answer, str):
        return Verdict(False, "windowed_count must be a SQL query in quotes.", answer)
    settings = settings or load()
    topic = topics.fresh_topic("exercise05-windows", settings=settings)
    try:
        windows, error = _run(answer, settings, topic)
    finally:
        topics.delete_topic(topic, settings)
    if error:
        return Verdict(False, f"your windows failed in Flink: {error}", answer)
    expected = _truth(_events(0), 0)  # the same words and offsets: numbered from window 0
    got = _numbered([w for w in windows if w["word"] != AHEAD_WORD])
    late = [w for w in windows if w["word"] == LATE_WORD]
    if late:
        return Verdict(
            False,
            f"'{LATE_WORD}' arrived after its window had been emitted, and your query counted it "
            "there anyway: a GROUP BY on a time bucket is a running count that never closes; a "
            "window (TUMBLE) closes when the watermark passes its end.",
            answer,
        )
    if got == expected:
        return Verdict(
            True,
            f"{WORDS} words out of order, in {SPAN // WINDOW_SECONDS} windows of "
            f"{WINDOW_SECONDS} s, each counted in its own; the late '{LATE_WORD}' in none.",
            answer,
        )
    return Verdict(False, _difference(expected, got), answer)


def _difference(expected: Counter, got: Counter) -> str:
    for key in sorted(set(expected) | set(got)):
        if expected.get(key, 0) != got.get(key, 0):
            number, word = key
            return (
                f"window {number} (from {number * WINDOW_SECONDS} s) counts '{word}' "
                f"{got.get(key, 0)} times, its records' timestamps say {expected.get(key, 0)} "
                f"({len({k[0] for k in got})} windows emitted, {SPAN // WINDOW_SECONDS} expected)."
            )
    return "the windows differ from the truth."
