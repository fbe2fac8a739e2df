"""The one interface every word counter shares, whatever engine runs underneath.

A counter is started, shows a :class:`Snapshot` of its counts while it runs, and is stopped. The live
view and the reconciliation only ever see snapshots, so they do not care which engine made them.
Bounded modes (:class:`Bound`) let scripts, tests and CI runs end on their own.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka.errors import KafkaError

from helpers import engines
from helpers.config import Settings, load
from helpers.errors import CourseError
from helpers.wait import wait_until

_live: weakref.WeakSet[WordCounter] = weakref.WeakSet()
SWITCH_INTERVAL = 0.001  # seconds a thread may hold the GIL while others wait (Python: 0.005)
BROKER_AWAY_LIMIT = 120.0  # seconds a counter waits for a broker that went away, then reports it


@dataclass(frozen=True)
class Bound:
    """When a bounded run ends; all None means never.

    It ends after ``duration`` seconds, after ``count`` records, or once caught up with the end of the
    topic and idle for ``until_idle`` seconds — whichever comes first.
    """

    duration: float | None = None
    count: int | None = None
    until_idle: float | None = None

    def __post_init__(self) -> None:
        for name in ("duration", "count", "until_idle"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise CourseError(f"--{name.replace('_', '-')} must be 0 or more, not {value}.")

    @property
    def bounded(self) -> bool:
        """True when at least one limit is set."""
        return any(v is not None for v in (self.duration, self.count, self.until_idle))

    def reached(self, elapsed: float, records: int, caught_up: bool, idle: float) -> bool:
        """Has the run gone on long enough? The one place every engine asks it."""
        if self.duration is not None and elapsed >= self.duration:
            return True
        if self.count is not None and records >= self.count:
            return True
        return self.until_idle is not None and caught_up and idle >= self.until_idle


def epoch_seconds(iso: str | None) -> float | None:
    """An engine's UTC time ('2026-12-04T20:15:03.123Z') in epoch seconds; None for none yet.

    None too for times at or before the epoch: Spark's watermark before its first data (1970) and
    Flink's (Long.MIN_VALUE) both mean "no watermark yet".
    """
    if not iso:
        return None
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    return seconds if seconds > 0 else None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Progress:
    """What an engine reports to the watch loop at each tick."""

    records: int  # records counted so far
    caught_up: bool = False  # everything on the topic up to now has been counted
    ended: bool = False  # the engine stopped by itself (its bounded job finished, or it failed)


@dataclass(frozen=True)
class Snapshot:
    """What a counter knows at one moment."""

    engine: str
    counts: dict[str, int]  # word -> running total
    records: int  # records read (skipped ones included)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> records
    windows: list[dict] = field(default_factory=list)  # {"start", "end", "word", "count"}
    lag: int | None = None  # records on the topic not read yet, when known
    rate: float = 0.0  # records per second lately
    running: bool = False
    partitions: list[int] = field(default_factory=list)  # partitions this counter reads
    error: str | None = None
    lost: int = 0  # records deleted from the topic before this counter could read them
    # event time (epoch seconds) of a window engine: the newest it has seen, and its watermark (the
    # time up to which it takes windows as complete); None until it reports one
    newest_event: float | None = None
    watermark: float | None = None

    @property
    def skipped_total(self) -> int:
        """All skipped records, whatever the reason."""
        return sum(self.skipped.values())

    def window_counts(self) -> dict[tuple[str, str], int]:
        """The windows as (start, word) -> count: the shape of ``WordProducer.event_windows()``."""
        return {(row["start"], row["word"]): row["count"] for row in self.windows}

    def as_json(self) -> dict:
        """The CLI's JSON shape: engine, records, skipped, counts (and windows when there are any)."""
        data = {
            "engine": self.engine,
            "records": self.records,
            "skipped": self.skipped_total,
            "skipped_by_reason": self.skipped,
            "counts": dict(sorted(self.counts.items())),
        }
        engine = engines.of_label(self.engine)
        if engine is None or engine.windows:
            data["windows"] = self.windows
        if self.newest_event is not None:  # UTC, to the millisecond
            data["event_time"] = {
                "newest": _iso(self.newest_event),
                "watermark": None if self.watermark is None else _iso(self.watermark),
            }
        if self.lost:
            data["lost"] = self.lost
            data["error"] = self.error or (
                f"{self.lost} records were deleted from the topic before they could be counted "
                "(retention or a re-created topic): these counts cannot match the ledger."
            )
        elif self.error:
            data["error"] = self.error
        return data


