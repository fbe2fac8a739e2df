"""One frozen settings object built from the environment.

Every host, port, folder, heap size and run-length knob of the course lives here, so notebooks never
hard-code them. Each field names the environment variable that sets it; the seed article's variables
(``EXAMPLE_KAFKA_SERVER``, ``EXAMPLE_KAFKA_TOPIC``, ``EXAMPLE_PRODUCER_INTERVAL``, ``EXAMPLE_GOAL``) keep
working as aliases.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import CourseError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
GOALS = ("producer", "consumer.kafka", "consumer.spark", "consumer.flink")
# How often clients and engines look for new partitions of a topic (Kafka's and Flink's default: 5 min),
# so partitions added while words flow are written and read within seconds.
DISCOVERY_MS = 5000


def _env(*names: str, default: str) -> str:
    """The first of ``names`` that is set and not empty, else ``default``."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return default


def _number(name: str, text: str, kind: type = float) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise CourseError(f"{name}={text!r} is not a number; set it to e.g. {kind(10)}.") from None
    if value < 0:
        raise CourseError(f"{name}={text!r} is negative; set it to 0 or more.")
    return value


def _producer_rate() -> float:
    """Words per second: PRODUCER_RATE, else the seed's EXAMPLE_PRODUCER_INTERVAL (ms between sends)."""
    if os.environ.get("PRODUCER_RATE", "").strip():
        return _number("PRODUCER_RATE", os.environ["PRODUCER_RATE"])
    interval = os.environ.get("EXAMPLE_PRODUCER_INTERVAL", "").strip()
    if interval:
        millis = _number("EXAMPLE_PRODUCER_INTERVAL", interval)
        if millis == 0:
            raise CourseError(
                "EXAMPLE_PRODUCER_INTERVAL=0 means no pause; set PRODUCER_RATE instead."
            )
        return 1000.0 / millis
    return 10.0  # the seed's default: one word every 100 ms


@dataclass(frozen=True)
class Settings:
    """What the course runs against. Build it with :func:`load`; it never changes afterwards."""

    # KAFKA_BOOTSTRAP_SERVERS (alias EXAMPLE_KAFKA_SERVER): where clients connect; an embedded broker is
    # started there when it points at this machine and nothing listens yet.
    bootstrap_servers: str = "localhost:9092"
    # KAFKA_TOPIC (alias EXAMPLE_KAFKA_TOPIC): the topic the words travel through.
    topic: str = "example"
    # PRODUCER_RATE in words per second (alias EXAMPLE_PRODUCER_INTERVAL in milliseconds between words).
    producer_rate: float = 10.0
    # EXAMPLE_GOAL: the role `python -m helpers run` plays (producer, consumer.kafka, ...).
    goal: str = "producer"
    # COURSE_DATA_DIR: broker data, logs, jars, checkpoints; never committed.
    data_dir: Path = field(default=PROJECT_ROOT / ".course")
    # COURSE_JARS_DIR: the jar cache (defaults to <data dir>/jars).
    jars_dir: Path = field(default=PROJECT_ROOT / ".course" / "jars")
    # MAVEN_REPOSITORY_URL: where `jars fetch` downloads from (a mirror of Maven Central).
    maven_repository: str = MAVEN_CENTRAL
    # KAFKA_CONTROLLER_PORT: the embedded broker's KRaft controller listener (default: broker port + 1).
    controller_port: int = 9093
    # COURSE_CLUSTER_PORT: the first client port of `cluster start` (node i listens on port+i-1, its
    # controller on port+99+i); default: the broker's port + 100.
    cluster_port: int = 9192
    # KAFKA_HEAP_OPTS: the embedded broker's heap. The three heaps below are sized together so that
    # chapter 06 (broker, Spark, Flink, kernel) fits a 2 GB classroom container: `helpers footprint`.
    broker_heap: str = "-Xms64m -Xmx256m"
    # SPARK_DRIVER_MEMORY: the Spark driver JVM's heap (local mode runs everything in it).
    spark_memory: str = "512m"  # Spark refuses less than about 470 MB
    # FLINK_JVM_HEAP: the heap of the JVM pyflink starts (the local mini-cluster lives in it).
    flink_heap: str = "384m"
    # COURSE_RUN_SECONDS: how long a notebook's live demo runs before stopping on its own.
    run_seconds: float = 30.0
    # COURSE_START_TIMEOUT: seconds to wait for the embedded broker to accept requests.
    start_timeout: float = 90.0
    # COURSE_BIND_ADDRESS: where the engines' servers (Spark's driver and UI, Flink's mini-cluster, the
    # cluster nodes) and JupyterLab listen. Loopback by default: nothing is open to the network.
    bind_address: str = "127.0.0.1"
    # SPARK_MASTER: where Spark runs its executors: local[2] (in the driver's JVM) or spark://host:port.
    spark_master: str = "local[2]"
    # SPARK_EXECUTOR_MEMORY: each executor's heap on a Spark standalone cluster.
    spark_executor_memory: str = "512m"
    # FLINK_REST_ADDRESS: host:port of a Flink session cluster to submit to; empty: a local mini-cluster.
    flink_rest_address: str = ""
    # COURSE_ENGINE_UI: 1 starts Spark's web UI with its session, 0 does not. Unset: on in a notebook's
    # kernel, where a chapter links to it; off for the CLI and scripts, which start faster without it.
    engine_ui: bool = True
    # COURSE_CLUSTER: chapter 09's clusters, "brokers,spark workers,flink taskmanagers".
    cluster_size: tuple[int, int, int] = (3, 2, 2)

    @property
    def data_dir_broker(self) -> Path:
        """The KRaft log directory of the embedded broker."""
        return self.data_dir / "kafka"

    @property
    def logs_dir(self) -> Path:
        """Where the broker's and the engines' logs are written."""
        return self.data_dir / "logs"

    @property
    def first_server(self) -> tuple[str, int]:
        """(host, port) of the first bootstrap server."""
        return parse_address(self.bootstrap_servers.split(",")[0])


