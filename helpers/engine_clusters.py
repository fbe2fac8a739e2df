"""Spark standalone and a Flink session cluster on loopback, started with the launchers inside the wheels.

The same code that counts in one process counts on these: ``SPARK_MASTER=spark://…`` makes the Spark counter
run its executors on the workers, and ``FLINK_REST_ADDRESS=host:port`` submits the Flink job to the
JobManager, whose TaskManagers run it. Nothing here imitates a cluster: these are the engines' own Master,
Worker, JobManager and TaskManager, each a JVM in its own process group (``pyspark/bin/spark-class``,
``pyflink/bin/jobmanager.sh`` and ``taskmanager.sh``, in the foreground).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from helpers import processes
from helpers.config import Settings
from helpers.engine_rest import get_json
from helpers.errors import CourseError
from helpers.java import find_java

SPARK_OFFSET = (
    300  # ports from the cluster's first port: Spark master +300, its UI +301, workers +310+i
)
FLINK_OFFSET = 400  # Flink REST and web UI +400, JobManager RPC +401
SPARK_WORKER_MEMORY = "1g"
SPARK_EXECUTOR_MEMORY = "512m"  # two executors fit one 1g worker each, with the driver beside them
FLINK_JOBMANAGER_MEMORY = "768m"  # process sizes: what `footprint` measures, not just heaps
FLINK_TASKMANAGER_MEMORY = "1024m"
FLINK_HEARTBEAT = {
    "interval": 2000,
    "timeout": 10000,
}  # ms: a killed TaskManager is noticed in 10 s
FLINK_SLOTS = 2  # per TaskManager: a job of parallelism 2 fits one, rescaled jobs use more


@dataclass(frozen=True)
class EngineProcess:
    """One JVM of an engine's cluster: what it is, where it listens, where it logs."""

    role: str  # spark-master, spark-worker, flink-jobmanager, flink-taskmanager
    id: int
    pid: int
    port: int | None
    ui: str | None
    log: str

    @property
    def alive(self) -> bool:
        """True while its process group has a live process."""
        return processes.group_alive(self.pid)

    def as_dict(self) -> dict:
        """JSON-ready, with ``alive``."""
        return {**asdict(self), "alive": self.alive}


def spark_master_url(settings: Settings) -> str:
    """``spark://127.0.0.1:port``: what SPARK_MASTER is set to."""
    return f"spark://127.0.0.1:{settings.cluster_port + SPARK_OFFSET}"


def flink_rest_address(settings: Settings) -> str:
    """``localhost:port``: what FLINK_REST_ADDRESS is set to (also the web UI)."""
    return f"localhost:{settings.cluster_port + FLINK_OFFSET}"


def _wheel_home(package: str) -> Path:
    module = __import__(package)
    return Path(module.__file__).resolve().parent


def _launch(command: list[str], env: dict, log: Path, owned: bool) -> int:
    """Start one JVM in its own process group; ``owned``: it gets SIGTERM when this process dies."""
    return processes.start_logged(command, log, env=env, owned=owned, cwd=log.parent).pid


def require_free_port(port: int, what: str) -> None:
    """A one-line error naming the port and what needs it, when something already listens there."""
    processes.require_free_port(
        port, what, hint=", or start the cluster elsewhere: python -m helpers cluster start "
        "--port 9392 (or COURSE_CLUSTER_PORT)",
    )  # fmt: skip


@dataclass(frozen=True)
class Launching:
    """JVMs just started, and how to tell they have registered.

    Start every part first, then wait for all: the JVMs start side by side instead of one after the
    other (a Spark worker and a Flink TaskManager together, as chapter 09 adds them).
    """

    processes: list[EngineProcess]
    ready: Callable[[], bool]
    what: str
    timeout: float

    def wait(self) -> list[EngineProcess]:
        """Wait until ``ready()``, or say why not (the caller stops everything it launched)."""
        waited = [processes.Started(f"{e.role} {e.id}", partial(processes.group_alive, e.pid), e.log)
                  for e in self.processes]  # fmt: skip
        if not processes.wait_ready(self.ready, waited, self.timeout, every=0.5):
            raise CourseError(f"{self.what} was not ready within {self.timeout:.0f} s; "
                              f"see {self.processes[0].log}")  # fmt: skip
        return self.processes


def _start_timeout(settings: Settings) -> float:
    """Several JVMs start at once here: on two busy cores that takes minutes, not seconds."""
    return max(settings.start_timeout, 240.0)


# --- Spark standalone -------------------------------------------------------------------------------


def _spark_class() -> str:
    return str(_wheel_home("pyspark") / "bin" / "spark-class")


def _spark_secret_file(settings: Settings, master: str | None = None) -> Path:
    """The secret of the course's Spark master at ``master`` (default: this settings' own)."""
    port = (master or spark_master_url(settings)).rpartition(":")[2]
    return settings.data_dir / "secrets" / f"spark-{port}"


def _new_spark_secret(settings: Settings) -> str:
    """A fresh secret for this cluster, kept where only this user can read it (0600)."""
    path = _spark_secret_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_hex(32)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret)
    return secret


