"""An independent client (kcat, from Debian) talks to the embedded broker: it is real Kafka."""

import subprocess

import pytest
from support import require_tool

from helpers.consumers import Bound
from helpers.consumers.kafka import KafkaWordCounter
from helpers.producer import WordProducer


@pytest.fixture
def kcat():
    return require_tool("kcat", "kafkacat")


def test_kcat_produces_and_our_consumer_counts(kcat, settings, topic):
    lines = "one two\nTwo THREE three\nthree\n"
    subprocess.run(
        [kcat, "-b", settings.bootstrap_servers, "-t", topic, "-P"],
        input=lines.encode(), check=True, timeout=60,
    )  # fmt: skip
    snapshot = KafkaWordCounter(topic=topic).run(Bound(until_idle=1.0), timeout=60)
    assert snapshot.counts == {"one": 1, "two": 2, "three": 3}
    assert snapshot.records == 3


def test_our_producer_sends_and_kcat_reads_every_message(kcat, settings, topic):
    producer = WordProducer(rate=500, topic=topic, count=200, seed=7).start()
    producer.wait(60)
    stats = producer.stop()
    assert stats.acked == 200
    out = subprocess.run(
        [kcat, "-b", settings.bootstrap_servers, "-t", topic, "-C", "-e", "-q", "-f", "%k %s\n"],
        capture_output=True, check=True, timeout=60,
    ).stdout.decode().splitlines()  # fmt: skip
    assert len(out) == 200
    words = [line.split(" ", 1)[1] for line in out]
    assert {w: words.count(w) for w in set(words)} == stats.ledger
    assert all(len(line.split(" ", 1)[0]) == 36 for line in out)  # UUID keys, as in the seed
