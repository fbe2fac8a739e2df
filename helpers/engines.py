"""The engines that count, declared in one place: what each is, how it looks, and what it can do.

The CLI's ``--engine`` choices, the demo, the charts' colours and legends, the jars to fetch, the class
archives, the warm-up and the seed's consumer roles all read this table. A fourth engine is a counter
module (a ``WordCounter``, its warm-up job beside it), one ``Engine`` entry here, and its jars locked
(``python -m helpers jars lock``): see docs/ARCHITECTURE.md.

No engine is imported here: pyspark and pyflink take seconds to import, so a counter's class is named
and imported only when one is made (``helpers.consumers.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass

from helpers.errors import CourseError

SPARK_VERSION = "4.2.0"  # must equal the pyspark pin: the newest spark-sql-kafka on Maven Central
FLINK_CONNECTOR_VERSION = (
    "5.0.0-2.2"  # the Kafka connector built for Flink 2.2 (apache-flink 2.2.x)
)


@dataclass(frozen=True)
class Engine:
    """One engine. ``counter`` and ``warmup`` are ``module:name``, imported when first needed."""

    name: str
    counter: str  # the WordCounter class
    colour: str  # its colour in every chart (the ledger is near-black)
    lag_from: str  # what its lag is measured from, as the lag chart's legend says
    durable_counter: str | None = None  # the variant that keeps its counts across a crash
    connector: tuple[
        str, ...
    ] = ()  # Maven coordinates of its Kafka connector (locked in jars.lock)
    wheel_jars: str | None = (
        None  # the folder of jars its wheel ships (a JVM engine: class archive)
    )
    warmup: str | None = None  # a job that loads its classes: background start and class archive
    modules: tuple[str, ...] = ()  # imported before a background start (see helpers.warmup)
    windows: bool = True  # it keeps windowed counts (a snapshot's JSON has "windows")
    log_windows: bool = False  # the seed's consumer role logged each window, not each word
    log_every: float = 1.0  # seconds between the role's log lines

    @property
    def jvm(self) -> bool:
        """It runs in a JVM of its own, started from Python (Spark's and Flink's gateways)."""
        return self.wheel_jars is not None


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine(
            "kafka",
            counter="helpers.consumers.kafka:KafkaWordCounter",
            durable_counter="helpers.consumers.kafka:DurableKafkaWordCounter",
            colour="#3b7dd8",
            lag_from="its position",
            windows=False,
            log_every=5.0,
        ),
        Engine(
            "spark",
            counter="helpers.consumers.spark:SparkWordCounter",
            colour="#e8590c",
            lag_from="offsets in its checkpoint",
            connector=(f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}",),
            wheel_jars="pyspark/jars",
            warmup="helpers.warmup:spark_job",
            modules=("pyspark.sql", "pyspark.sql.functions", "pyspark.sql.types"),
            log_windows=True,  # as the seed's Spark printed its 5-second batches
        ),
        Engine(
            "flink",
            counter="helpers.consumers.flink:FlinkWordCounter",
            colour="#2b8a3e",
            lag_from="offsets committed at checkpoints",
            connector=(f"org.apache.flink:flink-sql-connector-kafka:{FLINK_CONNECTOR_VERSION}",),
            wheel_jars="pyflink/lib",
            warmup="helpers.warmup:flink_job",
            modules=(
                "pyflink.common",
                "pyflink.table",
                "pyflink.table.udf",
                "pyflink.java_gateway",
            ),
        ),
    )
}
NAMES = tuple(ENGINES)
JVM_ENGINES = tuple(name for name, engine in ENGINES.items() if engine.jvm)


def engine(name: str) -> Engine:
    """The engine called ``name``, or a one-line error listing the ones there are."""
    try:
        return ENGINES[name]
    except KeyError:
        raise CourseError(f"Unknown engine {name!r}; choose one of {', '.join(NAMES)}.") from None


def of_label(label: str) -> Engine | None:
    """The engine a counter's label names ("flink", "flink (resumed)", "kafka 2"), if any."""
    return ENGINES.get(label.split(" ")[0])


def load(target: str):
    """Import ``module:name`` and return the name (a counter class, a warm-up job)."""
    from importlib import import_module

    module, _, name = target.partition(":")
    return getattr(import_module(module), name)
