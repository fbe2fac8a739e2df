import uuid

import pytest

from helpers import topics
from helpers.consumers import Bound
from helpers.consumers.kafka import KafkaWordCounter
from helpers.errors import CourseError
from helpers.producer import WordProducer


def test_create_describe_delete(settings):
    name = f"test-{uuid.uuid4().hex[:8]}"
    created = topics.create_topic(name, partitions=3, settings=settings)
    assert created == {"topic": name, "created": True, "partitions": 3, "replication": 1}
    again = topics.create_topic(name, partitions=3, settings=settings)
    assert again["created"] is False
    described = topics.describe_topic(name, settings)
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    assert all(p["leader"] == 1 and p["isr"] == [1] for p in described["partitions"])
    assert described["messages"] == 0
    assert topics.delete_topic(name, settings)["deleted"] is True
    assert not topics.topic_exists(name, settings)
    with pytest.raises(CourseError, match="does not exist"):
        topics.describe_topic(name, settings)


def test_offsets_follow_what_was_written(settings, topic):
    producer = WordProducer(rate=1000, topic=topic, count=120).start()
    producer.wait(60)
    producer.stop()
    described = topics.describe_topic(topic, settings)
    assert described["messages"] == 120
    assert described["partitions"][0]["earliest"] == 0
    assert described["partitions"][0]["latest"] == 120


def test_group_lag_drops_to_zero_once_the_group_has_read_everything(settings, topic):
    producer = WordProducer(rate=1000, topic=topic, count=50).start()
    producer.wait(60)
    producer.stop()
    group = f"lag-{uuid.uuid4().hex[:6]}"
    before = topics.group_lag(group, topic, settings)
    assert before["lag"] == 50 and before["partitions"][0]["committed"] is None
    KafkaWordCounter(topic=topic, group=group).run(Bound(until_idle=0.5), timeout=60)
    after = topics.group_lag(group, topic, settings)
    assert after["lag"] == 0 and after["partitions"][0]["committed"] == 50


@pytest.mark.parametrize("bad", ["", "has space", "x" * 250, "slash/no"])
def test_bad_topic_names_are_refused(settings, bad):
    with pytest.raises(CourseError, match="not valid"):
        topics.create_topic(bad, settings=settings)


def test_replication_beyond_the_cluster_is_explained(settings):
    with pytest.raises(CourseError, match="brokers"):
        topics.create_topic(f"test-{uuid.uuid4().hex[:8]}", replication=3, settings=settings)