def parse_address(text: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:9092`` too), with a one-line error when it is malformed."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise CourseError(f"Bootstrap address {text!r} is not host:port; set e.g. localhost:9092.")
    return host.strip("[]"), int(port)


BIND_ADDRESSES = ("127.0.0.1", "0.0.0.0")  # this machine only, or every network it is on


def _bind_address() -> str:
    address = _env("COURSE_BIND_ADDRESS", default="127.0.0.1")
    if address not in BIND_ADDRESSES:
        raise CourseError(
            f"COURSE_BIND_ADDRESS={address!r} is not one of {', '.join(BIND_ADDRESSES)}: "
            "127.0.0.1 keeps everything on this machine, 0.0.0.0 opens it to the network."
        )
    return address


def _engine_ui() -> bool:
    text = _env("COURSE_ENGINE_UI", default="")
    if not text:
        return "ipykernel" in sys.modules  # a notebook's kernel: the chapters link to the UI
    if text not in ("0", "1"):
        raise CourseError(f"COURSE_ENGINE_UI={text!r} is not 0 or 1; set 1 for Spark's web UI.")
    return text == "1"


def _cluster_size() -> tuple[int, int, int]:
    text = _env("COURSE_CLUSTER", default="3,2,2")
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise CourseError(
            f"COURSE_CLUSTER={text!r} is not three counts above 0: brokers, Spark workers, Flink "
            "TaskManagers; set e.g. 3,2,2."
        )
    brokers, workers, taskmanagers = (int(part) for part in parts)
    return brokers, workers, taskmanagers


def load() -> Settings:
    """Read the environment now and return frozen settings."""
    data_dir = Path(_env("COURSE_DATA_DIR", default=str(PROJECT_ROOT / ".course"))).expanduser()
    goal = _env("EXAMPLE_GOAL", default="producer")
    if goal not in GOALS:
        raise CourseError(f"EXAMPLE_GOAL={goal!r} is not one of {', '.join(GOALS)}.")
    bootstrap_servers = _env(
        "KAFKA_BOOTSTRAP_SERVERS", "EXAMPLE_KAFKA_SERVER", default="localhost:9092"
    )
    _, port = parse_address(bootstrap_servers.split(",")[0])
    settings = Settings(
        bootstrap_servers=bootstrap_servers,
        topic=_env("KAFKA_TOPIC", "EXAMPLE_KAFKA_TOPIC", default="example"),
        producer_rate=_producer_rate(),
        goal=goal,
        data_dir=data_dir,
        jars_dir=Path(_env("COURSE_JARS_DIR", default=str(data_dir / "jars"))).expanduser(),
        maven_repository=_env("MAVEN_REPOSITORY_URL", default=MAVEN_CENTRAL).rstrip("/"),
        controller_port=int(
            _number(
                "KAFKA_CONTROLLER_PORT", _env("KAFKA_CONTROLLER_PORT", default=str(port + 1)), int
            )
        ),
        cluster_port=int(
            _number(
                "COURSE_CLUSTER_PORT", _env("COURSE_CLUSTER_PORT", default=str(port + 100)), int
            )
        ),
        broker_heap=_env("KAFKA_HEAP_OPTS", default="-Xms64m -Xmx256m"),
        spark_memory=_env("SPARK_DRIVER_MEMORY", default="512m"),
        flink_heap=_env("FLINK_JVM_HEAP", default="384m"),
        run_seconds=_number("COURSE_RUN_SECONDS", _env("COURSE_RUN_SECONDS", default="30")),
        start_timeout=_number("COURSE_START_TIMEOUT", _env("COURSE_START_TIMEOUT", default="90")),
        bind_address=_bind_address(),
        spark_master=_env("SPARK_MASTER", default="local[2]"),
        spark_executor_memory=_env("SPARK_EXECUTOR_MEMORY", default="512m"),
        flink_rest_address=_env("FLINK_REST_ADDRESS", default=""),
        cluster_size=_cluster_size(),
        engine_ui=_engine_ui(),
    )
    return settings
