"""Small shared steps of the engine tests."""

import math

from helpers.producer import WordProducer


def produce(topic, **options):
    """Send with a WordProducer until it ends by itself (count, duration or lines); its final stats."""
    options.setdefault("rate", math.inf)
    producer = WordProducer(topic=topic, **options).start()
    producer.wait(120)
    return producer.stop()


def merged(*ledgers):
    """Ledgers added up, word by word."""
    total = {}
    for ledger in ledgers:
        for word, count in ledger.items():
            total[word] = total.get(word, 0) + count
    return total
