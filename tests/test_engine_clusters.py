"""The engines' own clusters on loopback: a Kafka node, Spark standalone, a Flink session cluster.

One Kafka node here (test_cluster.py has the three-node cluster and its failover): two JVMs fewer on a
two-core machine that also runs a Spark master, three workers, a JobManager and three TaskManagers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from support import resume_and_match

from helpers import broker, cluster, engine_clusters, engine_rest, faults, processes, topics
from helpers.config import PROJECT_ROOT, load
from helpers.engine_clusters import EngineProcess
from helpers.engine_rest import get_json
from helpers.errors import CourseError
from helpers.producer import WordProducer
from helpers.wait import wait_until

pytestmark = [pytest.mark.jvm, pytest.mark.cluster]


@pytest.fixture
def elsewhere(tmp_path):
    """Settings for a cluster of this test's own: its own data folder, and ports with a taken one.

    The socket it yields listens where that cluster's Spark master would: ``cluster_port`` + 300.
    The ports sit below the system's ephemeral range (32768 and up on Linux): there an outgoing
    connection's local port can land on the master's UI (+301) and fail the test for nothing.
    """
    from helpers.config import load

    for base in range(21000, 32000, 500):
        master = base + engine_clusters.SPARK_OFFSET
        neighbours = (master + 1, master + 11, base + engine_clusters.FLINK_OFFSET)
        if not all(processes.port_is_free("127.0.0.1", p) for p in neighbours):
            continue
        taken = socket.socket()
        try:
            taken.bind(("127.0.0.1", master))
        except OSError:
            taken.close()
            continue
        taken.listen()
        break
    else:
        pytest.fail("no free block of ports between 21000 and 32000 for a test cluster")
    yield replace(load(), data_dir=tmp_path, cluster_port=base), taken
    taken.close()


def test_a_taken_port_is_named_in_one_line_and_nothing_is_started(elsewhere):
    settings, taken = elsewhere
    port = taken.getsockname()[1]
    with pytest.raises(CourseError) as error:
        cluster.start(0, settings=settings, spark_workers=1)
    message = str(error.value)
    assert f"Port {port} (Spark master) is taken" in message and "--port" in message
    assert "\n" not in message
    assert cluster.status(settings)["processes"] == []


def test_a_part_that_dies_at_start_shows_its_log_and_leaves_nothing(elsewhere, monkeypatch):
    """Spark JVMs that refuse their heap: the dead one named with its log's reason, nothing left behind."""
    settings, taken = elsewhere
    taken.close()  # this time the master's port is free; the JVM itself will refuse to start
    monkeypatch.setenv("SPARK_DAEMON_MEMORY", "1k")  # spark-class's -Xmx for a Master and a Worker
    with pytest.raises(CourseError) as error:
        cluster.start(0, settings=settings, spark_workers=1)
    message = str(error.value)
    # Both JVMs refuse the heap; whichever is seen dead first is named, with its own log.
    named = re.search(r"The (spark-master 0|spark-worker 1) exited at start; log (\S+):", message)
    assert named, message
    expected_log = (
        "cluster-spark-master.log" if "master" in named[1] else "cluster-spark-worker-1.log"
    )
    assert named[2].endswith(expected_log) and "heap" in message.lower(), message
    assert "\n" not in message
    master = f"--port {settings.cluster_port + engine_clusters.SPARK_OFFSET}"
    wait_until(lambda: not processes_running(master), 30, "the Spark master to be stopped")
    assert cluster.status(settings)["processes"] == []
    assert processes.port_is_free("127.0.0.1", settings.cluster_port + engine_clusters.SPARK_OFFSET)


