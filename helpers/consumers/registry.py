"""Make a word counter by engine name (the CLI's ``--engine`` and the demo's ``--engines``)."""

from __future__ import annotations

from helpers import engines
from helpers.consumers.base import WordCounter


def make_counter(engine: str, durable: bool = False, **options) -> WordCounter:
    """A new, unstarted counter of ``engine`` with the shared options (topic, group, bound...).

    ``durable`` picks the counter that stores its counts with its offsets, where the engine has one
    (Spark and Flink always keep theirs in their checkpoints).
    """
    spec = engines.engine(engine)
    counter = engines.load((durable and spec.durable_counter) or spec.counter)
    return counter(**options)
