"""The seed's one-image-many-roles entry point: ``EXAMPLE_GOAL`` picks what ``python -m helpers run`` is.

Each role runs until it is stopped (Ctrl-C or SIGTERM, as ``docker compose down`` sends) and logs the way
the seed did: the producer a line per second of sends, the Kafka consumer its counts, Spark its window
counts, Flink its ``(word,count)`` updates.
"""

from __future__ import annotations

import logging
import signal
import threading

from helpers import engines, topics
from helpers.config import Settings, load
from helpers.consumers.registry import make_counter
from helpers.producer import WordProducer

log = logging.getLogger("helpers.run")


def _until_stopped(every: float, tick) -> None:
    """Call ``tick()`` every ``every`` seconds until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(every):
        tick()


def run_producer(settings: Settings) -> dict:
    """Send words at EXAMPLE_PRODUCER_INTERVAL / PRODUCER_RATE until stopped; one log line a second."""
    topics.create_topic(settings.topic, settings=settings)
    producer = WordProducer(settings=settings).start()
    last = [0]

    def tick() -> None:
        stats = producer.stats()
        log.info(
            "Sent %d words to topic %s (%d acknowledged in all, %.0f/s)",
            stats.acked - last[0], settings.topic, stats.acked, stats.achieved_rate,
        )  # fmt: skip
        last[0] = stats.acked

    _until_stopped(1.0, tick)
    stats = producer.stop()
    return {"acked": stats.acked, "failed": stats.failed}


def run_consumer(settings: Settings, engine: str) -> dict:
    """Count with ``engine`` in its own group until stopped, logging as the seed's consumers did."""
    spec = engines.engine(engine)
    topics.create_topic(settings.topic, settings=settings)
    counter = make_counter(
        engine, topic=settings.topic, group=f"{engine.capitalize()}ConsumerGroup",
        from_beginning=False,
    ).start()  # fmt: skip
    seen: dict = {}

    def tick() -> None:
        snapshot = counter.snapshot()
        if spec.log_windows:  # per window, as the seed's Spark printed its 5-second batches
            for row in snapshot.windows[-10:]:
                key = (row["start"], row["word"])
                if seen.get(key) != row["count"]:
                    seen[key] = row["count"]
                    log.info("window %s (%s,%d)", row["start"], row["word"], row["count"])
        else:  # (word,count) updates, as the seed's Flink and Kafka consumers printed
            for word, count in sorted(snapshot.counts.items()):
                if seen.get(word) != count:
                    seen[word] = count
                    log.info("(%s,%d)", word, count)

    _until_stopped(spec.log_every, tick)
    final = counter.stop()
    return final.as_json()


def run(settings: Settings | None = None) -> dict:
    """Play the role EXAMPLE_GOAL names."""
    settings = settings or load()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if settings.goal == "producer":
        return run_producer(settings)
    return run_consumer(settings, settings.goal.removeprefix("consumer."))
