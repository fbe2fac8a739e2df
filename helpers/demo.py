"""The headless end-to-end run: a fresh topic, the producer, the chosen engines, then the verdict."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

from helpers import topics
from helpers.config import Settings, load
from helpers.consumers.base import WordCounter
from helpers.consumers.registry import make_counter
from helpers.engines import NAMES as ENGINES
from helpers.errors import CourseError
from helpers.latency import LatencyMeter
from helpers.producer import WordProducer
from helpers.reconcile import Reconciliation, reconcile
from helpers.rescale import scale_out
from helpers.wait import wait_until


def parse_engines(text: str) -> list[str]:
    """'kafka,spark' -> ['kafka', 'spark'], with a one-line error for an unknown name."""
    engines = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise CourseError(
            f"Unknown engine(s) {unknown or text!r}; choose from {', '.join(ENGINES)}."
        )
    return engines


def settle(counters: Sequence[WordCounter], ledger: dict[str, int], timeout: float) -> None:
    """Wait until every counter's counts equal the ledger (or ``timeout`` seconds pass)."""
    wait_until(lambda: all(c.snapshot().counts == ledger for c in counters), timeout, "",
               every=0.25, on_timeout="return")  # fmt: skip


def run_demo(
    duration: float = 20.0,
    rate: float = 200.0,
    engines: Sequence[str] = ENGINES,
    input_file: str | Path | None = None,
    settings: Settings | None = None,
    show_progress: bool = True,
    settle_seconds: float = 120.0,
    partitions: int = 1,
    rescale: bool = False,
) -> tuple[Reconciliation, dict]:
    """Produce for ``duration`` seconds (or send ``input_file`` once), count with every engine, reconcile.

    With ``rescale``, halfway through the pipeline scales out while words flow
    (:func:`helpers.rescale.scale_out`), then words flow for the other half.
    Returns the reconciliation and timings (start-up per engine, production, settling).
    """
    from tqdm.auto import tqdm

    if rescale and input_file is not None:
        raise CourseError("--rescale needs words that keep flowing: leave out --input.")
    settings = settings or load()
    topic = topics.fresh_topic("demo", partitions=partitions, settings=settings)
    counters = [make_counter(engine, topic=topic, settings=settings) for engine in engines]
    timings: dict[str, float] = {}
    scaled: dict = {}
    latency: LatencyMeter | None = None
    try:
        for counter in tqdm(counters, desc="starting engines", disable=not show_progress):
            started = time.monotonic()
            counter.start()
            timings[f"start_{counter.engine}"] = round(time.monotonic() - started, 2)
        if input_file is not None:
            producer = WordProducer(rate=math.inf, topic=topic, lines=input_file, settings=settings)
        else:  # a rescaled run stops its producer itself, after the second half
            producer = WordProducer(
                rate=rate, topic=topic, duration=None if rescale else duration, settings=settings
            )
        started = time.monotonic()
        producer.start()
        latency = LatencyMeter(producer, counters).start()
        bar_format = "{desc}: {n:.0f}/{total}s {postfix}"
        total = None if input_file else duration
        with tqdm(
            total=total, desc="producing", bar_format=bar_format, disable=not show_progress
        ) as bar:

            def produce_for(seconds: float) -> None:
                def done() -> bool:  # the producer ended; meanwhile the bar shows each count
                    bar.n = min(time.monotonic() - started, duration)
                    counted = {c.engine: c.snapshot().records for c in counters}
                    bar.set_postfix(acked=producer.stats().acked, **counted)
                    return producer.wait(1.0)

                wait_until(done, seconds, "", every=0, on_timeout="return")

            if rescale:
                produce_for(duration / 2)
                scaling = time.monotonic()
                scaled = scale_out(counters, topic, settings, say=bar.write)
                timings["rescale"] = round(time.monotonic() - scaling, 2)
                produce_for(duration / 2)
            else:
                produce_for(math.inf)
        stats = producer.stop()
        timings["produce"] = round(time.monotonic() - started, 2)
        if latency.steady_since is not None:  # latency counts from there: start-up is not latency
            timings["steady_after"] = round(latency.steady_since - started, 2)
        started = time.monotonic()
        settle(counters, stats.ledger, settle_seconds)
        timings["settle"] = round(time.monotonic() - started, 2)
        latencies = latency.stop()
        latency = None
    finally:
        if latency is not None:  # production failed: stop sampling too
            latency.stop()
        snapshots = {counter.engine: counter.stop() for counter in counters}
        topics.delete_topic(topic, settings)
    result = reconcile(stats.ledger, snapshots)
    errors = {name: s.error for name, s in snapshots.items() if s.error}
    return result, {
        "timings": timings, "acked": stats.acked, "errors": errors, "latency_ms": latencies,
        "rescaled": scaled,
    }  # fmt: skip
