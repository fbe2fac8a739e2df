"""The ways in besides the embedded broker: docker compose, the Dockerfile, conda, Binder.

There is no Docker engine here: compose is validated statically (Debian's docker-compose checks the file
against the Compose specification without a daemon); the Dockerfile's steps that need no Docker run here.
"""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from support import require_tool

from helpers import config
from helpers.__main__ import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_file_follows_the_compose_specification():
    compose = require_tool("docker-compose")
    result = subprocess.run([compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_services_and_pinned_images():
    assert {"kafka", "kafka-ui", "lab", "producer", "consumer-kafka", "consumer-spark",
            "consumer-flink", "flink-jobmanager", "flink-taskmanager"} <= set(SERVICES)  # fmt: skip
    for name, service in SERVICES.items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    from helpers.jars import KAFKA_VERSION

    assert SERVICES["kafka"]["image"].endswith(":" + KAFKA_VERSION)


def test_compose_clusters_use_the_settings_of_cluster_start():
    from helpers import engine_clusters as ec

    jobmanager = SERVICES["flink-jobmanager"]["command"][-1]
    taskmanager = SERVICES["flink-taskmanager"]["command"][-1]
    assert f"jobmanager.memory.process.size={ec.FLINK_JOBMANAGER_MEMORY}" in jobmanager
    assert "parallelism.default=2" in jobmanager
    assert f"taskmanager.numberOfTaskSlots={ec.FLINK_SLOTS}" in taskmanager
    assert f"taskmanager.memory.process.size={ec.FLINK_TASKMANAGER_MEMORY}" in taskmanager
    worker = SERVICES["spark-worker"]["command"][-1]
    assert f"--cores 1 --memory {ec.SPARK_WORKER_MEMORY}" in worker
    assert "deploy.master.Master" in SERVICES["spark-master"]["command"][-1]
    assert SERVICES["consumer-spark"]["environment"]["SPARK_MASTER"] == "spark://spark-master:7077"
    assert (
        SERVICES["consumer-spark"]["environment"]["COURSE_ENGINE_UI"] == "1"
    )  # its UI is published
    assert SERVICES["consumer-flink"]["environment"]["FLINK_REST_ADDRESS"].endswith(":8081")
    beats = f"-D heartbeat.interval={ec.FLINK_HEARTBEAT['interval']} -D heartbeat.timeout="
    assert beats + str(ec.FLINK_HEARTBEAT["timeout"]) in jobmanager
    assert beats + str(ec.FLINK_HEARTBEAT["timeout"]) in taskmanager


def test_every_process_of_a_job_shares_the_checkpoint_folder():
    """Executors and TaskManagers write state where drivers and clients read it: one volume."""
    shared = "checkpoints:/course/.course/checkpoints"
    for name in ("consumer-spark", "spark-worker", "consumer-flink", "flink-jobmanager",
                 "flink-taskmanager"):  # fmt: skip
        assert shared in SERVICES[name].get("volumes", []), name
    assert "checkpoints" in COMPOSE["volumes"]


def test_kraft_listeners_work_inside_and_from_the_host():
    env = SERVICES["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller" and "ZOOKEEPER" not in str(env)
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    assert "//kafka:9092" in advertised and "//localhost:29092" in advertised
    assert "127.0.0.1:29092:29092" in SERVICES["kafka"]["ports"]


def test_ports_health_checks_and_healthy_dependencies():
    published = [p.split(":") for s in SERVICES.values() for p in s.get("ports", [])]
    assert all(
        len(p) == 3 and p[0] == "127.0.0.1" for p in published
    )  # on the host's loopback only
    ports = {p[1] for p in published}
    assert {"8888", "8080", "4040", "8081", "29092"} <= ports  # lab, Kafka UI, Spark UI, Flink UI
    assert SERVICES["lab"]["environment"]["COURSE_BIND_ADDRESS"] == "0.0.0.0"  # in its container
    for name in ("kafka", "kafka-ui", "lab", "flink-jobmanager"):
        assert "test" in SERVICES[name]["healthcheck"], name
    for name in ("lab", "producer", "consumer-kafka", "consumer-spark", "kafka-ui"):
        assert SERVICES[name]["depends_on"]["kafka"]["condition"] == "service_healthy", name


def test_roles_of_the_one_image_match_the_cli():
    goals = {s["environment"]["EXAMPLE_GOAL"] for s in SERVICES.values()
             if "EXAMPLE_GOAL" in s.get("environment", {})}  # fmt: skip
    assert goals == set(config.GOALS)
    images = {s["image"] for n, s in SERVICES.items() if n not in ("kafka", "kafka-ui")}
    assert len(images) == 1  # one image, many roles
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["python", "-m", "helpers", "run"]' in dockerfile
    assert build_parser().parse_args(["run"]).command == "run"


@pytest.mark.jvm
def test_dockerfile_steps_that_need_no_docker(tmp_path):
    """FROM is pinned; its apt packages exist in Debian 12 (the base image's release); its pip step
    resolves against the lock in a fresh venv; its jars step fetches into an empty folder.
    Not checked here: the image build itself (no Docker engine)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.M).group(1)
    assert re.search(r":\d+\.\d+\.\d+-slim-bookworm$", base), base
    packages = (
        re.search(r"install -y --no-install-recommends ([^\\&]+)", dockerfile).group(1).split()
    )
    for package in packages:
        shown = subprocess.run(["apt-cache", "show", package], capture_output=True, timeout=60)
        assert shown.returncode == 0, f"{package} is not a Debian package here"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    resolved = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--dry-run", "--quiet", "-c",
         str(ROOT / "requirements.lock"), "-e", str(ROOT)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr[-2000:]
    env = {**os.environ, "COURSE_JARS_DIR": str(tmp_path / "jars")}
    fetched = subprocess.run([sys.executable, "-m", "helpers", "jars", "fetch", "--json"],
                             capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert json.loads(fetched.stdout)["downloaded"] == json.loads(fetched.stdout)["jars"]


def _pins(lines):
    return dict(line.split("#")[0].strip().split("==") for line in lines if "==" in line)


def test_environment_yml_agrees_with_the_pip_pins():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    assert _pins(pip_section) == wanted
    python = next(d for d in environment["dependencies"] if str(d).startswith("python="))
    supported = project["requires-python"]  # ">=3.11,<3.13"
    assert python in ("python=3.11", "python=3.12") and supported == ">=3.11,<3.13"
    assert any(str(d).startswith("openjdk=17") for d in environment["dependencies"])


def test_binder_files_are_executable_and_in_step():
    for name in ("postBuild", "start"):
        assert os.access(ROOT / "binder" / name, os.X_OK), name
    assert "openjdk-17" in (ROOT / "binder" / "apt.txt").read_text()
    assert "requirements.lock" in (ROOT / "binder" / "postBuild").read_text()
    assert 'exec "$@"' in (ROOT / "binder" / "start").read_text()
