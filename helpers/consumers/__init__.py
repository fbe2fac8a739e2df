"""Word counters: one interface (``base``), three engines (``kafka``, ``spark``, ``flink``)."""

from helpers.consumers.base import Bound, Snapshot, WordCounter, stop_all

__all__ = ["Bound", "Snapshot", "WordCounter", "stop_all"]
