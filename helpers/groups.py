"""A consumer group you can grow and shrink live, to watch Kafka hand partitions around (rebalancing)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from helpers import topics
from helpers.config import Settings, load
from helpers.consumers.kafka import KafkaWordCounter
from helpers.wait import wait_until


class ConsumerGroup:
    """Plain Kafka counters sharing one group: each owns some partitions; together they read them all.

    Members start from the group's committed offsets (or the earliest offset where there is none), so a
    partition handed from one member to another is neither skipped nor read twice.
    """

    def __init__(
        self,
        topic: str,
        group: str | None = None,
        settings: Settings | None = None,
        assignors: Sequence[type] | None = None,
    ) -> None:
        self.topic = topic
        self.assignors = assignors  # e.g. [CooperativeStickyAssignor]: only what must move moves
        self.group = group or f"course-group-{uuid.uuid4().hex[:6]}"
        self.settings = settings or load()
        self.members: list[KafkaWordCounter] = []
        self.retired: list[KafkaWordCounter] = []

    def add(self) -> KafkaWordCounter:
        """A new member joins (a rebalance follows)."""
        member = KafkaWordCounter(
            topic=self.topic, group=self.group, from_beginning=False, reset="earliest",
            settings=self.settings, assignors=self.assignors,
        ).start()  # fmt: skip
        self.members.append(member)
        return member

    def remove(self) -> KafkaWordCounter | None:
        """The newest member leaves (its partitions go to the others)."""
        if not self.members:
            return None
        member = self.members.pop()
        member.stop()
        self.retired.append(member)
        return member

    def table(self) -> list[dict]:
        """One row per member: the partitions it owns now, records read, lag."""
        rows = []
        for index, member in enumerate(self.members + self.retired):
            snap = member.snapshot()
            rows.append(
                {
                    "member": index + 1,
                    "partitions": snap.partitions if snap.running else [],
                    "records": snap.records,
                    "lag": snap.lag,
                    "state": "idle" if snap.running and not snap.partitions else
                             ("reading" if snap.running else "left"),
                }
            )  # fmt: skip
        return rows

    def wait_settled(self, timeout: float = 60.0) -> list[dict]:
        """Wait until every partition has one owner and each member a fair share (rebalance over).

        A rebalance takes a few seconds, longer on a busy machine: wait for it rather than guess.
        """
        partitions = len(topics.describe_topic(self.topic, self.settings)["partitions"])

        def settled() -> list[dict] | None:
            shares = [member.snapshot().partitions for member in self.members]
            owned = sorted(p for share in shares for p in share)
            sizes = [len(share) for share in shares] or [0]
            balanced = max(sizes) - min(sizes) <= 1  # every member joined: a fair share each
            return self.table() if owned == list(range(partitions)) and balanced else None

        return wait_until(settled, timeout, f"group {self.group} to finish rebalancing")

    @property
    def counts(self) -> dict[str, int]:
        """Every member's counts added up, the ones that left included."""
        total: dict[str, int] = {}
        for member in self.members + self.retired:
            for word, count in member.snapshot().counts.items():
                total[word] = total.get(word, 0) + count
        return total

    def stop(self) -> None:
        """Every member leaves."""
        while self.members:
            self.remove()