def test_engines_started_to_stop_at_exit_die_with_a_killed_owner(elsewhere):
    """A notebook kernel killed -9 runs no atexit: its Spark master and worker must go with it."""
    settings, taken = elsewhere
    taken.close()
    script = (
        "import json, sys; from dataclasses import replace; from pathlib import Path;"
        "from helpers import cluster; from helpers.config import load;"
        f"s = replace(load(), data_dir=Path({str(settings.data_dir)!r}), "
        f"cluster_port={settings.cluster_port});"
        "print(json.dumps(cluster.start(0, settings=s, spark_workers=1, stop_at_exit=True)),"
        " flush=True); sys.stdin.read()"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        started = json.loads(owner.stdout.readline())
        engines = [EngineProcess(**{k: v for k, v in p.items() if k != "alive"})
                   for p in started["processes"]]  # fmt: skip
        assert [e.role for e in engines if e.alive] == ["spark-master", "spark-worker"]
    finally:
        owner.kill()  # SIGKILL: no atexit, no cluster stop
        owner.wait(10)
    wait_until(
        lambda: not any(e.alive for e in engines), 60, "the Spark JVMs to die with their owner"
    )
    assert processes.port_is_free("127.0.0.1", settings.cluster_port + engine_clusters.SPARK_OFFSET)


def processes_running(fragment: str) -> list[int]:
    """Pids of live processes whose command line contains ``fragment``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if fragment in command and entry.name.isdigit() and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def full_cluster():
    settings = load()
    started = cluster.start(
        1, settings=settings, stop_at_exit=True, spark_workers=2, flink_taskmanagers=2
    )
    yield started
    stopped = cluster.stop(settings)
    assert stopped["running"] is False
    for node in started["nodes"]:
        assert not broker.alive(node["pid"])
    for process in started["processes"]:  # nothing of its process group runs (a zombie does not)
        assert not processes.group_alive(process["pid"]), process
    ports = [n["port"] for n in started["nodes"]] + [p["port"] for p in started["processes"]]
    for port in filter(None, ports):
        assert processes.port_is_free("127.0.0.1", port), f"port {port} is still bound"


def test_status_gives_every_address_and_process(full_cluster):
    status = full_cluster
    assert status["healthy"] and status["spark_master"].startswith("spark://127.0.0.1:")
    host, port = status["flink_rest"].split(":")
    assert host == "localhost" and get_json(f"http://{host}:{port}/overview")["taskmanagers"] == 2
    roles = sorted(p["role"] for p in status["processes"])
    assert roles == ["flink-jobmanager", *["flink-taskmanager"] * 2, "spark-master",
                     *["spark-worker"] * 2]  # fmt: skip
    spark = get_json(status["web_uis"]["spark-master"] + "/json/")
    assert spark["aliveworkers"] == 2
    # Spark's master and workers want the cluster's secret (an app without it is refused), kept in a
    # file only this user reads and never on a command line
    settings = load()
    secret = engine_clusters._spark_secret_file(settings)
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text()) == 64
    for process in status["processes"]:
        if process["role"].startswith("spark"):
            command = Path(f"/proc/{process['pid']}/cmdline").read_bytes().decode()
            assert "-Dspark.authenticate=true" in command and secret.read_text() not in command
    master = engine_clusters.spark_master_url(settings)
    assert engine_clusters.spark_authentication(settings, master)["spark.authenticate"] == "true"
    assert engine_clusters.spark_authentication(settings, "local[2]") == {}


def cluster_env(status: dict) -> dict:
    """The three variables that point the course's code at the clusters."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": status["bootstrap_servers"],
        "SPARK_MASTER": status["spark_master"],
        "FLINK_REST_ADDRESS": status["flink_rest"],
    }


