"""WordProducer: sends words to Kafka from a background thread at a rate you can change while it runs.

The seed sent one word every 100 ms with a blocking ``send().get()``. Here sends are asynchronous and
idempotent (``acks=all``); every acknowledged message's words go into the **ledger**, the truth every
consumer's counts are checked against, and a message that failed never does.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer
from kafka import errors as kafka_errors

from helpers.config import DISCOVERY_MS, Settings, load
from helpers.errors import CourseError, no_broker
from helpers.text import tokenize
from helpers.word_client import Chunk, KeyedPartitioner, WordClient, uuid_keys

DEFAULT_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
DEFAULT_MAX_MESSAGE_BYTES = (
    1_048_576  # the broker's message.max.bytes, minus its 12-byte log overhead
)
FAILURE_HINTS = {  # error name -> what it means for a learner, and what to do
    "MessageSizeTooLargeError": "larger than the topic accepts (max.message.bytes); split the "
    "message or raise the topic's limit",
    "KafkaTimeoutError": "not acknowledged within the delivery timeout (was the broker down that "
    "long?); raise delivery_timeout or send again",
    "NotAcknowledged": "still unacknowledged when the producer closed",
}
STUCK_MARGIN = 5.0  # seconds past the delivery timeout before a client's held sends are given up
MAX_JITTER = 60.0  # seconds: out of order enough for any watermark here, not so old Kafka refuses
# seconds back send_late may stamp: a day, well inside a topic's 7-day retention
MAX_LATE = 86_400.0
MAX_BURST = 2000  # sends per loop turn before looking at the rate and the stop flag again
RATE_WINDOW = 2.0  # seconds over which the achieved rate is measured
SEND_HISTORY = (
    60.0  # seconds of send times kept for latency (a count later than that has no latency)
)


@dataclass(frozen=True)
class ProducerStats:
    """A moment's view of the producer; ``ledger`` holds the words of acknowledged messages only."""

    sent: int
    acked: int
    failed: int
    rate: float  # the rate asked for (words/s; inf = as fast as the client can)
    achieved_rate: float  # acknowledged messages per second over the last couple of seconds
    running: bool
    ledger: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # error name -> count

    @property
    def in_flight(self) -> int:
        """Sent but neither acknowledged nor failed yet."""
        return self.sent - self.acked - self.failed

    def failure_summary(self) -> str | None:
        """One line: how many messages failed, why, and what to do; None when none failed."""
        if not self.failed:
            return None
        reasons = "; ".join(
            f"{count} {name}" + (f" ({FAILURE_HINTS[name]})" if name in FAILURE_HINTS else "")
            for name, count in sorted(self.failures.items(), key=lambda item: -item[1])
        )
        return f"{self.failed} of {self.sent} messages failed and are not in the ledger: {reasons}"


