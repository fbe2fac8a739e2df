import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import topics
from helpers.demo import parse_engines
from helpers.errors import CourseError
from helpers.processes import free_port


def test_parse_engines():
    assert parse_engines("kafka, flink") == ["kafka", "flink"]
    with pytest.raises(CourseError, match="storm"):
        parse_engines("kafka,storm")


@pytest.mark.jvm
def test_demo_json_with_mixed_text_matches_for_all_three_engines(mixed_file):
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "demo", "--input", str(mixed_file), "--json"],
        capture_output=True, text=True, timeout=600, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["match"] is True
    assert set(data["engines"]) == {"kafka", "spark", "flink"}
    assert data["ledger"]["café"] == 3 and data["ledger"]["москва"] == 2
    assert all(e["match"] and e["counts"] == data["ledger"] for e in data["engines"].values())


def role(goal, settings, topic):
    env = {**os.environ, "EXAMPLE_GOAL": goal, "EXAMPLE_KAFKA_TOPIC": topic,
           "EXAMPLE_PRODUCER_INTERVAL": "20"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "helpers", "run"], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_run_roles_producer_and_kafka_consumer_log_like_the_seed(settings, topic):
    consumer = role("consumer.kafka", settings, topic)
    time.sleep(3)
    producer = role("producer", settings, topic)
    time.sleep(7)
    for process in (producer, consumer):
        process.send_signal(signal.SIGTERM)
    out_producer, _ = producer.communicate(timeout=60)
    out_consumer, _ = consumer.communicate(timeout=60)
    assert producer.returncode == 0 and consumer.returncode == 0, out_producer + out_consumer
    assert "Sent " in out_producer and f"to topic {topic}" in out_producer
    assert "(one," in out_consumer or "(two," in out_consumer
    assert topics.describe_topic(topic, settings)["messages"] > 100  # 50 words/s for seconds


def test_demo_with_no_broker_running_starts_one_and_leaves_none(settings, tmp_path):
    """A fresh clone's make demo: the embedded broker starts for it and stops with it."""
    from helpers import broker

    port, controller = free_port(), free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{port}",
           "KAFKA_CONTROLLER_PORT": str(controller), "COURSE_DATA_DIR": str(tmp_path / "data"),
           "COURSE_JARS_DIR": str(settings.jars_dir)}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "helpers", "demo", "--engines", "kafka", "--duration", "2", "--json"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["match"] is True
    assert broker.probe("localhost", port) == "nothing"  # stopped with the demo
