"""What an output guarantee costs, measured: how fast a counter catches up, and how late its results show.

Chapter 10's closing table. For one engine under one guarantee: a backlog of words (stamped up to a
minute back, so Flink's windows close as it reads them) is counted by a fresh counter writing its results
to a fresh topic. Two figures come out:

- **catch-up** (words/s): the backlog over the time from the counter's first count to its last, as its
  snapshot shows them: the writing of results (transactions and all) is inside that time;
- **visible after** (ms): for each result record, from when the counter wrote it (the record's Kafka
  timestamp) to when a ``read_committed`` reader first got it. At-least-once results show at once; a
  transaction's only once it commits: a batch later (plain, Spark), at the next checkpoint (Flink).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
import uuid
from dataclasses import dataclass

from matplotlib.figure import Figure

from helpers import topics
from helpers.config import Settings, load
from helpers.consumers.registry import make_counter
from helpers.consumers.results import assign_from_start, results_reader
from helpers.errors import CourseError
from helpers.guarantees import remove_leftovers
from helpers.picture import Picture
from helpers.producer import WordProducer
from helpers.wait import wait_until

BACKLOG = 120_000  # words counted: about a second of work for every engine here
SETTLE = 0.5  # seconds given to results still to show once every word is counted
SETTLE_FLINK = 2.5  # ... Flink's, written at its windows' close: its next checkpoint (every 2 s)


@dataclass(frozen=True)
class Cost:
    """One engine under one guarantee, measured on the same backlog."""

    engine: str
    exactly_once: bool
    words: int
    catch_up_seconds: float
    visible_after_ms: list[float]  # one per result record read

    def row(self) -> dict[str, object]:
        """One row of the chapter's table."""
        delays = sorted(self.visible_after_ms)
        return {
            "engine": self.engine,
            "guarantee": "exactly-once" if self.exactly_once else "at-least-once",
            "catch-up (words/s)": round(self.words / max(self.catch_up_seconds, 1e-3)),
            "results visible after, p50 (ms)": _rounded(_percentile(delays, 50)),
            "p99 (ms)": _rounded(_percentile(delays, 99)),
            "result records": len(delays),
        }


def _rounded(value: float) -> int | None:
    return None if math.isnan(value) else round(value)  # None: no result record was read


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    return (
        statistics.quantiles(values, n=100, method="inclusive")[p - 1]
        if len(values) > 1
        else values[0]
    )


class _ResultsWatcher:
    """Reads a results topic read_committed from its start, noting how late each record showed."""

    def __init__(self, topic: str, settings: Settings) -> None:
        self.delays_ms: list[float] = []
        self._stop = threading.Event()
        self._consumer = results_reader(settings)
        self._topic = topic
        self._thread = threading.Thread(target=self._read, name="results-watcher", daemon=True)

    def start(self) -> _ResultsWatcher:
        self._thread.start()
        return self

    def _read(self) -> None:
        assigned = False
        while not self._stop.is_set():
            if not assigned:  # the counter creates the topic as it starts
                assigned = bool(assign_from_start(self._consumer, self._topic))
                if not assigned:
                    time.sleep(0.05)
                    continue
            for records in self._consumer.poll(timeout_ms=20).values():
                now_ms = time.time() * 1000
                self.delays_ms += [max(now_ms - r.timestamp, 0.0) for r in records]

    def stop(self) -> list[float]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._consumer.close()
        return self.delays_ms


def measure(
    engine: str, exactly_once: bool, settings: Settings | None = None, words: int = BACKLOG
) -> Cost:
    """Count ``words`` with ``engine`` writing results under the guarantee; the figures.

    A first quarter warms the counter up (its start is not the guarantee's cost); the rest is sent at
    full speed while it runs, and timed from the first send to the last count.
    """
    settings = settings or load()
    tag = uuid.uuid4().hex[:8]
    topic = topics.fresh_topic(f"cost-{engine}", settings=settings)
    group, results = f"cost-{engine}-{tag}", f"cost-results-{engine}-{tag}"
    warm_up = words // 4
    counter = make_counter(
        engine, topic=topic, group=group, settings=settings, from_beginning=False,
        results_topic=results, exactly_once=exactly_once,
    )  # fmt: skip
    watcher = _ResultsWatcher(results, settings)
    try:
        _send(topic, warm_up, settings)
        watcher.start()
        counter.start()
        _wait_for_count(counter, warm_up)
        began = time.monotonic()
        _send(topic, words - warm_up, settings)
        _wait_for_count(counter, words)
        catch_up = time.monotonic() - began
        time.sleep(SETTLE_FLINK if engine == "flink" else SETTLE)
    finally:
        counter.stop()
        delays = watcher.stop()
        remove_leftovers(engine, topic, group, results, settings)
        topics.delete_topic(topic, settings)
    return Cost(engine, exactly_once, words - warm_up, catch_up, delays)


def _send(topic: str, count: int, settings: Settings) -> None:
    """``count`` words at full speed, stamped up to a minute back: Flink's windows close as it reads."""
    producer = WordProducer(rate=math.inf, topic=topic, count=count, jitter=60.0, settings=settings)
    producer.start().wait()
    producer.stop()


def _wait_for_count(counter, records: int) -> None:
    def counted() -> bool:
        snapshot = counter.snapshot()
        if snapshot.error:
            raise CourseError(f"The {counter.engine} counter failed: {snapshot.error}")
        return snapshot.records >= records

    wait_until(counted, 180, f"the {counter.engine} counter to count {records} words", every=0.02)


def delays_picture(costs: list[Cost]) -> Picture:
    """Each run's result records by how late they showed (log scale): the checkpoint's wait stands out."""
    figure = Figure(figsize=(9, 0.5 + 0.5 * len(costs)), layout="constrained")
    axes = figure.subplots()
    labels = [f"{c.engine}, {'exactly-once' if c.exactly_once else 'at-least-once'}" for c in costs]
    axes.boxplot(
        [[max(d, 0.5) for d in c.visible_after_ms] or [math.nan] for c in costs],
        orientation="horizontal", tick_labels=labels, showfliers=False,
    )  # fmt: skip
    axes.set_xscale("log")
    axes.invert_yaxis()
    axes.set_xlabel("results visible to a read_committed reader after (ms, log scale)")
    axes.grid(axis="x", alpha=0.3)
    return Picture(figure)


__all__ = ["BACKLOG", "Cost", "delays_picture", "measure"]
