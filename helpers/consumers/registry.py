"""Pick a word counter by engine name (the CLI's ``--engine`` and the demo's ``--engines``)."""

from __future__ import annotations

from helpers.consumers.base import WordCounter
from helpers.errors import CourseError

ENGINES = ("kafka", "spark", "flink")


def make_counter(engine: str, durable: bool = False, **options) -> WordCounter:
    """A new, unstarted counter of ``engine`` with the shared options (topic, group, bound...).

    ``durable`` picks the plain consumer that stores its counts with its offsets (Spark and Flink
    always keep theirs in their checkpoints).
    """
    if engine == "kafka":
        from helpers.consumers.kafka import DurableKafkaWordCounter, KafkaWordCounter

        return (DurableKafkaWordCounter if durable else KafkaWordCounter)(**options)
    if engine == "spark":
        from helpers.consumers.spark import SparkWordCounter

        return SparkWordCounter(**options)
    if engine == "flink":
        from helpers.consumers.flink import FlinkWordCounter

        return FlinkWordCounter(**options)
    raise CourseError(f"Unknown engine {engine!r}; choose one of {', '.join(ENGINES)}.")
