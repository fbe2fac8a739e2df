import time

from helpers import topics
from helpers.groups import ConsumerGroup
from helpers.producer import ProducerFleet
from helpers.wait import wait_until


def settles(condition, timeout: float = 30.0) -> bool:
    """True once ``condition()`` holds, False after ``timeout`` s: the assert says what is wrong."""
    return bool(wait_until(condition, timeout, "", on_timeout="return"))


def _off_by(group: ConsumerGroup, ledger: dict[str, int]) -> dict:
    """What a failed match shows: each word's count minus the ledger's, and the members' table."""
    counts = group.counts
    off = {w: counts.get(w, 0) - n for w, n in ledger.items() if counts.get(w, 0) != n}
    in_topic = sum(topics.latest_offsets(group.topic, group.settings).values())
    read = sum(row["records"] for row in group.table())
    return {"counted minus ledger": off, "records read": read, "records in the topic": in_topic,
            "members": group.table()}  # fmt: skip


def test_a_group_shares_partitions_rebalances_and_counts_exactly(settings):
    topic = topics.fresh_topic("test-group", partitions=3, settings=settings)
    group = ConsumerGroup(topic, settings=settings)
    try:
        group.add()
        group.add()
        assert settles(lambda: sum(len(r["partitions"]) for r in group.table()) == 3)
        fleet = ProducerFleet(3, rate=150, topic=topic, settings=settings).start()
        time.sleep(1.5)
        group.add()  # a rebalance: three members, one partition each
        assert settles(lambda: sorted(len(r["partitions"]) for r in group.table()) == [1, 1, 1])
        group.add()  # one member more than partitions: it sits idle
        assert settles(lambda: [r["state"] for r in group.table()].count("idle") == 1)
        group.remove()
        time.sleep(1.0)
        stats = fleet.stop()
        assert stats.acked > 300 and len(fleet.members) == 3
        assert settles(lambda: group.counts == stats.ledger), _off_by(group, stats.ledger)
    finally:
        group.stop()
        topics.delete_topic(topic, settings)


def test_fleet_rate_applies_to_every_member(settings, topic):
    fleet = ProducerFleet(2, rate=0, topic=topic, settings=settings).start()
    try:
        fleet.rate = 50
        assert [m.rate for m in fleet.members] == [50, 50]
        time.sleep(2.5)
        achieved = fleet.stats().achieved_rate
    finally:
        stats = fleet.stop()
    assert 70 < achieved < 130
    assert sum(stats.ledger.values()) == stats.acked


def test_a_cooperative_group_moves_only_the_partition_the_new_member_needs(settings):
    """CooperativeStickyAssignor (chapter 07's On your own): the members keep what they can."""
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

    topic = topics.fresh_topic("test-coop", partitions=4, settings=settings)
    group = ConsumerGroup(topic, settings=settings, assignors=[CooperativeStickyAssignor])
    try:
        group.add()
        group.add()
        before = {row["member"]: set(row["partitions"]) for row in group.wait_settled()}
        fleet = ProducerFleet(2, rate=150, topic=topic, settings=settings).start()
        time.sleep(1.0)
        group.add()
        assert settles(lambda: sorted(len(r["partitions"]) for r in group.table()) == [1, 1, 2])
        after = {row["member"]: set(row["partitions"]) for row in group.wait_settled()}
        kept = sum(len(before[m] & after[m]) for m in before)
        assert kept == 3, (before, after)  # 4 partitions, 3 stayed where they were, 1 moved
        # a cooperative rebalance has a second round: wait it out before reading what the group chose
        with topics.admin(settings) as client:

            def stable() -> dict | None:
                described = client.describe_groups([group.group])[group.group]
                return described if described["group_state"] == "Stable" else None

            described = wait_until(stable, 30, f"group {group.group} to be Stable on the broker")
        assert described["protocol_data"] == "cooperative-sticky", described  # what the group chose
        stats = fleet.stop()
        assert settles(lambda: group.counts == stats.ledger), _off_by(group, stats.ledger)
    finally:
        group.stop()
        topics.delete_topic(topic, settings)