class RateMeter:
    """Records per second over the last couple of seconds, sampled by the counter's own loop."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._samples: list[tuple[float, int]] = []

    def add(self, total: int) -> None:
        """Note the running total now."""
        now = time.monotonic()
        self._samples.append((now, total))
        self._samples = [s for s in self._samples if now - s[0] <= self.window] or self._samples[
            -1:
        ]

    @property
    def rate(self) -> float:
        """The latest rate (0 before two samples)."""
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


class WordCounter(ABC):
    """Count words on a topic with some engine; this class owns the lifecycle, engines fill in hooks.

    ``start()`` calls the engine's ``_open()`` and starts one watch loop that asks ``_progress()`` at
    every tick and ends the run when the bound is reached or the engine ended; ``stop()`` (or the end
    of a bounded run) calls ``_close()`` exactly once. An engine implements ``_open``, ``_progress``,
    ``_close`` and ``snapshot``.
    """

    engine = "base"
    tick = 0.5  # seconds between two looks at the engine's progress

    def __init__(
        self,
        topic: str | None = None,
        group: str | None = None,
        from_beginning: bool = True,
        bound: Bound | None = None,
        settings: Settings | None = None,
    ) -> None:
        """Take the options every engine shares.

        The topic, its own consumer group (an unnamed one gets a fresh name, course-<engine>-<id>),
        where to start, when to stop (a bound), and the settings.
        """
        self.settings = settings or load()
        self.topic = topic or self.settings.topic
        self.group = group or f"course-{self.engine}-{uuid.uuid4().hex[:8]}"
        self.from_beginning = from_beginning
        self.bound = bound or Bound()
        self.started_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._meter = RateMeter()
        self._error: str | None = None
        self._finished = threading.Event()
        self._closing = threading.Lock()
        self._monitor: threading.Thread | None = None
        self._first_count_at: float | None = None
        _live.add(self)

    # --- the hooks an engine fills in ------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Start the engine's work in the background (a one-line CourseError if it cannot)."""

    @abstractmethod
    def _progress(self) -> Progress:
        """Records counted, caught up or not, ended or not: asked once per tick by the watch loop."""

    @abstractmethod
    def _close(self, stopped: bool, **options) -> None:
        """Stop everything the engine started and read its last results.

        ``stopped`` is True when ``stop()`` asked (finish what has arrived), False when the bound
        was reached or the engine ended by itself.
        """

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """The counts so far (cheap; safe to call from any thread)."""

    # --- the lifecycle -------------------------------------------------------------------------

    def start(self) -> WordCounter:
        """Begin counting in the background; returns self, so ``counter = X().start()`` reads well."""
        if self.started_at is not None:
            return self
        self.started_at = time.monotonic()
        # Counters share this process (and its GIL) with the producer and each other: handing the GIL
        # on every 1 ms instead of Python's 5 keeps a poll loop from waiting behind a busy neighbour.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        try:
            self._open()
        except BaseException:
            try:  # release what _open got as far as starting (a Spark session, a consumer)
                self._finish(stopped=False)
            except Exception:  # the first error is the one to show
                pass
            raise
        self._monitor = threading.Thread(
            target=self._watch, name=f"{self.engine}-counter-{self.group}", daemon=True
        )
        self._monitor.start()
        return self

    def stop(self, timeout: float = 60.0, **options) -> Snapshot:
        """Stop everything this counter started; returns the final snapshot.

        Engine options pass through to its ``_close`` (Flink: ``savepoint=True``).
        """
        self._stop.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout)
        self._finish(stopped=True, timeout=timeout, **options)
        return self.snapshot()

    def _finish(self, stopped: bool, **options) -> None:
        with self._closing:
            if self._finished.is_set():
                return
            try:
                if self.started_at is not None:
                    self._close(stopped, **options)
            finally:
                self._finished.set()

    def _watch(self) -> None:
        started = idle_since = time.monotonic()
        last_records = -1
        away_since: float | None = None  # when looking at the engine's progress began to fail
        try:
            while not self._stop.wait(self.tick):
                try:
                    progress = self._progress()
                    away_since = None
                except (CourseError, KafkaError, OSError):  # the broker is away: the engine waits
                    away_since = away_since or time.monotonic()
                    if time.monotonic() - away_since > BROKER_AWAY_LIMIT:
                        raise
                    continue
                self._meter.add(progress.records)
                now = time.monotonic()
                if progress.records != last_records:
                    last_records, idle_since = progress.records, now
                if progress.ended or self.bound.reached(
                    now - started, progress.records, progress.caught_up, now - idle_since
                ):
                    break
        except Exception as error:  # e.g. the broker went away: report it, then stop cleanly
            self._error = self._error or f"{type(error).__name__}: {error}"
        if not self._stop.is_set():
            self._finish(stopped=False)

    def leftovers(self) -> list:
        """What this counter keeps after it stops, for a restart: folders (Path) and topics (str)."""
        return []

    def records_shown(self) -> int:
        """How many records the counts shown so far cover: ``snapshot().records``, for less.

        The latency meter asks every few milliseconds; an engine answers without copying its counts.
        """
        return self.snapshot().records

    def _counted(self) -> None:
        """Note the first time counts arrive (for ``seconds_to_first_count``); call with the lock."""
        if self._first_count_at is None:
            self._first_count_at = time.monotonic()

    @property
    def seconds_to_first_count(self) -> float | None:
        """From start() to the first counts shown."""
        if self._first_count_at is None or self.started_at is None:
            return None
        return self._first_count_at - self.started_at

    def _snapshot(self, **fields) -> Snapshot:
        """A Snapshot of this counter: engine, rate, running and error filled in, the rest given."""
        return Snapshot(
            engine=self.engine,
            rate=self._meter.rate if self.running else 0.0,  # a stopped counter reads nothing
            running=self.running,
            error=self._error,
            **fields,
        )

    @property
    def label(self) -> str:
        """Its name in charts, stats and verdicts: the engine, unless a kind of counter says more."""
        return self.engine

    @property
    def running(self) -> bool:
        """True until the counter stops (by itself in a bounded run, or by ``stop()``)."""
        return not self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a bounded run ends; True if it did within ``timeout``."""
        return self._finished.wait(timeout)

    def wait_for(self, records: int = 1, timeout: float = 120.0) -> Snapshot:
        """Block until the counter has read at least ``records`` records (or stopped, or timed out)."""

        def enough() -> bool:
            snapshot = self.snapshot()
            return snapshot.records >= records or not snapshot.running

        wait_until(enough, timeout, "", every=0.1, on_timeout="return")
        return self.snapshot()

    def run(self, bound: Bound, timeout: float | None = None) -> Snapshot:
        """Start, wait for the bound (or ``timeout`` s), stop; the final snapshot."""
        if not bound.bounded and timeout is None:
            raise CourseError("An unbounded run needs a bound: duration, count or until_idle.")
        self.bound = bound
        self.start()
        try:
            self.wait(timeout)
        finally:
            result = self.stop()
        return result

    def __enter__(self) -> WordCounter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all() -> None:
    """Stop every counter still running in this process (at exit, and from notebooks' stop cells)."""
    for counter in list(_live):
        try:
            running = counter.running
        except AttributeError:  # made in part only: its constructor refused its options
            continue
        if running:
            counter.stop()


atexit.register(stop_all)