def _words_by_second(texts: list[str], stamps: int | list[int]) -> Counter[tuple[int, str]]:
    """The words of ``texts``, counted under their event-time second (``stamps``: ms, one for all).

    Without jitter a burst shares one stamp: one tokenizing for the lot.
    """
    if isinstance(stamps, int):
        counts = Counter(tokenize("\n".join(texts)))
        return Counter({(stamps // 1000, word): n for word, n in counts.items()})
    tally: Counter[tuple[int, str]] = Counter()
    for text, second in zip(texts, (stamp // 1000 for stamp in stamps), strict=True):
        for word in tokenize(text):
            tally[(second, word)] += 1
    return tally


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file, one message each, or a one-line error saying which line is bad."""
    raw = Path(path).read_bytes()
    lines = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise CourseError(
                f"{path} line {number} is not UTF-8; save the file as UTF-8."
            ) from None
    return lines


class WordProducer:
    """Send words (or lines of text) to a topic at ``rate`` messages per second, in the background.

    ``rate`` can be changed while it runs; 0 pauses it and ``math.inf`` sends as fast as the client
    can. Give ``lines`` (a file path or an iterable of strings) to send text instead of random words;
    the producer stops by itself after the last line, after ``count`` messages or after ``duration``
    seconds, whichever comes first. A message not acknowledged within ``delivery_timeout`` seconds
    (Kafka retries until then) counts as failed and never enters the ledger.
    """

    def __init__(
        self,
        rate: float | None = None,
        topic: str | None = None,
        words: Iterable[str] = DEFAULT_WORDS,
        lines: str | Path | Iterable[str] | None = None,
        count: int | None = None,
        duration: float | None = None,
        seed: int | None = None,
        settings: Settings | None = None,
        linger_ms: int = 5,
        batch_size: int = 64 * 1024,
        delivery_timeout: float = 120.0,
        jitter: float = 0.0,
        keep_event_times: bool | None = None,
        partitions: Sequence[int] | None = None,
    ) -> None:
        self.settings = settings or load()
        # only these partitions get words (the topic's others stay idle, as chapter 05 wants)
        self.partitions = tuple(partitions) if partitions else None
        if not 0 <= jitter <= MAX_JITTER:
            raise CourseError(
                f"A jitter of {jitter:g} s is out of range: give 0 (in order) to {MAX_JITTER:g} s."
            )
        # each message's event time: its send time less up to this many seconds
        self.jitter = jitter
        # the (second, word) tally behind event_windows(): kept with jitter unless asked otherwise; it
        # grows with the run's length, so a long in-order run (the producer role) keeps none
        self.keep_event_times = jitter > 0 if keep_event_times is None else keep_event_times
        # jitter draws from a generator of its own: a seed sends the same words with jitter or without
        self._jitter_random = random.Random(None if seed is None else seed + 1_000_003)
        self._late_random = random.Random(None if seed is None else seed + 2_000_003)  # send_late's
        # words send_late sent and the broker acknowledged, by (event-time second, word)
        self._late_by_second: Counter[tuple[int, str]] = Counter()
        self.topic = topic or self.settings.topic
        self._words = tuple(words)
        if not self._words and lines is None:
            raise CourseError(
                "The vocabulary is empty; pass some words, e.g. words=['one', 'two']."
            )
        if isinstance(lines, str | Path):
            lines = read_lines(lines)
        self._lines: Iterator[str] | None = iter(lines) if lines is not None else None
        self._random = random.Random(seed)
        self.count = count
        self.duration = duration
        self._linger_ms = linger_ms
        self._batch_size = batch_size
        self._delivery_timeout_ms = int(delivery_timeout * 1000)  # then a message counts as failed
        self._rate = self._check_rate(self.settings.producer_rate if rate is None else rate)
        self._lock = threading.Lock()
        self._rate_changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: KafkaProducer | None = None
        self._sent = self._acked = self._failed = 0
        self._late_sent = 0  # sent by send_late, beside the thread's own _sent
        # sent (texts, when, their event times in ms: one int when they share it), not settled yet
        self._pending: deque[tuple[Chunk, list[str], float, int | list[int]]] = deque()
        self._limit = DEFAULT_MAX_MESSAGE_BYTES
        self._burst_first: list[int] = []  # index of the first record of each burst ...
        self._burst_time: list[float] = []  # ... and when that burst began (monotonic seconds)
        self._ledger: Counter[str] = Counter()
        self._by_second: Counter[tuple[int, str]] = Counter()  # (event-time second, word) acked
        self._failures: Counter[str] = Counter()
        self._samples: deque[tuple[float, int]] = deque()
        self.error: str | None = None  # why the sending thread ended early, if it did

    # --- the rate ------------------------------------------------------------------------------

    @staticmethod
    def _check_rate(rate: float) -> float:
        if not isinstance(rate, int | float) or math.isnan(rate) or rate < 0:
            raise CourseError(f"Rate {rate!r} is not a number of words per second >= 0.")
        return float(rate)

    @property
    def rate(self) -> float:
        """Messages per second asked for (0 = paused, inf = unthrottled)."""
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        value = self._check_rate(value)
        with self._rate_changed:
            self._rate = value
            self._rate_changed.notify_all()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> WordProducer:
        """Connect and start sending in a background thread; returns self."""
        if self._thread is not None:
            return self
        self._limit = self._largest_batch()
        self.check_partitions(self.partitions)
        self._client = self._connect()
        self._thread = threading.Thread(target=self._run, name="word-producer", daemon=True)
        self._thread.start()
        return self

    def _connect(self) -> WordClient:
        """A new client; a one-line error when no broker answers."""
        try:
            return WordClient(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id="course-producer",
                acks="all",
                enable_idempotence=True,  # retries never duplicate a message
                linger_ms=self._linger_ms,  # wait a few ms so records travel in batches
                batch_size=min(self._batch_size, self._limit),
                max_request_size=self._limit,  # too large a record fails at once, not at the broker
                partitioner=KeyedPartitioner(only=self.partitions),
                delivery_timeout_ms=self._delivery_timeout_ms,
                request_timeout_ms=min(30_000, self._delivery_timeout_ms - self._linger_ms),
                bootstrap_timeout_ms=5000,
                reconnect_backoff_max_ms=2000,  # a restarted broker is found within seconds
                metadata_max_age_ms=DISCOVERY_MS,  # partitions added meanwhile are found soon
            )
        except (kafka_errors.KafkaError, OSError) as error:
            raise no_broker(self.settings.bootstrap_servers, error) from None

    def _close_client(self, timeout: float) -> None:
        """Close the client, failing what it could not send within ``timeout`` seconds.

        kafka-python's ``close()`` raises when its flush times out and leaves the client half open;
        here what is left is aborted, so every future ends and the ledger can settle.
        """
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.flush(timeout=timeout)
            flushed = True
        except kafka_errors.KafkaTimeoutError:
            flushed = False
            client.fail_unsent()
        try:  # all sent or failed now: close() finds nothing to flush, and its I/O thread ends
            client.close(timeout=timeout if flushed else 1.0)
        except kafka_errors.KafkaError:
            pass

    def _give_up_on_client(self) -> None:
        """Replace a client that holds sends far past their delivery timeout.

        kafka-python 3.0's idempotent producer can wedge after a broker outage: it drops its producer
        id, its request for a new one dies with the connection and is never sent again, and from then
        on it neither sends nor expires anything. Its held messages are failed (as timed out, which
        they are) and a new client, with a new producer id, sends what comes next.
        """
        self._close_client(timeout=0)
        self._settle(failed_as="KafkaTimeoutError")
        try:
            self._client = self._connect()
        except CourseError:
            self._client = None  # the broker is still away: the loop tries again

    def check_partitions(self, partitions: Sequence[int] | None) -> None:
        """Partitions asked for must be the topic's: one line saying which it has, if not."""
        if partitions is None:
            return
        from helpers import topics

        rows = topics.describe_topic(self.topic, self.settings)["partitions"]
        have = {row["partition"] for row in rows}
        if not set(partitions) <= have:
            raise CourseError(
                f"Topic {self.topic!r} has partitions {sorted(have)}: give partitions from those "
                f"(not {sorted(set(partitions) - have)})."
            )

    def _largest_batch(self) -> int:
        """The topic's max.message.bytes: no batch may be larger, or the broker refuses it whole.

        A refused batch of many records would be split and retried by kafka-python, which the bulk
        send does not follow; kept within this size, only a record too large by itself fails.
        """
        from helpers import topics

        try:
            found = topics.topic_config(self.topic, ["max.message.bytes"], self.settings)
        except (CourseError, kafka_errors.KafkaError):
            found = {}
        return int(found.get("max.message.bytes", DEFAULT_MAX_MESSAGE_BYTES))

    @property
    def running(self) -> bool:
        """True while the sending thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the producer finishes by itself (count, duration or lines); True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> ProducerStats:
        """Stop sending, wait for every in-flight message's acknowledgement, close; returns the stats."""
        self._stop.set()
        with self._rate_changed:
            self._rate_changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._client is not None:
            self._finish_sends(timeout)
            self._close_client(timeout)
            self._settle()
            with self._lock:  # sends that neither succeeded nor failed by now never will
                unsettled = sum(len(texts) for _, texts, *_ in self._pending)
                self._failed += unsettled
                self._failures.update({"NotAcknowledged": unsettled} if unsettled else {})
                self._pending.clear()
        return self.stats()

    def __enter__(self) -> WordProducer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- results -------------------------------------------------------------------------------

    @property
    def ledger(self) -> dict[str, int]:
        """Word -> count over every message the broker acknowledged."""
        with self._lock:
            return dict(self._ledger)

    def stats(self) -> ProducerStats:
        """Sent, acknowledged, failed, asked and achieved rate, ledger."""
        with self._lock:
            return ProducerStats(
                sent=self._sent + self._late_sent,
                acked=self._acked,
                failed=self._failed,
                rate=self._rate,
                achieved_rate=self._achieved_rate(),
                running=self.running,
                ledger=dict(self._ledger),
                failures=dict(self._failures),
            )

    def _sample(self) -> None:
        """Remember (time, acked) a few times a second; the achieved rate is read off these."""
        now = time.monotonic()
        with self._lock:
            if self._samples and now - self._samples[-1][0] < 0.25:
                return
            self._samples.append((now, self._acked))
            while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW:
                self._samples.popleft()

    def _achieved_rate(self) -> float:
        if not self.running or len(self._samples) < 2:
            return 0.0
        (t0, a0), (t1, a1) = self._samples[0], self._samples[-1]
        return (a1 - a0) / (t1 - t0)

    # --- the sending thread --------------------------------------------------------------------

    def _next_texts(self, count: int) -> list[str]:
        """The next ``count`` messages: random words, or lines (fewer once the lines run out)."""
        if self._lines is not None:
            return list(itertools.islice(self._lines, count))
        return self._random.choices(self._words, k=count)

    def _send(self, texts: list[str]) -> None:
        """Queue messages with fresh UUID keys; their chunks wait in ``_pending`` to be settled."""
        values = [text.encode("utf-8") for text in texts]
        now = time.monotonic()
        stamps = self._event_times(len(texts))
        for chunk in self._client.send_bulk(self.topic, uuid_keys(len(texts)), values, stamps):
            positions = chunk.positions
            chunk_stamps = [stamps[p] for p in positions] if self.jitter else stamps[0]
            self._pending.append((chunk, [texts[p] for p in positions], now, chunk_stamps))
        self._sent += len(texts)

    def _event_times(self, count: int) -> list[int]:
        """Each message's event time (ms): now, or with jitter up to ``jitter`` s earlier, shuffled."""
        now = int(time.time() * 1000)
        if not self.jitter:
            return [now] * count
        spread = int(self.jitter * 1000)
        return [now - self._jitter_random.randint(0, spread) for _ in range(count)]

    def event_windows(self, width: int = 5, late: bool = False) -> dict[tuple[str, str], int]:
        """The event-time truth: acknowledged words per (window start, word), ``width`` s windows.

        Starts are UTC, as the engines print them ('2026-12-04T12:44:20'); a window engine that drops
        no record as late shows exactly these counts. Needs jitter, or ``keep_event_times=True``.
        The words :meth:`send_late` sent are left out (an engine drops them), unless ``late``.
        """
        if not self.keep_event_times:
            raise CourseError(
                "This producer kept no event times: make it with jitter=S or keep_event_times=True."
            )
        with self._lock:
            by_second = list(self._by_second.items())
            by_second += list(self._late_by_second.items()) if late else []
        truth: Counter[tuple[str, str]] = Counter()
        for (second, word), count in by_second:
            start = datetime.fromtimestamp(second - second % width, tz=UTC)
            truth[(start.strftime("%Y-%m-%dT%H:%M:%S"), word)] += count
        return dict(truth)

    def send_late(self, count: int, seconds: float, partition: int | None = None) -> int:
        """Send ``count`` words stamped ``seconds`` before now, late on purpose; wait for their acks.

        Sent at once, beside the running stream (``partition``: to that one only, e.g. the one an
        engine's watermark follows). They count in the ledger (a running total has no watermark),
        and are left out of :meth:`event_windows`: a window engine whose watermark has passed their
        window drops them, and the truth says so. :attr:`late` holds them, per word.
        """
        if count < 1 or not 0 < seconds <= MAX_LATE:
            raise CourseError(
                f"send_late({count}, {seconds:g}): give count >= 1 and 0 < seconds <= "
                f"{MAX_LATE:g} (a day)."
            )
        self.check_partitions(None if partition is None else [partition])
        if partition is None and self.partitions:  # the partitions left idle stay idle
            partition = self.partitions[0]
        stamp = int((time.time() - seconds) * 1000)
        words = self._late_random.choices(self._words or ("late",), k=count)
        client = KafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, acks="all")
        try:
            sends = [
                (word, client.send(self.topic, word.encode(), key=key, partition=partition,
                                   timestamp_ms=stamp))
                for word, key in zip(words, uuid_keys(count), strict=True)
            ]  # fmt: skip
            acked, failures = [], Counter()
            for word, future in sends:  # each settled on its own: what was written is in the ledger
                try:
                    future.get(timeout=30)
                    acked.append(word)
                except kafka_errors.KafkaError as error:
                    failures[type(error).__name__] += 1
        finally:
            client.close(timeout=10)
        with self._lock:  # own figures: the sending thread's count and send history stay its own
            for token in (t for word in acked for t in tokenize(word)):
                self._ledger[token] += 1
                self._late_by_second[(stamp // 1000, token)] += 1
            self._late_sent += count
            self._acked += len(acked)
            self._failed += failures.total()
            self._failures.update(failures)
        if failures:
            raise CourseError(
                f"{failures.total()} of {count} late words were not written ({dict(failures)}); "
                "the rest are in the ledger. Is the broker up? (python -m helpers broker status)"
            )
        return count

    @property
    def late(self) -> dict[str, int]:
        """The words :meth:`send_late` sent, per word: in the ledger, not in the event-time truth."""
        late: Counter[str] = Counter()
        with self._lock:
            for (_, word), count in self._late_by_second.items():
                late[word] += count
        return dict(late)

    def _note_send_time(self) -> None:
        """Remember when the next burst began; the last ``SEND_HISTORY`` seconds are kept."""
        now = time.monotonic()
        if len(self._burst_time) >= 10_000 and now - self._burst_time[0] > SEND_HISTORY:
            old = bisect.bisect_left(self._burst_time, now - SEND_HISTORY)
            del self._burst_first[:old], self._burst_time[:old]
        self._burst_first.append(self._sent)
        self._burst_time.append(now)

    def sent_at(self, index: int) -> float | None:
        """When record ``index`` (0 = this producer's first) was sent, on ``time.monotonic()``.

        The start of its burst, so at most a burst's few milliseconds early; None if not known (not
        sent yet, or older than the history kept). The latency meter reads it.
        """
        position = bisect.bisect_right(self._burst_first, index) - 1
        if position < 0 or index >= self._sent:
            return None
        return self._burst_time[position]

    def bursts(self) -> tuple[int, list[tuple[float, int]]]:
        """Records sent before the history kept, then (time, records) of each burst since."""
        firsts, times, sent = list(self._burst_first), list(self._burst_time), self._sent
        sizes = [b - a for a, b in zip(firsts, [*firsts[1:], sent], strict=False)]
        return (firsts[0] if firsts else sent), list(zip(times, sizes, strict=False))

    def _settle(self, failed_as: str | None = None) -> None:
        """Move every finished send, oldest first, into acked (and the ledger) or failed.

        Checked in bulk each loop turn rather than with a callback per message: the ledger's words
        are tokenized a batch at a time (records joined by line breaks tokenize as they do alone),
        and kept by event-time second too, for :meth:`event_windows`.
        ``failed_as`` names every failure settled now (a wedged client's aborted sends).
        """
        acked = 0
        by_second: Counter[tuple[int, str]] = Counter()  # the ledger's words, by event-time second
        failures: Counter[str] = Counter()
        while self._pending and self._pending[0][0].future.is_done:
            chunk, texts, _, stamps = self._pending.popleft()
            error = chunk.error() and (failed_as or chunk.error())
            if error is None:
                acked += len(texts)
                by_second.update(_words_by_second(texts, stamps if self.keep_event_times else 0))
            else:
                failures[error] += len(texts)
        if not acked and not failures:
            return
        with self._lock:
            self._acked += acked
            for (_, word), n in by_second.items():
                self._ledger[word] += n
            if self.keep_event_times:
                self._by_second.update(by_second)
            self._failed += failures.total()
            self._failures.update(failures)

    def _due(self, segment_start: float, sent_in_segment: int, rate: float) -> int:
        if math.isinf(rate):
            return MAX_BURST
        return int((time.monotonic() - segment_start) * rate) + 1 - sent_in_segment

    def _run(self) -> None:
        started = time.monotonic()
        segment_rate, segment_start, segment_sent = self._rate, started, 0
        try:
            while not self._stop.is_set():
                self._settle()
                self._sample()
                if self._stuck():
                    self._give_up_on_client()
                if self._client is None:  # replaced while the broker is away: try again soon
                    self._client = self._reconnect()
                    segment_rate, segment_start, segment_sent = self._rate, time.monotonic(), 0
                    continue
                if self.duration is not None and time.monotonic() - started >= self.duration:
                    return
                with self._rate_changed:
                    if self._rate == 0:
                        self._rate_changed.wait(0.2)
                        continue
                    rate = self._rate
                if rate != segment_rate:  # pace the new rate from now on
                    segment_rate, segment_start, segment_sent = rate, time.monotonic(), 0
                due = min(self._due(segment_start, segment_sent, rate), MAX_BURST)
                if due > 0:
                    self._note_send_time()
                if self.count is not None:
                    due = min(due, self.count - self._sent)
                    if due <= 0:
                        return
                texts = self._next_texts(max(due, 0))
                if texts:
                    self._send(texts)
                segment_sent += len(texts)
                if len(texts) < due:  # the last line was sent
                    return
                if not math.isinf(rate):
                    wait = segment_start + (segment_sent / rate) - time.monotonic()
                    self._stop.wait(min(max(wait, 0.0005), 0.2))
        except (kafka_errors.KafkaError, OSError) as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self._finish_sends()
            with self._lock:
                self._samples.clear()

    def _stuck(self) -> bool:
        """True when the oldest unsettled send is well past its delivery timeout (a wedged client)."""
        if not self._pending:
            return False
        age = time.monotonic() - self._pending[0][2]
        return age > self._delivery_timeout_ms / 1000 + STUCK_MARGIN

    def _reconnect(self) -> WordClient | None:
        try:
            return self._connect()
        except CourseError:
            self._stop.wait(1.0)
            return None

    def _finish_sends(self, timeout: float = 30.0) -> None:
        """Wait for every message in flight to be acknowledged or to fail, and settle them all."""
        if self._client is not None and self._pending:
            try:
                self._client.flush(timeout=timeout)
            except kafka_errors.KafkaTimeoutError:
                pass  # what is still unacknowledged fails on close and is counted as failed
        self._settle()


def send_raw(values: Iterable[bytes | None], topic: str, settings: Settings | None = None) -> int:
    """Send raw record values as they are (None is a tombstone); for lessons on bad input. Returns n."""
    settings = settings or load()
    client = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, client_id="course-raw")
    try:
        futures = [client.send(topic, value=value, key=b"raw") for value in values]
        client.flush()
        return sum(1 for future in futures if future.succeeded())
    finally:
        client.close()


def measure(count: int, topic: str, settings: Settings | None = None, **options) -> float:
    """Send ``count`` random words as fast as the client can; acknowledged messages per second.

    Chapter 02 compares linger settings with it.
    """
    producer = WordProducer(rate=math.inf, topic=topic, count=count, settings=settings, **options)
    started = time.monotonic()
    producer.start().wait()
    stats = producer.stop()
    return stats.acked / (time.monotonic() - started)


class ProducerFleet:
    """Several producers at once — the seed's ``docker compose up --scale kafka-producer=3``.

    It looks like one producer to the live view: one rate (each member's), summed stats, one ledger.
    """

    def __init__(self, size: int, rate: float | None = None, **options) -> None:
        if size < 1:
            raise CourseError("A fleet needs at least one producer.")
        self.members = [
            WordProducer(rate=rate, seed=None if "seed" not in options else options["seed"] + i,
                         **{k: v for k, v in options.items() if k != "seed"})
            for i in range(size)
        ]  # fmt: skip
        self._history: tuple[list[float], list[int]] | None = None
        self._history_at = 0.0

    def sent_at(self, index: int) -> float | None:
        """When the fleet as a whole sent its record ``index`` (0 = its first), on ``time.monotonic()``.

        The members' records interleave on the topic, so a counter that has read R records has read
        about the first R the fleet sent: an estimate good to a burst or two, for the latency meter.
        """
        times, totals = self._send_history()
        position = bisect.bisect_right(totals, index)
        return times[position] if position < len(times) else None

    def _send_history(self) -> tuple[list[float], list[int]]:
        """The members' bursts merged in time: (times, records sent up to and with each); 0.1 s fresh."""
        now = time.monotonic()
        if self._history is None or now - self._history_at > 0.1:
            before, bursts = 0, []
            for member in self.members:
                earlier, theirs = member.bursts()
                before += earlier
                bursts += theirs
            bursts.sort()
            totals = list(itertools.accumulate((size for _, size in bursts), initial=before))[1:]
            self._history, self._history_at = ([t for t, _ in bursts], totals), now
        return self._history

    @property
    def rate(self) -> float:
        """Each member's rate (the fleet sends ``size`` times this)."""
        return self.members[0].rate

    @rate.setter
    def rate(self, value: float) -> None:
        for member in self.members:
            member.rate = value

    @property
    def running(self) -> bool:
        """True while any member sends."""
        return any(m.running for m in self.members)

    def start(self) -> ProducerFleet:
        """Start every member."""
        for member in self.members:
            member.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every member to finish by itself."""
        return all(member.wait(timeout) for member in self.members)

    def stop(self) -> ProducerStats:
        """Stop every member (each flushes); the combined stats."""
        for member in self.members:
            member.stop()
        return self.stats()

    @property
    def ledger(self) -> dict[str, int]:
        """The members' ledgers added up."""
        return dict(sum((Counter(m.ledger) for m in self.members), Counter()))

    def stats(self) -> ProducerStats:
        """Members' stats added up."""
        parts = [m.stats() for m in self.members]
        failures: Counter[str] = Counter()
        for part in parts:
            failures.update(part.failures)
        return ProducerStats(
            sent=sum(p.sent for p in parts),
            acked=sum(p.acked for p in parts),
            failed=sum(p.failed for p in parts),
            rate=self.rate * len(parts),
            achieved_rate=sum(p.achieved_rate for p in parts),
            running=self.running,
            ledger=self.ledger,
            failures=dict(failures),
        )
