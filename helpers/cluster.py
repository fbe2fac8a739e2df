"""A local Kafka cluster of several KRaft nodes, from the same locked jars as the embedded broker.

No Docker: each node is one JVM on loopback playing broker and controller, so one node may die and the
other two keep a quorum. Topics default to replication 3 (every node holds a copy) and
``min.insync.replicas=2``: with ``acks=all`` a message is acknowledged once two copies exist, so killing
any one node loses nothing acknowledged. Clients reach it through ``KAFKA_BOOTSTRAP_SERVERS`` set to
``status()["bootstrap_servers"]``.

The cluster's state (node ids, pids, ports, logs) is kept in ``<data dir>/cluster/cluster.json``, so
``status`` and ``stop`` work from any process, e.g. a terminal after a notebook started it.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

from helpers import broker, engine_clusters, processes
from helpers.config import Settings, load
from helpers.engine_clusters import EngineProcess
from helpers.errors import CourseError
from helpers.wait import wait_until

ROLE = "broker,controller"
CONTROLLER_OFFSET = 100  # node i listens for clients on port+i and for the quorum on port+100+i
MAX_NODES = 9


@dataclass(frozen=True)
class Node:
    """One KRaft node of the cluster, as its state file remembers it."""

    id: int
    port: int
    controller_port: int
    pid: int | None
    log: str
    role: str = ROLE

    @property
    def alive(self) -> bool:
        """True while its JVM runs (a killed node stays listed, with alive False)."""
        return self.pid is not None and broker.alive(self.pid)

    def as_dict(self) -> dict:
        """A JSON-ready view with ``alive``."""
        return {**asdict(self), "alive": self.alive}


def _home(settings: Settings) -> Path:
    return settings.data_dir / "cluster"


def _state_file(settings: Settings) -> Path:
    return _home(settings) / "cluster.json"


def _read_state(settings: Settings) -> dict | None:
    try:
        return json.loads(_state_file(settings).read_text())
    except (OSError, ValueError):
        return None


def _write_state(settings: Settings, state: dict) -> None:
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=1))
    os.replace(temporary, path)


def _nodes(state: dict) -> list[Node]:
    return [Node(**node) for node in state["nodes"]]


def bootstrap_servers(nodes: list[Node]) -> str:
    """Every node's client address: a client that knows all of them survives any one's death."""
    return ",".join(f"localhost:{node.port}" for node in nodes)


def client_settings(settings: Settings | None = None) -> Settings:
    """Settings whose ``bootstrap_servers`` is the running cluster (what producers and counters use)."""
    settings = settings or load()
    state = _read_state(settings)
    if state is None:
        raise CourseError("No cluster is running; start one with: python -m helpers cluster start")
    return replace(settings, bootstrap_servers=bootstrap_servers(_nodes(state)))


# --- status --------------------------------------------------------------------------------------


def status(settings: Settings | None = None) -> dict:
    """Every node (id, pid, port, role, alive) and the bootstrap servers; never starts anything."""
    settings = settings or load()
    state = _read_state(settings)
    if state is None:
        return {"running": False, "nodes": [], "processes": [], "bootstrap_servers": None}
    nodes = _nodes(state)
    views = [node.as_dict() for node in nodes]
    engines = [EngineProcess(**e).as_dict() for e in state.get("engines", [])]
    alive = [view["alive"] for view in views + engines]
    web_uis = {
        e["role"]: e["ui"]
        for e in engines
        if e["ui"] and e["role"].endswith(("master", "jobmanager"))
    }
    return {
        "running": any(alive),
        "healthy": bool(alive) and all(alive),
        "nodes": views,
        "bootstrap_servers": bootstrap_servers(nodes) if nodes else None,
        "spark_master": state.get("spark_master") if engines else None,
        "flink_rest": state.get("flink_rest") if engines else None,
        "web_uis": web_uis,
        "processes": engines,
        "data": str(_home(settings)),
    }


def table(status: dict) -> list[dict]:
    """One row per broker and engine process (role, id, pid, port, alive), ready for a DataFrame.

    A process without a port of its own shows "" rather than a missing value (which pandas would
    show as NaN, and turn every other port of the column into a float).
    """
    rows = status["nodes"] + status["processes"]
    return [
        {key: ("" if row.get(key) is None else row[key]) for key in TABLE_COLUMNS} for row in rows
    ]


TABLE_COLUMNS = ("role", "id", "pid", "port", "alive")


# --- starting ------------------------------------------------------------------------------------


def _plan(brokers: int, port: int, settings: Settings) -> list[Node]:
    return [
        Node(
            id=i,
            port=port + i - 1,
            controller_port=port + CONTROLLER_OFFSET + i - 1,
            pid=None,
            log=str(settings.logs_dir / f"cluster-node-{i}.log"),
        )
        for i in range(1, brokers + 1)
    ]


def _check_ports(nodes: list[Node]) -> None:
    for node in nodes:
        for port in (node.port, node.controller_port):
            engine_clusters.require_free_port(port, f"node {node.id}")


def _properties_file(settings: Settings, node: Node, nodes: list[Node]) -> Path:
    voters = ",".join(f"{n.id}@127.0.0.1:{n.controller_port}" for n in nodes)
    replication = min(3, len(nodes))
    path = _home(settings) / f"node-{node.id}.properties"
    path.write_text(
        broker.node_properties(
            node_id=node.id, host="localhost", port=node.port, controller_port=node.controller_port,
            voters=voters, log_dir=_home(settings) / f"node-{node.id}",
            replication=replication, min_insync=max(1, replication - 1),
        )
    )  # fmt: skip
    return path


def _launch(settings: Settings, node: Node, nodes: list[Node], owned: bool) -> Node:
    properties = _properties_file(settings, node, nodes)
    process = broker.launch(settings, properties, Path(node.log), owned)
    return replace(node, pid=process.pid)


def _format_all(settings: Settings, nodes: list[Node], cluster_id: str) -> None:
    """Format every node's directory with the one cluster id, in parallel (a JVM start each)."""
    errors: list[BaseException] = []

    def format_one(node: Node) -> None:
        try:
            properties = _properties_file(settings, node, nodes)
            broker.format_storage(
                settings, properties, _home(settings) / f"node-{node.id}", cluster_id
            )
        except CourseError as error:
            errors.append(error)

    threads = [threading.Thread(target=format_one, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _wait_ready(settings: Settings, nodes: list[Node], say: Callable[[str], None]) -> None:
    client = replace(settings, bootstrap_servers=bootstrap_servers(nodes))
    waiting = {node.id for node in nodes}

    def ready() -> bool:
        for node in nodes:
            if node.id in waiting and broker.probe("localhost", node.port, 1.0) == "kafka":
                waiting.discard(node.id)
                say(f"node {node.id} answers on port {node.port}")
        return not waiting and broker.metadata_ready(client, brokers=len(nodes))

    started = [
        processes.Started(f"cluster node {node.id}", partial(broker.alive, node.pid), node.log)
        for node in nodes
    ]
    if not processes.wait_ready(ready, started, settings.start_timeout):
        raise CourseError(
            f"The cluster was not ready within {settings.start_timeout:.0f} s (nodes "
            f"{sorted(waiting) or 'all up, but not every broker registered'}); see {nodes[0].log}"
        )


def start(
    brokers: int = 3,
    port: int | None = None,
    settings: Settings | None = None,
    stop_at_exit: bool = False,
    say: Callable[[str], None] = lambda line: None,
    spark_workers: int = 0,
    flink_taskmanagers: int = 0,
) -> dict:
    """Start the parts asked for that are not running yet; returns the status.

    The parts: ``brokers`` Kafka nodes, a Spark master with ``spark_workers`` workers, a Flink
    JobManager with ``flink_taskmanagers`` TaskManagers.

    Parts already running are kept (a Kafka node that died is started again); asking a running Spark
    or Flink cluster for more workers or TaskManagers than it has adds them, while jobs run.
    With ``stop_at_exit`` everything is stopped when this Python process ends (a test, a notebook
    kernel); without it (the CLI) it runs until ``stop()``. ``say`` hears progress, one line a step.
    """
    settings = settings or load()
    current = _read_state(settings) if status(settings)["running"] else None
    if port or (current and current.get("port")):  # a running cluster keeps the ports it has
        settings = replace(settings, cluster_port=port or current["port"])
    if not 0 <= brokers <= MAX_NODES or not (brokers or spark_workers or flink_taskmanagers):
        raise CourseError(f"--brokers {brokers}: give 1 to {MAX_NODES} nodes (3 is the usual).")
    if spark_workers < 0 or flink_taskmanagers < 0:
        raise CourseError("--spark-workers and --flink-taskmanagers are counts: 0 or more.")
    started = False
    if brokers:
        started = _start_kafka(brokers, settings, stop_at_exit, say)
    state = _read_state(settings) or {"nodes": []}
    engines = [EngineProcess(**e) for e in state.get("engines", [])]
    live = [e for e in engines if e.alive]
    running = {e.role for e in live}
    home = _home(settings)
    home.mkdir(parents=True, exist_ok=True)
    owned = _owned_here(state, stop_at_exit)
    launching: list[engine_clusters.Launching] = []  # every part starts at once, then all are
    try:  # waited for: their JVMs start side by side
        if spark_workers and "spark-master" not in running:
            say(f"starting Spark: a master and {spark_workers} worker(s)")
            launching.append(engine_clusters.start_spark(settings, spark_workers, home, owned))
            state["spark_master"] = engine_clusters.spark_master_url(settings)
        elif spark_workers:  # a running master: add the missing workers (and replace dead ones)
            launching.append(engine_clusters.grow(settings, live, "spark-worker", spark_workers,
                                                  home, say, owned))  # fmt: skip
        if flink_taskmanagers and "flink-jobmanager" not in running:
            say(f"starting Flink: a JobManager and {flink_taskmanagers} TaskManager(s)")
            launching.append(engine_clusters.start_flink(settings, flink_taskmanagers, home, owned))
            state["flink_rest"] = engine_clusters.flink_rest_address(settings)
        elif flink_taskmanagers:
            launching.append(engine_clusters.grow(settings, live, "flink-taskmanager",
                                                  flink_taskmanagers, home, say, owned))  # fmt: skip
        if waited := [part.what for part in launching if part.processes]:
            say("waiting for " + " and ".join(waited))
        for part in launching:
            part.wait()
    except CourseError:
        engine_clusters.stop_all([p for part in launching for p in part.processes])
        launching.clear()  # all stopped: none is written down as part of the cluster
        raise
    finally:
        added = [process for part in launching for process in part.processes]
        if added:
            kept = [asdict(e) for e in live + added]  # the dead are forgotten
            owner = os.getpid() if stop_at_exit and not live else state.get("owner")
            _write_state(
                settings,
                {**state, "port": settings.cluster_port, "engines": kept, "owner": owner},
            )
    if added and stop_at_exit:
        atexit.register(stop, settings)
    return {**status(settings), "started_here": started or bool(added)}


def _owned_here(state: dict, stop_at_exit: bool) -> bool:
    """Whether the engines' JVMs started now die with this process, even when it is killed.

    Yes for a cluster started to stop at exit (a notebook kernel, a test session), and for the
    workers that same process adds later; no for a cluster the CLI started, which outlives any
    notebook that grows it. Linux ties a child to the thread that started it: the main thread only.
    """
    mine = stop_at_exit or state.get("owner") == os.getpid()
    return mine and threading.current_thread() is threading.main_thread()


def _start_kafka(
    brokers: int, settings: Settings, stop_at_exit: bool, say: Callable[[str], None]
) -> bool:
    """The Kafka part of ``start``; True when it started a node."""
    state = _read_state(settings)
    if state is not None and any(node.alive for node in _nodes(state)):
        if len(state["nodes"]) != brokers:
            raise CourseError(
                f"A cluster of {len(state['nodes'])} nodes is running; stop it first: "
                "python -m helpers cluster stop"
            )
        return _start_dead_nodes(settings, state, stop_at_exit, say)["started_here"]
    nodes = _plan(brokers, settings.cluster_port, settings)
    _check_ports(nodes)
    if (
        state
        and state.get("nodes")
        and [n["port"] for n in state["nodes"]] != [n.port for n in nodes]
    ):
        shutil.rmtree(_home(settings), ignore_errors=True)  # another shape: its data is no use
        say("a cluster of another shape was stopped here: starting from empty data")
        state = None
    _home(settings).mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "log4j2.yaml").write_text(broker.LOG4J2)
    cluster_id = state["cluster_id"] if state and "cluster_id" in state else broker.new_cluster_id()
    say(f"formatting {brokers} node(s)")
    _format_all(settings, nodes, cluster_id)
    owned = stop_at_exit and threading.current_thread() is threading.main_thread()
    nodes = [_launch(settings, node, nodes, owned) for node in nodes]
    state = {**(state or {}), "cluster_id": cluster_id, "port": settings.cluster_port,
             "nodes": [asdict(node) for node in nodes]}  # fmt: skip
    _write_state(settings, state)
    if stop_at_exit:
        atexit.register(stop, settings)
    say(f"started {brokers} JVM(s); waiting for the quorum and every broker")
    try:
        _wait_ready(settings, nodes, say)
    except CourseError:
        stop(settings)
        raise
    return True


def _start_dead_nodes(
    settings: Settings, state: dict, stop_at_exit: bool, say: Callable[[str], None]
) -> dict:
    nodes = _nodes(state)
    dead = [node for node in nodes if not node.alive]
    if not dead:
        return {**status(settings), "started_here": False}
    _check_ports(dead)
    owned = stop_at_exit and threading.current_thread() is threading.main_thread()
    restarted = {node.id: _launch(settings, node, nodes, owned) for node in dead}
    nodes = [restarted.get(node.id, node) for node in nodes]
    _write_state(settings, {**state, "nodes": [asdict(node) for node in nodes]})
    say(f"restarted node(s) {sorted(restarted)}")
    _wait_ready(settings, nodes, say)
    return {**status(settings), "started_here": True}


def start_node(node_id: int, settings: Settings | None = None) -> Node:
    """Start one stopped or killed node again on its data; it catches up from the others."""
    settings = settings or load()
    state = _read_state(settings)
    if state is None:
        raise CourseError("No cluster is running; start one with: python -m helpers cluster start")
    node = node_by_id(node_id, settings)
    if node.alive:
        return node
    _start_dead_nodes(settings, state, stop_at_exit=False, say=lambda line: None)
    return node_by_id(node_id, settings)


def node_by_id(node_id: int, settings: Settings | None = None) -> Node:
    """The node with this id, or a one-line error listing the ids there are."""
    settings = settings or load()
    state = _read_state(settings)
    nodes = _nodes(state) if state else []
    for node in nodes:
        if node.id == node_id:
            return node
    raise CourseError(
        f"The cluster has no node {node_id}; its nodes are {[n.id for n in nodes] or 'none'}."
    )


def leader_of(topic: str, partition: int = 0, settings: Settings | None = None) -> int:
    """The id of the node that leads ``partition`` of ``topic`` now."""
    from helpers import topics

    described = topics.describe_topic(topic, client_settings(settings))
    for row in described["partitions"]:
        if row["partition"] == partition:
            return row["leader"]
    raise CourseError(f"Topic {topic} has no partition {partition}.")


# --- stopping ------------------------------------------------------------------------------------


def stop(settings: Settings | None = None, grace: float = 30.0) -> dict:
    """Stop every node at once (one by one, the last ones would wait for a lost quorum); keep data."""
    settings = settings or load()
    state = _read_state(settings)
    if state is None:
        return status(settings)
    engines = [EngineProcess(**e) for e in state.get("engines", [])]
    engine_clusters.stop_all(engines)  # the engines first: a job stops before the brokers go
    engine_clusters.forget_spark_secret(settings)
    state = {**state, "engines": []}
    _write_state(settings, state)
    pids = [node.pid for node in _nodes(state) if node.alive]
    # all at once (each thread sends its SIGTERM): one by one, the last would wait for a lost quorum
    threads = [threading.Thread(target=processes.terminate, args=(pid, grace)) for pid in pids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: not any(broker.alive(pid) for pid in pids), 10, "the nodes to exit")
    ports = [p for node in _nodes(state) for p in (node.port, node.controller_port)]
    wait_until(
        lambda: all(processes.port_is_free("127.0.0.1", p) for p in ports),
        15,
        "the ports to be free",
    )
    _write_state(settings, {**state, "nodes": [{**n, "pid": None} for n in state["nodes"]]})
    return {**status(settings), "stopped": len(pids) + len(engines)}