def spark_authentication(settings: Settings, master: str) -> dict[str, str]:
    """The driver's settings for the course's standalone cluster at ``master``: its secret, or none.

    The master and workers run with ``spark.authenticate``: an application without the secret is
    refused, so nobody else on the machine can run code in the cluster's executors.
    """
    if not master.startswith("spark://127.0.0.1:"):
        return {}
    try:
        secret = _spark_secret_file(settings, master).read_text().strip()
    except OSError:
        return {}
    return {"spark.authenticate": "true", "spark.authenticate.secret": secret}


def forget_spark_secret(settings: Settings) -> None:
    """The cluster is gone: so is its secret (no driver is handed one for a master that left)."""
    _spark_secret_file(settings).unlink(missing_ok=True)


def _spark_env(settings: Settings, home: Path) -> dict:
    try:  # made by start_spark: a worker added later must hold the master's very secret
        secret = _spark_secret_file(settings).read_text().strip()
    except OSError:
        raise CourseError(
            "The Spark cluster's secret is gone (its master was started by another data folder?); "
            "stop the cluster and start it again: python -m helpers cluster stop"
        ) from None
    return {
        "SPARK_HOME": str(_wheel_home("pyspark")),
        "JAVA_HOME": str(find_java().home),
        "SPARK_LOCAL_IP": settings.bind_address,  # every server of the daemon listens here
        # the master and workers refuse an application without the secret; the workers hand it
        # to the executors they start (Spark reads it from this variable: not on a command line)
        "SPARK_DAEMON_JAVA_OPTS": "-Dspark.authenticate=true",
        "_SPARK_AUTH_SECRET": secret,
        "SPARK_NO_DAEMONIZE": "1",
        "SPARK_LOG_DIR": str(settings.logs_dir),
        "SPARK_WORKER_DIR": str(home / "spark-work"),
    }


def _start_spark_worker(settings: Settings, i: int, home: Path, owned: bool) -> EngineProcess:
    """Worker ``i``: one core and 1 GB for executors, its web UI on the master's port + 10 + i."""
    worker_ui = settings.cluster_port + SPARK_OFFSET + 10 + i
    require_free_port(worker_ui, f"Spark worker {i} UI")
    log = settings.logs_dir / f"cluster-spark-worker-{i}.log"
    pid = _launch(
        [_spark_class(), "org.apache.spark.deploy.worker.Worker", spark_master_url(settings),
         "--host", "127.0.0.1", "--cores", "1", "--memory", SPARK_WORKER_MEMORY,
         "--webui-port", str(worker_ui)],
        _spark_env(settings, home), log, owned,
    )  # fmt: skip
    return EngineProcess("spark-worker", i, pid, None, f"http://127.0.0.1:{worker_ui}", str(log))


def start_spark(settings: Settings, workers: int, home: Path, owned: bool = False) -> Launching:
    """A Spark Master and ``workers`` Workers (one core, 1 GB each), ready once all have registered.

    ``owned``: every JVM dies with this process (a notebook kernel, a test session), even on SIGKILL.
    """
    port = settings.cluster_port + SPARK_OFFSET
    ui_port = port + 1
    for p, what in ((port, "Spark master"), (ui_port, "Spark master UI")):
        require_free_port(p, what)
    _new_spark_secret(settings)  # a new cluster, a new secret
    log = settings.logs_dir / "cluster-spark-master.log"
    pid = _launch(
        [_spark_class(), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(ui_port)],
        _spark_env(settings, home), log, owned,
    )  # fmt: skip
    started = [EngineProcess("spark-master", 0, pid, port, f"http://127.0.0.1:{ui_port}", str(log))]
    started += [_start_spark_worker(settings, i, home, owned) for i in range(1, workers + 1)]

    def ready() -> bool:
        state = get_json(f"http://127.0.0.1:{ui_port}/json/")
        return bool(state) and state.get("aliveworkers") == workers

    return Launching(started, ready, f"Spark's master with {workers} worker(s)",
                     _start_timeout(settings))  # fmt: skip


# --- Flink session cluster --------------------------------------------------------------------------


def _flink_config(settings: Settings, conf_dir: Path) -> None:
    """config.yaml for the JobManager and TaskManagers (Flink 2 reads YAML), and their log setup."""
    rest = settings.cluster_port + FLINK_OFFSET
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "config.yaml").write_text(
        "\n".join(
            [
                "jobmanager:",
                f"  rpc: {{address: localhost, port: {rest + 1}}}",
                f"  bind-host: {settings.bind_address}",
                f"  memory: {{process: {{size: {FLINK_JOBMANAGER_MEMORY}}}}}",
                "taskmanager:",
                f"  bind-host: {settings.bind_address}",
                "  host: localhost",
                f"  numberOfTaskSlots: {FLINK_SLOTS}",
                f"  memory: {{process: {{size: {FLINK_TASKMANAGER_MEMORY}}}}}",
                f"rest: {{address: localhost, bind-address: {settings.bind_address}, port: {rest}}}",
                f"heartbeat: {{interval: {FLINK_HEARTBEAT['interval']}, "
                f"timeout: {FLINK_HEARTBEAT['timeout']}}}",
                "parallelism: {default: 2}",
                "",
            ]
        )
    )
    shipped = _wheel_home("pyflink") / "conf"
    for name in ("log4j-console.properties", "log4j.properties", "logback-console.xml"):
        if (shipped / name).exists():
            shutil.copy(shipped / name, conf_dir / name)


