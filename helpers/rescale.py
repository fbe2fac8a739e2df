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


def add_workers(
    settings: Settings, spark_workers: int = 0, taskmanagers: int = 0,
    say: Callable[[str], None] = lambda line: None, status: dict | None = None,
) -> dict:  # fmt: skip
    """Add Spark workers and Flink TaskManagers to the running clusters, started side by side.

    A standalone master gives a running application (which asked for no core limit) an executor on
    each new worker by itself: this waits until the application holds their cores, so the next
    micro-batch's tasks spread over them. New TaskManagers bring slots, used once a job rescales
    (:func:`rescale_flink`). ``status``: the clusters' status when the caller has just read it.
    """
    if not (spark_workers or taskmanagers):
        return {}
    status = status or cluster.status(settings)
    master_ui = status["web_uis"].get("spark-master")
    if spark_workers and not master_ui:
        raise CourseError("No Spark master runs; start one: python -m helpers cluster start")
    if taskmanagers and not status["flink_rest"]:
        raise CourseError("No Flink JobManager runs; start one: python -m helpers cluster start")
    workers, managers = (
        _live_count("spark-worker", status),
        _live_count("flink-taskmanager", status),
    )
    cores = engine_rest.spark_executor_cores(master_ui) if spark_workers else 0
    cluster.start(
        0, settings=settings, say=say,
        spark_workers=workers + spark_workers if spark_workers else 0,
        flink_taskmanagers=managers + taskmanagers if taskmanagers else 0,
    )  # fmt: skip
    report: dict = {}
    if spark_workers:
        say("waiting for the Spark application to take their cores...")
        wait_until(
            lambda: engine_rest.spark_executor_cores(master_ui) >= cores + spark_workers,
            GROW_TIMEOUT,
            "the Spark application to take the new workers' cores",
            every=1.0,
        )
        after = engine_rest.spark_executor_cores(master_ui)
        report |= {
            "spark_workers": [workers, workers + spark_workers],
            "spark_cores": [cores, after],
        }
    if taskmanagers:
        report["flink_taskmanagers"] = [managers, managers + taskmanagers]
    return report


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
    flink = [c for c in counters if isinstance(c, FlinkWordCounter)]
    more_spark = "spark" in engines and bool(status["spark_master"])
    more_flink = bool(flink) and bool(status["flink_rest"])
    adding = [what for what, yes in (("a Spark worker", more_spark), ("a TaskManager", more_flink))
              if yes]  # fmt: skip
    if adding:
        say("adding " + " and ".join(adding))
        report |= add_workers(settings, int(more_spark), int(more_flink), status=status)
    if more_flink:
        slots = report["flink_taskmanagers"][1] * engine_clusters.FLINK_SLOTS
        parallelism = min(slots, partitions)
        say(f"rescaling the Flink job to {parallelism}")
        report |= rescale_flink(flink[0], parallelism, rest=status["flink_rest"])
    return report
