import time

from helpers import topics
from helpers.groups import ConsumerGroup
from helpers.producer import ProducerFleet


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
    return condition()


def test_a_group_shares_partitions_rebalances_and_counts_exactly(settings):
    topic = topics.fresh_topic("test-group", partitions=3, settings=settings)
    group = ConsumerGroup(topic, settings=settings)
    try:
        group.add()
        group.add()
        assert wait_until(lambda: sum(len(r["partitions"]) for r in group.table()) == 3)
        fleet = ProducerFleet(3, rate=150, topic=topic, settings=settings).start()
        time.sleep(1.5)
        group.add()  # a rebalance: three members, one partition each
        assert wait_until(lambda: sorted(len(r["partitions"]) for r in group.table()) == [1, 1, 1])
        group.add()  # one member more than partitions: it sits idle
        assert wait_until(lambda: [r["state"] for r in group.table()].count("idle") == 1)
        group.remove()
        time.sleep(1.0)
        stats = fleet.stop()
        assert stats.acked > 300 and len(fleet.members) == 3
        assert wait_until(lambda: group.counts == stats.ledger)
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
