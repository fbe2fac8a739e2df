"""The embedded single-node Kafka broker (KRaft, no ZooKeeper), run from the locked jars.

``ensure_running()`` is the one call a notebook or test needs: it reuses any Kafka already answering at
the configured address (a user's own, a docker-compose one, or ours from ``make lab``) and starts one
only when nothing is there and the address is on this machine.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import socket
import struct
import subprocess
import threading
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from helpers import jars, processes
from helpers.config import Settings, load
from helpers.errors import CourseError
from helpers.java import find_java

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
CONNECT_TIMEOUT = 3.0

LOG4J2 = """\
Configuration:
  name: course-broker
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: INFO
      - name: state.change.logger
        level: WARN
"""


@dataclass(frozen=True)
class BrokerStatus:
    """What answers at the bootstrap address, and whether this project started it."""

    running: bool
    bootstrap_servers: str
    embedded: bool  # started by this project from the locked jars
    pid: int | None
    log: str | None
    started_here: bool = False  # this call started it (rather than finding it running)
    kafka_version: str | None = None  # read from the running broker's jar; None when not ours

    def as_dict(self) -> dict:
        """A JSON-ready view (for ``--json`` and notebooks)."""
        return asdict(self)


# --- probing -----------------------------------------------------------------------------------------


def _api_versions_request(correlation_id: int) -> bytes:
    client = b"course-probe"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client)) + client  # ApiVersions v0
    return struct.pack(">i", len(body)) + body


def _recv_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def probe(host: str, port: int, timeout: float = CONNECT_TIMEOUT) -> str:
    """'kafka' if a Kafka broker answers there, 'other' if something else listens, 'nothing' if free.

    Raises CourseError when the host name does not resolve.
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror:
        raise CourseError(
            f"Kafka at {host}:{port} is unreachable: the host name does not resolve; "
            "fix KAFKA_BOOTSTRAP_SERVERS or unset it to use the embedded broker."
        ) from None
    except (ConnectionRefusedError, TimeoutError, OSError):
        return "nothing"
    with sock:
        sock.settimeout(timeout)
        correlation_id = int.from_bytes(os.urandom(3), "big")
        try:
            sock.sendall(_api_versions_request(correlation_id))
            head = _recv_exact(sock, 8)
        except OSError:
            return "other"
    if len(head) == 8 and struct.unpack(">ii", head)[1] == correlation_id:
        return "kafka"
    return "other"


# --- the pid file of our own broker -------------------------------------------------------------------


def _pid_file(settings: Settings) -> Path:
    return settings.data_dir / f"broker-{settings.first_server[1]}.json"


def _log_file(settings: Settings) -> Path:
    return settings.logs_dir / f"broker-{settings.first_server[1]}.log"


def alive(pid: int) -> bool:
    """True while ``pid`` is a live Kafka node (a recycled pid is not our broker)."""
    return processes.alive(pid, running=MAIN_CLASS)


def running_kafka_version(pid: int) -> str | None:
    """The Kafka release a broker process runs, read from the ``kafka_2.13-<version>.jar`` it loaded."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    found = re.search(r"kafka_2\.13-([0-9][^/:\x00]*?)\.jar", command_line)
    return found.group(1) if found else None


def _our_pid(settings: Settings) -> int | None:
    try:
        pid = json.loads(_pid_file(settings).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None
    return pid if alive(pid) else None


# --- starting and stopping --------------------------------------------------------------------------


def node_properties(
    *, node_id: int, host: str, port: int, controller_port: int, voters: str, log_dir: Path,
    replication: int = 1, min_insync: int = 1,
) -> str:  # fmt: skip
    """One KRaft node playing broker and controller; ``voters`` lists the quorum (id@host:port,...).

    ``replication`` and ``min_insync`` are the defaults of every topic, the internal ones included: 1
    and 1 on the single embedded broker, 3 and 2 on a three-node cluster (one node may die).
    """
    bind = "127.0.0.1" if host in {"localhost", "127.0.0.1"} else host
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{bind}:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={log_dir}",
            "num.partitions=1",
            f"default.replication.factor={replication}",
            f"min.insync.replicas={min_insync}",
            f"offsets.topic.replication.factor={replication}",
            "offsets.topic.num.partitions=4",  # 50 by default: slow first start, no use here
            f"transaction.state.log.replication.factor={replication}",
            f"transaction.state.log.min.isr={min_insync}",
            f"share.coordinator.state.topic.replication.factor={replication}",
            f"share.coordinator.state.topic.min.isr={min_insync}",
            "group.initial.rebalance.delay.ms=0",  # consumers in a lesson should start at once
            "auto.create.topics.enable=true",
            "log.retention.hours=24",
            "",
        ]
    )


def _properties(settings: Settings) -> str:
    host, port = settings.first_server
    cport = settings.controller_port
    return node_properties(
        node_id=1, host=host, port=port, controller_port=cport, voters=f"1@127.0.0.1:{cport}",
        log_dir=settings.data_dir_broker / str(port),
    )  # fmt: skip


def jvm_command(settings: Settings, main_class: str, *args: str) -> list[str]:
    """The java command line that runs one of Kafka's main classes from the locked jars."""
    java = find_java()
    classpath = os.pathsep.join(str(p) for p in jars.classpath(settings, "broker"))
    config = settings.data_dir / "log4j2.yaml"
    return [
        str(java.executable),
        *settings.broker_heap.split(),
        "-XX:+UseSerialGC",  # one node, small heap: the cheapest collector in memory and threads
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config}",
        f"-Dkafka.logs.dir={settings.logs_dir}",
        "-cp",
        classpath,
        main_class,
        *args,
    ]


