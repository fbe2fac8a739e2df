"""A three-node KRaft cluster from the locked jars: start, status, stop, and a leader killed mid-stream."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from support import cli, counts_when_settled

from helpers import broker, cluster, faults, processes, topics
from helpers.consumers import Bound
from helpers.consumers.kafka import KafkaWordCounter
from helpers.producer import WordProducer
from helpers.wait import wait_until

pytestmark = [pytest.mark.jvm, pytest.mark.cluster]


@pytest.fixture(scope="module")
def three_nodes():
    """A cluster of three nodes for this module, stopped at its end (no JVM or port left behind)."""
    from helpers.config import load

    settings = load()
    started = cluster.start(3, settings=settings, stop_at_exit=True)
    yield settings
    stopped = cluster.stop(settings)
    assert stopped["running"] is False
    for node in started["nodes"]:
        assert processes.port_is_free("127.0.0.1", node["port"])
        assert processes.port_is_free("127.0.0.1", node["controller_port"])


def test_status_lists_every_node_and_the_bootstrap_servers(three_nodes):
    status = json.loads(cli("cluster", "status", "--json").stdout)
    assert status["healthy"] is True
    assert [(n["id"], n["role"], n["alive"]) for n in status["nodes"]] == [
        (i, "broker,controller", True) for i in (1, 2, 3)
    ]
    assert all(isinstance(n["pid"], int) for n in status["nodes"])
    ports = [n["port"] for n in status["nodes"]]
    assert status["bootstrap_servers"] == ",".join(f"localhost:{p}" for p in ports)
    assert all(broker.probe("localhost", port) == "kafka" for port in ports)
    # a second start finds it running and starts nothing
    again = json.loads(cli("cluster", "start", "--json").stdout)
    assert again["started_here"] is False and [n["pid"] for n in again["nodes"]] == [
        n["pid"] for n in status["nodes"]
    ]


def test_topics_on_the_cluster_default_to_three_copies_two_in_sync(three_nodes):
    client = cluster.client_settings(three_nodes)
    name = f"test-rf-{uuid.uuid4().hex[:8]}"
    created = topics.create_topic(name, partitions=2, settings=client)
    try:
        assert created["replication"] == 3
        config = topics.topic_config(name, ["min.insync.replicas"], client)
        assert config == {"min.insync.replicas": "2"}
    finally:
        topics.delete_topic(name, client)


def test_killing_partition_0s_leader_mid_stream_loses_nothing_acknowledged(three_nodes):
    """25 s at 1,000 words/s with acks=all; the leader of partition 0 is killed at 8 s."""
    client = cluster.client_settings(three_nodes)
    topic = f"test-leader-{uuid.uuid4().hex[:8]}"
    topics.create_topic(topic, partitions=3, settings=client)
    counter = KafkaWordCounter(topic=topic, settings=client).start()
    producer = WordProducer(rate=1000, topic=topic, duration=25, settings=client)
    leader = cluster.leader_of(topic, 0, three_nodes)
    try:
        producer.start()
        time.sleep(8)
        report = faults.kill_node(leader, three_nodes)
        assert f"killed cluster node {leader}" in report and f"{topic}/0" in report
        assert producer.wait(90), "the producer did not finish within 90 s of its 25 s"
        stats = producer.stop()
        assert stats.sent == stats.acked + stats.failed, stats
        assert stats.acked > 15_000, stats  # it went on sending through the leader change
        assert cluster.leader_of(topic, 0, three_nodes) != leader
        counts = counts_when_settled([counter], stats.ledger, timeout=120)
        assert counts[counter.label] == stats.ledger, counter.snapshot().error
        # the killed node comes back on its data and catches up: three in-sync copies again
        assert "is back" in faults.restart_node(leader, three_nodes)

        def rows() -> list[dict]:
            return topics.describe_topic(topic, client)["partitions"]

        in_sync = wait_until(lambda: all(len(row["isr"]) == 3 for row in rows()), 90, "", 1.0,
                             on_timeout="return")  # fmt: skip
        assert in_sync, rows()
    finally:
        producer.stop()
        counter.stop()
        if not cluster.node_by_id(leader, three_nodes).alive:
            cluster.start_node(leader, three_nodes)
        topics.delete_topic(topic, client)


def test_a_bounded_count_on_the_cluster_through_the_environment(three_nodes):
    """The CLI's producer and counter reach the cluster through KAFKA_BOOTSTRAP_SERVERS alone."""
    servers = cluster.status(three_nodes)["bootstrap_servers"]
    env = {"KAFKA_BOOTSTRAP_SERVERS": servers}
    topic = f"test-env-{uuid.uuid4().hex[:8]}"
    produced = json.loads(
        cli(
            "produce", "--topic", topic, "--count", "300", "--rate", "1000", "--json", env=env
        ).stdout
    )
    counted = KafkaWordCounter(topic=topic, settings=cluster.client_settings(three_nodes)).run(
        Bound(until_idle=2.0), timeout=90
    )
    assert produced["acked"] == 300 and counted.counts == produced["ledger"]
    topics.delete_topic(topic, cluster.client_settings(three_nodes))
