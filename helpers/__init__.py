"""The course's logic: broker, topics, producer, the three word counters, live views, checks."""

import logging

# kafka-python warns when its I/O loop is slow (a busy 2-core laptop): noise under a live chart.
logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
