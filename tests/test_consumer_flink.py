import dataclasses
import time

import pytest
from support import merged, produce

from helpers.consumers import Bound
from helpers.consumers.flink import FlinkWordCounter
from helpers.errors import CourseError
from helpers.producer import WordProducer

pytestmark = pytest.mark.slow


def test_stop_mid_stream_with_a_savepoint_and_resume_exactly(settings, topic):
    producer = WordProducer(topic=topic, rate=400, seed=9).start()
    first = FlinkWordCounter(topic=topic).start()
    try:
        deadline = time.monotonic() + 90
        while first.snapshot().records < 300 and time.monotonic() < deadline:
            time.sleep(0.2)
        stopped = first.stop(savepoint=True)  # stop the job while words keep arriving
    finally:
        sent_during = producer.stop()
    assert first.savepoint_path and stopped.records >= 300
    after = produce(topic, count=500, seed=10)  # written while no job runs
    resumed = FlinkWordCounter(topic=topic, group=first.group, savepoint=first.savepoint_path)
    snapshot = resumed.run(Bound(until_idle=1.0), timeout=240)
    assert snapshot.error is None
    assert snapshot.counts == merged(sent_during.ledger, after.ledger)
    assert snapshot.records == sent_during.acked + after.acked


def test_missing_connector_is_one_line(settings, topic, tmp_path):
    empty = dataclasses.replace(settings, jars_dir=tmp_path / "none")
    with pytest.raises(CourseError, match="jars fetch"):
        FlinkWordCounter(topic=topic, settings=empty).start()


def test_unreachable_broker_is_one_line(settings, topic):
    away = dataclasses.replace(settings, bootstrap_servers="localhost:1")
    with pytest.raises(CourseError, match="localhost:1"):
        FlinkWordCounter(topic=topic, settings=away).start()
