"""End-to-end latency per engine: from a record's send to the moment its count shows in the snapshot.

One producer on a one-partition topic sends records in order, and every engine counts them in that
order; so when an engine's record count moves from R0 to R1, records R0..R1-1 have just become visible,
and each one's latency is now minus the time it was sent (:meth:`WordProducer.sent_at`). A micro-batch
makes many records visible at once, the oldest after a whole trigger: sampling across each jump, not
only its last record, lets Spark's steps and Flink's record-at-a-time flow show in the percentiles.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

from helpers.consumers.base import WordCounter

PER_JUMP = 20  # records sampled across one jump of an engine's count
EVERY = 0.02  # seconds between two looks at the engines' snapshots


class LatencyMeter:
    """Samples each counter's snapshot in a background thread and keeps recent latencies (bounded)."""

    def __init__(self, producer, counters: list[WordCounter], keep: int = 5000) -> None:
        self.producer = producer
        self.counters = counters
        self._samples = {c.label: deque(maxlen=keep) for c in counters}  # engine -> seconds
        self._seen = {c.label: 0 for c in counters}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="latency", daemon=True)

    def start(self) -> LatencyMeter:
        """Begin sampling; returns self."""
        self._thread.start()
        return self

    def stop(self) -> dict[str, dict[str, float] | None]:
        """Stop sampling; the percentiles per engine."""
        self._stop.set()
        self._thread.join(5)
        return self.percentiles()

    def observe(self, engine: str, records: int, now: float) -> None:
        """An engine shows ``records`` counted at ``now``: sample the records that just appeared."""
        first = self._seen[engine]
        if records <= first:
            return
        step = max(1, (records - first) // PER_JUMP)
        for index in range(first, records, step):
            sent = self.producer.sent_at(index)
            if sent is not None:
                self._samples[engine].append(now - sent)
        self._seen[engine] = records

    def _loop(self) -> None:
        while not self._stop.wait(EVERY):
            for counter in self.counters:
                self.observe(counter.label, counter.snapshot().records, time.monotonic())

    def percentiles(self) -> dict[str, dict[str, float] | None]:
        """{engine: {"p50": ms, "p99": ms}} (None for an engine with no sample yet)."""
        result: dict[str, dict[str, float] | None] = {}
        for engine, samples in self._samples.items():
            values = sorted(samples)
            if len(values) < 2:
                result[engine] = None
                continue
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            result[engine] = {"p50": round(cuts[49] * 1000, 1), "p99": round(cuts[98] * 1000, 1)}
        return result
