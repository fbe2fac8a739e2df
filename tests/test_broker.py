import dataclasses
import json
import os
import socket
import threading
import time

import pytest
from support import cli

from helpers import broker, environment, jars, processes
from helpers.errors import CourseError


def test_session_broker_is_up_and_ours(settings):
    status = broker.status(settings)
    assert status.running
    assert status.bootstrap_servers == settings.bootstrap_servers
    assert broker.probe(*settings.first_server) == "kafka"
    assert status.kafka_version == jars.KAFKA_VERSION  # read from the running process, not the pin
    kafka_row = next(row for row in environment.report(settings) if row["what"] == "Kafka broker")
    assert kafka_row["found"].endswith(f"Kafka {jars.KAFKA_VERSION}")  # what chapter 00 shows


def test_start_twice_reuses_the_running_broker(settings):
    first = json.loads(cli("broker", "start", "--json").stdout)
    second = json.loads(cli("broker", "start", "--json").stdout)
    assert first["running"] and second["running"]
    assert second["started_here"] is False
    assert first["pid"] == second["pid"]


def test_unreachable_configured_address_is_named_within_seconds():
    started = time.monotonic()
    result = cli("broker", "start", "--json", env={"KAFKA_BOOTSTRAP_SERVERS": "kafka.invalid:9092"})
    assert result.returncode != 0
    assert "kafka.invalid:9092" in json.loads(result.stdout)["error"]
    assert time.monotonic() - started < 30


@pytest.fixture
def not_kafka():
    """Something that is not Kafka listening on a port: it answers every connection with HTTP."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield port
    server.close()


def test_a_port_taken_by_something_else_is_reported(settings, not_kafka):
    other = dataclasses.replace(settings, bootstrap_servers=f"localhost:{not_kafka}")
    with pytest.raises(CourseError, match="not Kafka"):
        broker.ensure_running(other)


def test_missing_jars_are_reported_before_starting(settings, tmp_path):
    port = processes.free_port()
    other = dataclasses.replace(
        settings,
        bootstrap_servers=f"localhost:{port}",
        controller_port=processes.free_port(),
        data_dir=tmp_path / "data",
        jars_dir=tmp_path / "no-jars",
    )
    with pytest.raises(CourseError, match="jars fetch"):
        broker.ensure_running(other)


def test_a_broker_that_dies_at_start_shows_its_last_log_lines(settings, tmp_path):
    other = dataclasses.replace(
        settings,
        bootstrap_servers=f"localhost:{processes.free_port()}",
        controller_port=processes.free_port(),
        data_dir=tmp_path / "data",
        broker_heap="-Xmx1k",  # far too small: the JVM refuses to start
    )
    with pytest.raises(CourseError) as error:
        broker.ensure_running(other)
    message = str(error.value)
    assert "Formatting" in message or "exited at start" in message
    assert "heap" in message.lower()


def test_a_second_broker_starts_and_stops_leaving_nothing_behind(settings, tmp_path):
    port, cport = processes.free_port(), processes.free_port()
    other = dataclasses.replace(
        settings,
        bootstrap_servers=f"localhost:{port}",
        controller_port=cport,
        data_dir=tmp_path / "data",
    )
    started = broker.ensure_running(other)
    assert started.started_here and started.embedded and started.pid
    assert broker.status(other).running
    assert "Kafka Server started" in (tmp_path / "data" / "logs" / f"broker-{port}.log").read_text()
    stopped = broker.stop(other)
    assert not stopped.running
    assert broker.probe("localhost", port) == "nothing"
    assert processes.port_is_free("127.0.0.1", port) and processes.port_is_free("127.0.0.1", cport)
    with pytest.raises(ProcessLookupError):
        os.kill(started.pid, 0)
