"""Topics and consumer groups: create, describe, delete, lag — what Kafka Manager showed in the seed.

Every function returns plain dicts and lists, so a notebook can show them as a table and the CLI can
print them as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaAdminClient, OffsetSpec, TopicPartition
from kafka import errors as kafka_errors
from kafka.admin import ConfigResource, ConfigResourceType

from helpers.config import Settings, load
from helpers.errors import CourseError, no_broker
from helpers.wait import wait_until

RETRIABLE = (
    kafka_errors.CoordinatorNotAvailableError,
    kafka_errors.NotCoordinatorError,
    kafka_errors.CoordinatorLoadInProgressError,
    kafka_errors.LeaderNotAvailableError,
    kafka_errors.UnknownTopicOrPartitionError,
    kafka_errors.NotLeaderForPartitionError,
)

METADATA_SETTLES = 15.0  # seconds a new topic or partition may take to be known by every broker


@contextmanager
def admin(settings: Settings | None = None) -> Iterator[KafkaAdminClient]:
    """An admin client that fails within seconds, naming the address, when no broker answers."""
    settings = settings or load()
    try:
        client = KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers,
            client_id="course-admin",
            request_timeout_ms=15000,
            bootstrap_timeout_ms=5000,
        )
    except (kafka_errors.KafkaError, OSError) as error:
        raise no_broker(settings.bootstrap_servers, error) from None
    try:
        yield client
    finally:
        client.close()


def cluster(settings: Settings | None = None) -> dict:
    """The cluster's id, its controller and its brokers (host, port, rack)."""
    with admin(settings) as client:
        info = client.describe_cluster()
        names = client.list_topics()
    return {
        "cluster_id": info["cluster_id"],
        "controller": info["controller_id"],
        "brokers": [
            {"id": b["broker_id"], "host": b["host"], "port": b["port"], "rack": b["rack"]}
            for b in info["brokers"]
        ],
        "topics": sorted(t for t in names if not t.startswith("__")),
    }


def _check_name(name: str) -> None:
    if not name or len(name) > 249 or not all(c.isalnum() or c in "._-" for c in name):
        raise CourseError(
            f"Topic name {name!r} is not valid; use letters, digits, '.', '_' or '-' (1-249 chars)."
        )


def create_topic(
    name: str, partitions: int = 1, replication: int | None = None, settings: Settings | None = None
) -> dict:
    """Create the topic if it is missing; an existing topic is left as it is (and reported).

    ``replication`` None takes the broker's default: 1 on the embedded broker, 3 on a cluster.
    """
    _check_name(name)
    if partitions < 1 or (replication is not None and replication < 1):
        raise CourseError("Partitions and replication must be at least 1.")
    with admin(settings) as client:
        try:
            client.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": replication or -1}},
                wait_for_metadata=True,
            )
            created = True
        except kafka_errors.TopicAlreadyExistsError:
            created = False
        except kafka_errors.InvalidReplicationFactorError:
            raise CourseError(
                f"Replication {replication} needs {replication} brokers; this cluster has fewer. "
                "Use --replication 1 on the embedded broker."
            ) from None
    described = describe_topic(name, settings)
    return {
        "topic": name,
        "created": created,
        "partitions": len(described["partitions"]),
        "replication": len(described["partitions"][0]["replicas"]),
    }


def add_partitions(name: str, partitions: int, settings: Settings | None = None) -> dict:
    """Grow the topic to ``partitions`` while it is in use; Kafka can add partitions, never remove them.

    Keys hash over the new count from then on, so a key's later records may land in another partition
    than its earlier ones: order per key holds only within each partition.
    """
    before = len(describe_topic(name, settings)["partitions"])
    if partitions < before:
        raise CourseError(
            f"Topic {name} has {before} partitions; Kafka cannot remove partitions, only add them."
        )
    if partitions > before:
        with admin(settings) as client:
            client.create_partitions({name: partitions})
    return {"topic": name, "before": before, "partitions": partitions}


def _offsets(client: KafkaAdminClient, partitions: list[TopicPartition], spec: OffsetSpec) -> dict:
    """Offsets per partition; a partition just created may be unknown to some broker for a moment."""
    if not partitions:
        return {}
    answer = wait_until(
        lambda: client.list_partition_offsets({tp: spec for tp in partitions}),
        METADATA_SETTLES, "the partitions' offsets", retry=RETRIABLE,
    )  # fmt: skip
    return {tp.partition: value.offset for tp, value in answer.items()}


