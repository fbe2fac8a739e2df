"""The engines' own clusters on loopback: three Kafka nodes, Spark standalone, a Flink session cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import broker, cluster

pytestmark = pytest.mark.slow


def get_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="module")
def full_cluster():
    from helpers.config import load

    settings = load()
    started = cluster.start(
        3, settings=settings, stop_at_exit=True, spark_workers=2, flink_taskmanagers=2
    )
    yield started
    stopped = cluster.stop(settings)
    assert stopped["running"] is False
    for node in started["nodes"]:
        assert not broker._alive(node["pid"])
    for process in started["processes"]:
        with pytest.raises(ProcessLookupError):
            os.killpg(process["pid"], 0)  # nothing of its process group is left
    ports = [n["port"] for n in started["nodes"]] + [p["port"] for p in started["processes"]]
    for port in filter(None, ports):
        assert broker._port_is_free("127.0.0.1", port), f"port {port} is still bound"


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


@pytest.mark.timeout(900)
def test_the_demo_on_the_clusters_matches_the_ledger_with_flink_at_parallelism_2(full_cluster):
    status = full_cluster
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": status["bootstrap_servers"],
        "SPARK_MASTER": status["spark_master"],
        "FLINK_REST_ADDRESS": status["flink_rest"],
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "helpers", "demo", "--duration", "30", "--rate", "300",
         "--partitions", "4", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    rest = f"http://{status['flink_rest']}"
    spark_ui = status["web_uis"]["spark-master"] + "/json/"
    flink_parallelism, spark_cores = 0, 0
    deadline = time.monotonic() + 600
    while demo.poll() is None and time.monotonic() < deadline:
        for job in (get_json(f"{rest}/jobs/overview") or {}).get("jobs", []):
            if job["state"] == "RUNNING":
                detail = get_json(f"{rest}/jobs/{job['jid']}") or {}
                for vertex in detail.get("vertices", []):
                    flink_parallelism = max(flink_parallelism, vertex["parallelism"])
        for app in (get_json(spark_ui) or {}).get("activeapps", []):
            spark_cores = max(spark_cores, app["cores"])
        time.sleep(2)
    out, _ = demo.communicate(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["match"], {e: r["match"] for e, r in result["engines"].items()}
    assert set(result["engines"]) == {"kafka", "spark", "flink"}
    assert sum(result["ledger"].values()) > 3000
    assert flink_parallelism == 2  # the job ran on the session cluster's TaskManagers, 2 wide
    assert spark_cores == 2  # one executor core on each worker
