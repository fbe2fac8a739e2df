"""Scale a running pipeline out while words flow: more partitions, more workers, a wider Flink job.

Each step is the engines' own way of growing, and each waits until the growth is real, not just asked
for: the producers write to the new partitions, the Spark application holds an executor on the new
worker, the Flink job runs with the new parallelism. The counts go on meanwhile and still equal the
ledger afterwards; chapter 09 takes these steps one cell at a time, ``demo --rescale`` all at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from helpers import cluster, engine_clusters, engine_rest, topics
from helpers.config import DISCOVERY_MS, Settings
from helpers.consumers.base import WordCounter
from helpers.consumers.flink import FlinkWordCounter
from helpers.errors import CourseError
from helpers.wait import wait_until

GROW_TIMEOUT = 240.0  # seconds for a new JVM to start and register on a busy two-core machine


def add_partitions(topic: str, partitions: int, settings: Settings) -> dict:
    """Grow ``topic`` to ``partitions`` and wait until words arrive in every new partition.

    Producers and counters look for new partitions every ``DISCOVERY_MS``; a producer hashes each key
    over the new count from then on.
    """
    grown = topics.add_partitions(topic, partitions, settings)
    new = range(grown["before"], partitions)

    def written() -> dict[int, int] | None:
        latest = topics.latest_offsets(topic, settings)
        return latest if all(latest.get(p, 0) > 0 for p in new) else None

    latest = wait_until(written, DISCOVERY_MS / 1000 * 6, "words in the new partitions", every=0.5)
    return {**grown, "latest": latest}


def _live_count(role: str, status: dict) -> int:
    return sum(1 for p in status["processes"] if p["role"] == role and p["alive"])


def add_spark_workers(
    settings: Settings, count: int = 1, say: Callable[[str], None] = lambda line: None,
    status: dict | None = None,
) -> dict:  # fmt: skip
    """Add ``count`` workers to the running Spark master; wait until the application uses them.

    A standalone master gives a running application (which asked for no core limit) an executor on
    each new worker by itself: the next micro-batch's tasks spread over it. ``status``: the clusters'
    status when the caller has just read it.
    """
    status = status or cluster.status(settings)
    master_ui = status["web_uis"].get("spark-master")
    if not master_ui:
        raise CourseError("No Spark master runs; start one: python -m helpers cluster start")
    before = _live_count("spark-worker", status)
    cores = engine_rest.spark_executor_cores(master_ui)
    say(f"starting {count} more Spark worker(s)...")
    cluster.start(0, settings=settings, spark_workers=before + count, say=say)
    say("waiting for the Spark application to take their cores...")
    wait_until(
        lambda: engine_rest.spark_executor_cores(master_ui) >= cores + count,
        GROW_TIMEOUT,
        "the Spark application to take the new workers' cores",
        every=1.0,
    )
    after = engine_rest.spark_executor_cores(master_ui)
    return {"spark_workers": [before, before + count], "spark_cores": [cores, after]}


def add_taskmanagers(
    settings: Settings, count: int = 1, say: Callable[[str], None] = lambda line: None,
    status: dict | None = None,
) -> dict:  # fmt: skip
    """Add ``count`` TaskManagers to the running Flink cluster: more slots, used once a job rescales."""
    status = status or cluster.status(settings)
    if not status["flink_rest"]:
        raise CourseError("No Flink JobManager runs; start one: python -m helpers cluster start")
    before = _live_count("flink-taskmanager", status)
    say(f"starting {count} more Flink TaskManager(s)...")
    cluster.start(0, settings=settings, flink_taskmanagers=before + count, say=say)
    return {"flink_taskmanagers": [before, before + count]}


def rescale_flink(counter: FlinkWordCounter, parallelism: int, rest: str | None = None) -> dict:
    """Stop the counter's job with a savepoint, run it from there ``parallelism`` wide; wait for it.

    ``rest``: the Flink cluster's REST address (read from the clusters' status when not given).
    """
    rest = rest or cluster.status(counter.settings)["flink_rest"]
    before = engine_rest.flink_job_parallelism(rest, counter.job_id) if rest else None
    savepoint = counter.rescale(parallelism)
    if rest:
        wait_until(
            lambda: engine_rest.flink_job_parallelism(rest, counter.job_id) == parallelism,
            GROW_TIMEOUT,
            f"the Flink job to run {parallelism} wide",
            every=1.0,
        )
    return {"flink_parallelism": [before, parallelism], "savepoint": savepoint}


def scale_out(
    counters: Sequence[WordCounter],
    topic: str,
    settings: Settings,
    say: Callable[[str], None] = lambda line: None,
) -> dict:
    """All three steps, as ``demo --rescale`` takes them halfway through its run.

    Two more partitions; one more Spark worker (when Spark counts on a cluster); one more TaskManager
    and the Flink job rescaled to every slot the cluster then has, up to one per partition.
    """
    partitions = len(topics.describe_topic(topic, settings)["partitions"]) + 2
    say(f"adding partitions: {partitions} in all")
    report = add_partitions(topic, partitions, settings)
    report.pop("latest")
    status = cluster.status(settings)
    engines = {counter.engine for counter in counters}
    if "spark" in engines and status["spark_master"]:
        say("adding a Spark worker")
        report |= add_spark_workers(settings, status=status)
    flink = [c for c in counters if isinstance(c, FlinkWordCounter)]
    if flink and status["flink_rest"]:
        say("adding a TaskManager")
        report |= add_taskmanagers(settings, status=status)
        slots = report["flink_taskmanagers"][1] * engine_clusters.FLINK_SLOTS
        parallelism = min(slots, partitions)
        say(f"rescaling the Flink job to {parallelism}")
        report |= rescale_flink(flink[0], parallelism, rest=status["flink_rest"])
    return report