def describe_topic(name: str, settings: Settings | None = None) -> dict:
    """Partitions with their leader, replicas, in-sync replicas and earliest/latest offsets."""
    _check_name(name)
    with admin(settings) as client:
        (topic,) = client.describe_topics([name])
        if topic["error_code"] == kafka_errors.UnknownTopicOrPartitionError.errno:
            raise CourseError(
                f"Topic {name!r} does not exist; create it with: python -m helpers topic create {name}"
            )
        parts = sorted(topic["partitions"], key=lambda p: p["partition_index"])
        tps = [TopicPartition(name, p["partition_index"]) for p in parts]
        earliest = _offsets(client, tps, OffsetSpec.EARLIEST)
        latest = _offsets(client, tps, OffsetSpec.LATEST)
    rows = [
        {
            "partition": p["partition_index"],
            "leader": p["leader_id"],
            "replicas": p["replica_nodes"],
            "isr": p["isr_nodes"],
            "earliest": earliest[p["partition_index"]],
            "latest": latest[p["partition_index"]],
        }
        for p in parts
    ]
    return {
        "topic": name,
        "partitions": rows,
        "messages": sum(r["latest"] - r["earliest"] for r in rows),
    }


def topic_config(name: str, keys: list[str], settings: Settings | None = None) -> dict[str, str]:
    """The topic's effective values of ``keys`` (its own, else the broker's); {} if it is missing."""
    with admin(settings) as client:
        resource = ConfigResource(ConfigResourceType.TOPIC, name, keys)
        found = client.describe_configs([resource], config_filter="all")
    return {key: entry["value"] for key, entry in found["topic"].get(name, {}).items()}


def topic_exists(name: str, settings: Settings | None = None) -> bool:
    """True when the broker knows the topic."""
    with admin(settings) as client:
        return name in client.list_topics()


def delete_topic(name: str, settings: Settings | None = None, timeout: float = 30.0) -> dict:
    """Delete the topic and wait until the broker no longer lists it."""
    _check_name(name)
    with admin(settings) as client:
        try:
            client.delete_topics([name])
        except kafka_errors.UnknownTopicOrPartitionError:
            return {"topic": name, "deleted": False}
        wait_until(lambda: name not in client.list_topics(), timeout, "", every=0.1,
                   on_timeout="return")  # fmt: skip
    return {"topic": name, "deleted": True}


def delete_records_before(
    name: str, offset: int, partition: int = 0, settings: Settings | None = None
) -> None:
    """Delete a partition's records below ``offset``, as retention would: data a reader never sees."""
    with admin(settings) as client:
        client.delete_records({TopicPartition(name, partition): offset})


def latest_offsets(name: str, settings: Settings | None = None) -> dict[int, int]:
    """{partition: offset of the next record to be written}; the end a consumer catches up to."""
    return {row["partition"]: row["latest"] for row in describe_topic(name, settings)["partitions"]}


def group_lag(
    group: str, topic: str, settings: Settings | None = None, timeout: float = 15.0
) -> dict:
    """Per partition: the group's committed offset, the latest offset, and the lag between them."""
    latest = latest_offsets(topic, settings)
    with admin(settings) as client:
        try:  # the offsets topic is created on first use
            (answer,) = wait_until(  # a tuple: an answer without the group is an answer too
                lambda: (client.list_group_offsets({group: None}),), timeout, "", retry=RETRIABLE
            )
            committed = answer.get(group, {})
        except RETRIABLE:
            raise CourseError(
                f"The group coordinator did not answer within {timeout:.0f}s."
            ) from None
    rows = []
    for partition, end in sorted(latest.items()):
        meta = committed.get(TopicPartition(topic, partition))
        offset = meta.offset if meta is not None and meta.offset >= 0 else None
        rows.append(
            {
                "partition": partition,
                "committed": offset,
                "latest": end,
                "lag": end - (offset or 0),
            }
        )
    return {"group": group, "topic": topic, "partitions": rows, "lag": sum(r["lag"] for r in rows)}


def fresh_topic(prefix: str, partitions: int = 1, settings: Settings | None = None) -> str:
    """Create a new, empty topic named ``<prefix>-<time>``: a lesson's counts then start from zero."""
    name = f"{prefix}-{time.strftime('%H%M%S')}-{int(time.time() * 1000) % 1000:03d}"
    create_topic(name, partitions=partitions, settings=settings)
    return name
