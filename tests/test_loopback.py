"""Nothing the course opens listens on the network: a live Spark and Flink count, their sockets read."""

import os
import urllib.request

import pytest
from support import listening_sockets

from helpers import topics
from helpers.consumers.flink import FlinkWordCounter
from helpers.consumers.spark import SparkWordCounter
from helpers.producer import WordProducer

pytestmark = pytest.mark.jvm

LOOPBACK = ("127.", "::1")


def test_spark_and_flink_counting_listen_on_loopback_only_and_their_uis_open(settings, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)  # links to localhost here
    topic = topics.fresh_topic("loopback", settings=settings)
    producer = WordProducer(topic=topic, rate=200, seed=5).start()
    spark = SparkWordCounter(topic=topic).start()
    flink = FlinkWordCounter(topic=topic).start()
    try:
        assert spark.wait_for(records=100, timeout=120).records >= 100
        assert flink.wait_for(records=100, timeout=120).records >= 100
        sockets = listening_sockets(os.getpid())
        ports = {port for _, port, _ in sockets}
        spark_ui, flink_ui = spark.ui_url, flink.web_ui_url
        assert spark_ui and flink_ui, f"a UI did not answer: Spark {spark_ui}, Flink {flink_ui}"
        assert spark_ui.startswith("http://localhost:") and flink_ui.startswith("http://localhost:")
        for link in (spark_ui, flink_ui.split("#")[0]):
            with urllib.request.urlopen(link, timeout=10) as answer:
                assert answer.status == 200
    finally:
        producer.stop()
        for counter in (spark, flink):
            counter.stop()
    assert (
        len(sockets) >= 4
    )  # the UIs, Spark's driver RPC and block manager, Flink's servers at least
    exposed = [s for s in sockets if not s[0].startswith(LOOPBACK)]
    assert not exposed, f"listening beyond this machine: {exposed}"
    assert int(spark_ui.split(":")[2].split("/")[0]) in ports  # the link is the port that listens
