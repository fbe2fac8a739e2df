"""End-to-end latency per engine: from a record's send to the moment its count shows in the snapshot.

One producer on a one-partition topic sends records in order, and every engine counts them in that
order; so when an engine's record count moves from R0 to R1, records R0..R1-1 have just become visible,
and each one's latency is now minus the time it was sent (:meth:`WordProducer.sent_at`). A micro-batch
makes many records visible at once, the oldest after a whole trigger: sampling across each jump, not
only its last record, lets Spark's steps and Flink's record-at-a-time flow show in the percentiles.

Start-up is not latency: an engine compiling its first batch holds records for seconds. The meter
notes when every engine has *caught up* — counted all that was sent by the time the slowest of them
showed its first count — and from then on reports the steady state alone (``steady_since``); until
then it reports what it has, start-up included.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

from helpers.consumers.base import WordCounter

PER_JUMP = 20  # records sampled across one jump of an engine's count
EVERY = (
    0.005  # seconds between two looks at the engines' record counts (adds half of it on average)
)


class LatencyMeter:
    """Samples each counter's snapshot in a background thread and keeps recent latencies (bounded)."""

    def __init__(self, producer, counters: list[WordCounter], keep: int = 5000) -> None:
        self.producer = producer
        self.counters = counters
        self._samples = {c.label: deque(maxlen=keep) for c in counters}  # engine -> (sent, seconds)
        self._seen = {c.label: 0 for c in counters}
        self._backlog: int | None = None  # records sent when every engine had shown a first count
        self.steady_since: float | None = None  # when every engine had counted that backlog
        self.error: str | None = None  # why sampling stopped early, if it did
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
                self._samples[engine].append((sent, now - sent))
        self._seen[engine] = records

    def note_progress(self, sent: int, now: float) -> None:
        """Mark the steady state's start: ``sent`` records have been sent by ``now``."""
        if self.steady_since is not None:
            return
        if self._backlog is None:
            if all(self._seen.values()):  # every engine has counted something
                self._backlog = sent
            return
        if all(seen >= self._backlog for seen in self._seen.values()):
            self.steady_since = now

    def _loop(self) -> None:
        try:
            self._sample_until_stopped()
        except Exception as error:  # shown in one line by whoever shows the latency; never a trace
            self.error = f"latency: {type(error).__name__}: {error}"

    def _sample_until_stopped(self) -> None:
        noted = 0.0
        while not self._stop.wait(EVERY):
            for counter in self.counters:
                self.observe(counter.label, counter.records_shown(), time.monotonic())
            now = time.monotonic()
            if self.steady_since is None and now - noted >= 0.1:  # the producer's stats: not cheap
                self.note_progress(self._sent(), now)
                noted = now

    def _sent(self) -> int:
        return self.producer.stats().acked

    def percentiles(self) -> dict[str, dict[str, float] | None]:
        """{engine: {"p50": ms, "p99": ms}} (None for an engine with no sample yet).

        Once steady, only records sent since then count (all of them while an engine has fewer
        than two samples since: a short run may end just as it steadies).
        """
        result: dict[str, dict[str, float] | None] = {}
        since = self.steady_since
        for engine, samples in self._samples.items():
            every = list(samples)
            steady = [late for sent, late in every if since is not None and sent >= since]
            values = sorted(steady if len(steady) >= 2 else [late for _, late in every])
            if len(values) < 2:
                result[engine] = None
                continue
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            result[engine] = {"p50": round(cuts[49] * 1000, 1), "p99": round(cuts[98] * 1000, 1)}
        return result
