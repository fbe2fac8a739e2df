"""Break things on purpose — from a notebook cell or a test — and say what was done, in one line each.

The course is about guarantees, and a guarantee is only seen when something fails: the broker dies
without a clean shutdown, a counter's process is killed mid-stream, a consumer stops fetching while its
lag builds. Each function does one such thing to the course's own processes (never to anything else).
"""

from __future__ import annotations

import time

from helpers import broker, cluster, engine_rest, processes
from helpers.config import Settings, load
from helpers.consumers.kafka import KafkaWordCounter
from helpers.consumers.process import CounterProcess
from helpers.engine_clusters import EngineProcess
from helpers.errors import CourseError


def kill_broker(settings: Settings | None = None) -> str:
    """SIGKILL the embedded broker: no clean shutdown, as a power cut would leave it."""
    settings = settings or load()
    status = broker.status(settings)
    if not status.embedded or status.pid is None:
        raise CourseError(
            f"No broker started by the course runs at {settings.bootstrap_servers}; faults only "
            "touch the course's own broker (start it with `python -m helpers broker start`)."
        )
    processes.kill_hard(status.pid, "killed broker", running=broker.MAIN_CLASS)
    return f"killed the broker (pid {status.pid}) at {settings.bootstrap_servers} with SIGKILL"


def restart_broker(settings: Settings | None = None) -> str:
    """Start the embedded broker again on the same data: what was acknowledged is still there."""
    settings = settings or load()
    started = time.monotonic()
    status = broker.ensure_running(settings)  # runs on until `broker stop`, as the killed one did
    return (
        f"the broker is back at {settings.bootstrap_servers} (pid {status.pid}) after "
        f"{time.monotonic() - started:.1f} s"
    )


def bounce_broker(down: float = 5.0, settings: Settings | None = None) -> str:
    """Kill the broker, leave it down ``down`` seconds (producers retry, lag builds), restart it."""
    killed = kill_broker(settings)
    time.sleep(down)
    return f"{killed}; down {down:g} s; {restart_broker(settings)}"


def kill_node(node_id: int, settings: Settings | None = None) -> str:
    """SIGKILL one node of the local cluster (``cluster start``); the others elect new leaders."""
    node = cluster.node_by_id(node_id, settings)
    if not node.alive:
        raise CourseError(f"Cluster node {node_id} is not running; start it with restart_node().")
    led = _partitions_led(node_id, settings)
    processes.kill_hard(node.pid, f"cluster node {node_id}", running=broker.MAIN_CLASS)
    return f"killed cluster node {node_id} (pid {node.pid}, port {node.port}) with SIGKILL{led}"


def _partitions_led(node_id: int, settings: Settings | None) -> str:
    """' ; it led example/0, ...' — what the kill moves, for the one-line report."""
    from helpers import topics

    try:
        client = cluster.client_settings(settings)
        names = topics.cluster(client)["topics"]
        led = [
            f"{name}/{row['partition']}"
            for name in names
            for row in topics.describe_topic(name, client)["partitions"]
            if row["leader"] == node_id
        ]
    except CourseError:
        return ""
    return f"; it led {', '.join(led[:6])}{' ...' if len(led) > 6 else ''}" if led else ""


def restart_node(node_id: int, settings: Settings | None = None) -> str:
    """Start a killed cluster node again on its data: it catches up and rejoins the in-sync replicas."""
    started = time.monotonic()
    node = cluster.start_node(node_id, settings)
    return (
        f"cluster node {node_id} is back on port {node.port} (pid {node.pid}) after "
        f"{time.monotonic() - started:.1f} s"
    )


def kill_taskmanager(settings: Settings | None = None) -> str:
    """SIGKILL a TaskManager of the Flink session cluster that runs tasks now.

    Its job fails, and Flink restarts it by itself from the last checkpoint on the slots left.
    """
    settings = settings or load()
    status = cluster.status(settings)
    if not status["flink_rest"]:
        raise CourseError(
            "No Flink session cluster runs; start one: python -m helpers cluster start "
            "--flink-taskmanagers 2"
        )
    busy = engine_rest.flink_busy_taskmanagers(status["flink_rest"])
    running = [
        EngineProcess(**{k: v for k, v in p.items() if k != "alive"})
        for p in status["processes"]
        if p["role"] == "flink-taskmanager" and p["alive"] and p["id"] in busy
    ]
    if not running:
        raise CourseError(
            "No TaskManager runs a task now: submit a Flink job to the cluster first."
        )
    victim = running[0]
    processes.kill_hard(victim.pid, f"TaskManager {victim.id}", group=True)
    return f"killed TaskManager {victim.id} (pid {victim.pid}) with SIGKILL while it ran tasks"


def kill_counter(counter: CounterProcess) -> str:
    """SIGKILL a counter's whole process (Python and its JVM); resume with a new one on its group."""
    if not isinstance(counter, CounterProcess):
        raise CourseError(
            "Only a counter in its own process can be killed and resumed: use "
            "CounterProcess(engine, topic=..., group=...)."
        )
    return counter.kill()


def pause(counter: KafkaWordCounter) -> str:
    """Stop a plain consumer fetching (it stays in its group): its lag builds while words flow."""
    counter.pause()
    return f"paused {counter.group}: it stays in the group but fetches nothing"


def resume(counter: KafkaWordCounter) -> str:
    """Let a paused plain consumer fetch again: it catches up from where it was."""
    counter.resume()
    return f"resumed {counter.group}: it reads on from its position"