def format_storage(
    settings: Settings, properties: Path, log_dir: Path, cluster_id: str | None = None
) -> None:
    """Format a node's log directory once (KRaft needs it); every node of a cluster shares its id."""
    if (log_dir / "meta.properties").exists():
        return
    command = jvm_command(
        settings, STORAGE_TOOL, "format", "-t", cluster_id or new_cluster_id(), "-c",
        str(properties), "--ignore-formatted",
    )  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise CourseError(f"Formatting the broker's storage failed: {' | '.join(last)}")


def new_cluster_id() -> str:
    """A random KRaft cluster id (what `kafka-storage random-uuid` prints)."""
    import base64

    while True:  # as Kafka's own Uuid.randomUuid(): one in 64 starts with "-", which the tool's
        # argument parser takes for an option ("--cluster-id: expected one argument")
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _wait_ready(settings: Settings, process: subprocess.Popen, log: Path) -> None:
    host, port = settings.first_server
    if not processes.wait_ready(
        lambda: probe(host, port, timeout=1.0) == "kafka" and metadata_ready(settings),
        [processes.Started("broker", lambda: process.poll() is None, log)],
        settings.start_timeout,
        every=0.2,
    ):
        processes.terminate(process.pid)
        raise CourseError(
            f"The broker did not become ready within {settings.start_timeout:.0f}s; see {log}: "
            f"{processes.last_lines(log)}"
        )


def metadata_ready(settings: Settings, brokers: int = 1) -> bool:
    """True once ``brokers`` brokers are registered: then the controller is up, topics can be made."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            request_timeout_ms=3000,
            bootstrap_timeout_ms=3000,
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return len(admin.describe_cluster()["brokers"]) >= brokers
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def status(settings: Settings | None = None) -> BrokerStatus:
    """What answers at the configured address right now (never starts anything)."""
    settings = settings or load()
    host, port = settings.first_server
    pid = _our_pid(settings)
    running = probe(host, port) == "kafka"
    return BrokerStatus(
        running=running,
        bootstrap_servers=settings.bootstrap_servers,
        embedded=pid is not None,
        pid=pid,
        log=str(_log_file(settings)) if pid else None,
        kafka_version=running_kafka_version(pid) if pid else None,
    )


def ensure_running(settings: Settings | None = None, stop_at_exit: bool = False) -> BrokerStatus:
    """Reuse the Kafka at the configured address, or start the embedded broker there.

    With ``stop_at_exit`` a broker started by this call is stopped when this Python process exits (a
    notebook kernel, a test session); without it (the CLI, ``make lab``) it runs until ``stop()``.
    """
    settings = settings or load()
    host, port = settings.first_server
    found = probe(host, port)
    if found == "kafka":
        return status(settings)
    if found == "other":
        raise CourseError(
            f"{host}:{port} is taken by something that is not Kafka; stop it or set "
            "KAFKA_BOOTSTRAP_SERVERS to a free port (e.g. localhost:19092)."
        )
    if host not in LOCAL_HOSTS:
        raise CourseError(
            f"No Kafka answers at {host}:{port} (KAFKA_BOOTSTRAP_SERVERS); start that broker, or "
            "unset KAFKA_BOOTSTRAP_SERVERS to use the embedded one."
        )
    return _start(settings, stop_at_exit)


_start_lock = threading.Lock()


def _start(settings: Settings, stop_at_exit: bool) -> BrokerStatus:
    with _start_lock:
        if not processes.port_is_free("127.0.0.1", settings.controller_port):
            raise CourseError(
                f"The broker's controller port {settings.controller_port} is taken; set "
                "KAFKA_CONTROLLER_PORT to a free port."
            )
        settings.logs_dir.mkdir(parents=True, exist_ok=True)
        properties = settings.data_dir / f"server-{settings.first_server[1]}.properties"
        properties.write_text(_properties(settings))
        (settings.data_dir / "log4j2.yaml").write_text(LOG4J2)
        format_storage(
            settings, properties, settings.data_dir_broker / str(settings.first_server[1])
        )
        log = _log_file(settings)
        owned = stop_at_exit and threading.current_thread() is threading.main_thread()
        process = launch(settings, properties, log, owned)
        _pid_file(settings).write_text(json.dumps({"pid": process.pid, "log": str(log)}))
        _wait_ready(settings, process, log)
        if stop_at_exit:
            atexit.register(stop, settings)
    return BrokerStatus(
        running=True,
        bootstrap_servers=settings.bootstrap_servers,
        embedded=True,
        pid=process.pid,
        log=str(log),
        started_here=True,
        kafka_version=running_kafka_version(process.pid),
    )


def launch(settings: Settings, properties: Path, log: Path, owned: bool) -> subprocess.Popen:
    """Start one Kafka node in its own session, its output appended to ``log``.

    ``owned``: it dies with this process (a notebook kernel, a test session) rather than outliving it.
    """
    return processes.start_logged(
        jvm_command(settings, MAIN_CLASS, str(properties)), log, owned=owned
    )


def stop(settings: Settings | None = None) -> BrokerStatus:
    """Stop the embedded broker of this address if this project started it; others are left alone."""
    settings = settings or load()
    pid = _our_pid(settings)
    if pid is not None:
        processes.terminate(pid)
    _pid_file(settings).unlink(missing_ok=True)
    return status(settings)