def run_demo_watching(status: dict, *options: str) -> tuple[dict, int, int]:
    """Run ``demo --json`` on the clusters; its result, and the widest Flink job and most Spark cores
    seen through the engines' own REST APIs while it ran."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "helpers", "demo", "--rate", "300", "--json", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cluster_env(status),
    )  # fmt: skip
    rest = f"http://{status['flink_rest']}"
    spark_ui = status["web_uis"]["spark-master"] + "/json/"
    flink_parallelism, spark_cores = 0, 0
    secret = engine_clusters._spark_secret_file(load(), status["spark_master"]).read_text()
    on_a_command_line: set[int] = set()  # the driver's JVM above all: pyspark's spark-submit
    deadline = time.monotonic() + 700
    while demo.poll() is None and time.monotonic() < deadline:
        on_a_command_line |= set(processes_running(secret))
        for job in (get_json(f"{rest}/jobs/overview") or {}).get("jobs", []):
            if job["state"] == "RUNNING":
                detail = get_json(f"{rest}/jobs/{job['jid']}") or {}
                for vertex in detail.get("vertices", []):
                    flink_parallelism = max(flink_parallelism, vertex["parallelism"])
        for app in (get_json(spark_ui) or {}).get("activeapps", []):
            spark_cores = max(spark_cores, app["cores"])
        time.sleep(2)
    out, err = demo.communicate(timeout=60)
    assert out.strip(), f"demo printed no result; its stderr ends: {err[-3000:]}"
    assert not on_a_command_line, f"the Spark secret is on the command line of {on_a_command_line}"
    result = json.loads(out.strip().splitlines()[-1])
    assert "error" not in result, (result["error"], err[-2000:])
    return result, flink_parallelism, spark_cores


@pytest.mark.timeout(600)
def test_the_demo_on_the_clusters_counts_exactly_spread_over_workers_and_slots(full_cluster):
    """The demo on the clusters: Flink 2 wide on the TaskManagers, one executor core per worker.

    Scaling out while words flow (partitions, a worker, a TaskManager, a wider Flink job) is chapter
    09's, checked by its own cells under nbmake: one scale-out per suite, for each costs minutes.
    """
    result, flink_parallelism, spark_cores = run_demo_watching(
        full_cluster, "--duration", "10", "--partitions", "4"
    )
    assert result["match"], {e: r["match"] for e, r in result["engines"].items()}
    assert set(result["engines"]) == {"kafka", "spark", "flink"}
    assert sum(result["ledger"].values()) > 1500
    assert flink_parallelism == 2  # seen through Flink's REST API: the job ran on both TaskManagers
    assert spark_cores == 2  # Spark's master gave the application both workers' cores
    print("demo timings (s):", result["timings_s"])
    status = cluster.status()
    assert status["healthy"] and len(status["processes"]) == 1 + 2 + 1 + 2


def flink_checkpoints(rest: str, job_id: str) -> int:
    return ((get_json(f"{rest}/jobs/{job_id}/checkpoints") or {}).get("counts") or {}).get(
        "completed", 0
    )


@pytest.mark.timeout(900)
def test_a_killed_taskmanager_and_a_killed_client_lose_nothing_on_the_session_cluster(
    full_cluster,
):
    """The job restarts by itself from a checkpoint; a new client takes the orphaned job over."""
    status = cluster.status()
    settings = cluster.client_settings()
    rest, env = f"http://{status['flink_rest']}", cluster_env(status)
    topic = topics.fresh_topic("failover", partitions=4, settings=settings)
    group = f"failover-{int(time.time())}"
    consume = [sys.executable, "-m", "helpers", "consume", "--engine", "flink", "--topic", topic,
               "--group", group]  # fmt: skip
    client = subprocess.Popen(
        consume, cwd=PROJECT_ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    producer = WordProducer(topic=topic, rate=300, duration=400, seed=9, settings=settings).start()
    try:
        named = f"course-flink-{group}"
        (job,) = wait_until(
            lambda: engine_rest.flink_jobs_named(status["flink_rest"], named), 300, "the job"
        )
        wait_until(lambda: flink_checkpoints(rest, job) >= 2, 120, "two checkpoints", every=1.0)
        said = faults.kill_taskmanager()
        assert "killed TaskManager" in said
        done = flink_checkpoints(rest, job)
        # the job fails over to the slots left and checkpoints again, with no client involved
        wait_until(
            lambda: flink_checkpoints(rest, job) > done,
            240,
            "a checkpoint after the kill",
            every=1.0,
        )
        os.killpg(client.pid, signal.SIGKILL)  # the client dies; its job runs on
        client.wait(10)
        time.sleep(4)
        assert engine_rest.flink_jobs_named(status["flink_rest"], f"course-flink-{group}")
    finally:
        stats = producer.stop()
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
    assert stats.failed == 0 and stats.acked > 3000
    resume_and_match(consume, stats, env=env)
    # the orphaned job was stopped with a savepoint, and the new one ended with its client
    assert engine_rest.flink_jobs_named(status["flink_rest"], f"course-flink-{group}") == []
    assert any((settings.data_dir / "checkpoints" / f"flink-{group}" / "savepoints").iterdir())