def _flink_env(settings: Settings, home: Path) -> dict:
    return {
        "FLINK_HOME": str(_wheel_home("pyflink")),
        "FLINK_CONF_DIR": str(home / "flink-conf"),
        "FLINK_LOG_DIR": str(settings.logs_dir),
        "JAVA_HOME": str(find_java().home),
        "JVM_ARGS": "",  # not the Flink client's heap options, when a counter's process grows the cluster
    }


def start_flink(
    settings: Settings, taskmanagers: int, home: Path, owned: bool = False
) -> Launching:
    """A JobManager and ``taskmanagers`` TaskManagers (2 slots each), ready once all registered."""
    flink_home = _wheel_home("pyflink")
    rest = settings.cluster_port + FLINK_OFFSET
    for p, what in ((rest, "Flink REST"), (rest + 1, "Flink JobManager RPC")):
        require_free_port(p, what)
    conf_dir = home / "flink-conf"
    _flink_config(settings, conf_dir)
    env = _flink_env(settings, home)
    bin_dir = flink_home / "bin"
    log = settings.logs_dir / "cluster-flink-jobmanager.log"
    pid = _launch(["bash", str(bin_dir / "jobmanager.sh"), "start-foreground"], env, log, owned)
    ui = f"http://localhost:{rest}"
    started = [EngineProcess("flink-jobmanager", 0, pid, rest, ui, str(log))]
    started += add_taskmanagers(settings, taskmanagers, home, first=1, owned=owned)

    def ready() -> bool:
        overview = get_json(f"http://localhost:{rest}/overview")
        return bool(overview) and overview.get("taskmanagers") == taskmanagers

    return Launching(started, ready, f"Flink's JobManager with {taskmanagers} TaskManager(s)",
                     _start_timeout(settings))  # fmt: skip


def grow(
    settings: Settings,
    live: list[EngineProcess],
    role: str,
    wanted: int,
    home: Path,
    say: Callable[[str], None],
    owned: bool = False,
) -> Launching:
    """Start more ``role`` in a running cluster until ``wanted`` are alive (none when enough are).

    A running Spark application gets executors on new workers by itself; a running Flink job keeps its
    parallelism until it is rescaled (``FlinkWordCounter.rescale``) onto the new slots.
    """
    alive = [e for e in live if e.role == role]
    missing = wanted - len(alive)
    if missing <= 0:
        return Launching(
            [], lambda: True, f"no more {role}", 0.0
        )  # enough are alive: none to wait for
    first = max((e.id for e in alive), default=0) + 1
    say(f"adding {missing} {role}(s) to the running cluster")
    if role == "spark-worker":
        added = [
            _start_spark_worker(settings, i, home, owned) for i in range(first, first + missing)
        ]
        ui = f"http://127.0.0.1:{settings.cluster_port + SPARK_OFFSET + 1}"

        def ready() -> bool:
            return ((get_json(f"{ui}/json/") or {}).get("aliveworkers") or 0) >= wanted
    else:
        added = add_taskmanagers(settings, missing, home, first=first, owned=owned)
        rest = f"http://{flink_rest_address(settings)}"

        def ready() -> bool:
            return ((get_json(f"{rest}/overview") or {}).get("taskmanagers") or 0) >= wanted

    return Launching(added, ready, f"{missing} more {role}(s)", _start_timeout(settings))


def add_taskmanagers(
    settings: Settings, count: int, home: Path, first: int, owned: bool = False
) -> list[EngineProcess]:
    """Start ``count`` more TaskManagers (ids from ``first``): a running job can rescale onto them."""
    env = _flink_env(settings, home)
    script = str(_wheel_home("pyflink") / "bin" / "taskmanager.sh")
    started = []
    for i in range(first, first + count):
        log = settings.logs_dir / f"cluster-flink-taskmanager-{i}.log"
        # its id in Flink's REST API and web UI is "taskmanager-<i>", as in `cluster status`
        command = ["bash", script, "start-foreground", f"-Dtaskmanager.resource-id=taskmanager-{i}"]
        pid = _launch(command, env, log, owned)
        started.append(EngineProcess("flink-taskmanager", i, pid, None, None, str(log)))
    return started


# --- stopping ---------------------------------------------------------------------------------------


def stop_all(engines: list[EngineProcess], grace: float = 20.0) -> None:
    """SIGTERM every process group at once, then SIGKILL what is left after ``grace`` seconds."""
    processes.stop_groups([e.pid for e in engines], grace)
