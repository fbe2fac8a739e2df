"""The yardstick: the ten-line kafka-python loop a learner would write. Reads a topic to its end, counts.

Usage: python tools/bare_loop.py TOPIC  (prints the records read; the bench times the whole run)
"""

import sys
from collections import Counter

from kafka import KafkaConsumer, TopicPartition

from helpers.config import load

topic = sys.argv[1]
consumer = KafkaConsumer(bootstrap_servers=load().bootstrap_servers, enable_auto_commit=False)
partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
consumer.assign(partitions)
consumer.seek_to_beginning(*partitions)
ends = consumer.end_offsets(partitions)
counts, records = Counter(), 0
while any(consumer.position(tp) < ends[tp] for tp in partitions):
    for batch in consumer.poll(timeout_ms=500).values():
        for record in batch:
            counts.update(record.value.decode().lower().split())
            records += 1
print(records)
