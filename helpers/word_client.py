"""The Kafka client the producer is built on: kafka-python's producer, with a bulk send.

Kept apart from :mod:`helpers.producer` because it reaches into kafka-python's internals (the record
accumulator's batches and locks, the sender thread): a kafka-python upgrade touches this file only, and
``WordClient`` falls back to the public ``send()`` when those internals are not there.
"""

# ruff: noqa: SLF001 — this module is where the course uses kafka-python's private accumulator and sender

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaProducer, TopicPartition
from kafka import errors as kafka_errors
from kafka.future import Future
from kafka.partitioner.default import DefaultPartitioner
from kafka.producer.producer_batch import ProducerBatch
from kafka.record.memory_records import MemoryRecordsBuilder


class KeyedPartitioner(DefaultPartitioner):
    """Kafka's default key hash — skipped when a topic has one partition, where it decides nothing.

    kafka-python's murmur2 is pure Python, about a fifth of a send's cost. ``only`` keeps the
    records to those partitions (the others stay silent: an idle partition, on purpose).
    """

    def __init__(self, only: Sequence[int] | None = None) -> None:
        self.only = tuple(only) if only else None

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):  # noqa: D102
        partitions = cluster.partitions_for_topic(topic)
        if self.only:
            return self.only[0] if len(self.only) == 1 else self.only[hash(key) % len(self.only)]
        if partitions is not None and len(partitions) == 1:
            return next(iter(partitions))
        return super().partition(topic, key, serialized_key, value, serialized_value, cluster)


class WordClient(KafkaProducer):
    """kafka-python's producer with a bulk send for the one shape of record the course sends.

    ``send()`` checks headers, serializers, transactions and sizes, formats a debug line and makes a
    future for every record: most of a send's cost here. ``send_bulk`` puts many small records with
    bytes keys and values straight into the accumulator's batches, as ``send()`` would, under one
    lock per partition, and returns one future per batch it wrote into (a batch is acknowledged or
    fails as a whole). Anything else, or a kafka-python without these internals, takes ``send()``.
    """

    def __init__(self, **configs) -> None:
        super().__init__(**configs)
        # a record below half the largest batch the broker takes fits any batch with room to spare:
        # bigger ones take send(), whose size check fails them one by one with a clear error
        self.small = min(64 * 1024, configs["max_request_size"] // 2)
        self._tps: dict[tuple[str, int], TopicPartition] = {}  # made once per partition
        accumulator = self._accumulator
        self._bulk = all(  # the internals send_bulk relies on, else it takes send()
            hasattr(accumulator, name) for name in ("_tp_lock", "_batches", "_incomplete", "config")
        )

    def send_bulk(
        self, topic: str, keys: list[bytes], values: list[bytes], timestamps: Sequence[int]
    ) -> list[Chunk]:
        """Queue records stamped ``timestamps`` (ms); returns which batch (future) holds which of them."""
        partitions = self._metadata.partitions_for_topic(topic)
        small = all(len(value) < self.small for value in values)
        if partitions is None or self._closed or not self._bulk or not small:
            return [
                Chunk(self._send_one(topic, key, value, timestamps[position]), (position,))
                for position, (key, value) in enumerate(zip(keys, values, strict=True))
            ]
        partitioner = self.config["partitioner"]
        single = getattr(partitioner, "only", None) or partitions
        if len(single) == 1:  # the key hash decides nothing
            by_partition = {next(iter(single)): range(len(values))}
        else:
            by_partition: dict[int, list[int]] = {}
            for index, (key, value) in enumerate(zip(keys, values, strict=True)):
                partition = partitioner.partition(topic, key, key, value, value, self._metadata)
                by_partition.setdefault(partition, []).append(index)
        chunks: list[Chunk] = []
        for partition, indexes in by_partition.items():
            tp = self._tps.get((topic, partition)) or self._tps.setdefault(
                (topic, partition), TopicPartition(topic, partition)
            )
            chunks += self._append(tp, indexes, keys, values, timestamps)
        return chunks

    def fail_unsent(self) -> None:
        """Fail every batch not sent yet (IllegalStateError): what a flush that timed out leaves."""
        sender = self._sender
        if sender is not None and sender.is_alive():
            sender.force_close()
            sender.join(10)

    def _send_one(self, topic: str, key: bytes, value: bytes, timestamp: int) -> Future:
        """``send()``, a record refused before sending (too large) turned into a failed future.

        So it fails alone, and the records around it go on.
        """
        try:
            return self.send(topic, value=value, key=key, timestamp_ms=timestamp)
        except (kafka_errors.MessageSizeTooLargeError, kafka_errors.KafkaTimeoutError) as error:
            return Future().failure(error)

    def _append(self, tp: TopicPartition, indexes, keys, values, timestamps) -> list[Chunk]:
        """Append records to ``tp``'s open batch, opening new ones as batches fill."""
        accumulator = self._accumulator
        config = accumulator.config
        now = time.monotonic()
        chunks: list[Chunk] = []
        wake = False
        with accumulator._tp_lock(tp):
            if accumulator._closed:
                raise kafka_errors.IllegalStateError("the producer is closed")
            batches = accumulator._batches[tp]
            batch = batches[-1] if batches else None
            builder = batch.records if batch is not None else None
            chunk_start = None
            for position, index in enumerate(indexes):
                metadata = None
                if builder is not None:
                    metadata = builder.append(timestamps[index], keys[index], values[index], [])
                if metadata is None:  # no open batch, or it is full: close the chunk, open one
                    if chunk_start is not None:
                        chunks.append(self._chunk(batch, indexes, chunk_start, position))
                    builder = MemoryRecordsBuilder(
                        config["message_version"], config["compression_attrs"], config["batch_size"]
                    )
                    batch = ProducerBatch(tp, builder, now=now)
                    batches.append(batch)
                    accumulator._incomplete.add(batch)
                    metadata = builder.append(timestamps[index], keys[index], values[index], [])
                    wake = True
                    chunk_start = None
                if chunk_start is None:
                    chunk_start = (position, metadata.offset)
                batch.max_record_size = max(batch.max_record_size, metadata.size)
            if chunk_start is not None:
                batch.last_append = now
                chunks.append(self._chunk(batch, indexes, chunk_start, len(indexes)))
            wake = wake or len(batches) > 1 or builder.is_full()
        if wake:
            self._sender.wakeup()
        return chunks

    @staticmethod
    def _chunk(batch: ProducerBatch, indexes, start: tuple[int, int], end: int) -> Chunk:
        position, index = start
        return Chunk(batch.produce_future, indexes[position:end], index)


@dataclass(frozen=True)
class Chunk:
    """Records of one send (their ``positions`` in it) that travel in one batch, acked or failed together.

    ``future`` is their batch's future (``index``: where they start inside the batch), or one record's
    future from ``send()`` (``index`` None).
    """

    future: Future
    positions: Sequence[int]
    index: int | None = None

    def error(self) -> str | None:
        """None once acknowledged; else the name of the error (ask only when ``future.is_done``)."""
        if not self.future.succeeded():
            return type(self.future.exception).__name__
        if self.index is None:  # a record's own future
            return None
        record_errors = self.future.value[2]  # kafka-python completes a failed batch this way
        return None if record_errors is None else type(record_errors(self.index)).__name__


def uuid_keys(n: int) -> list[bytes]:
    """``n`` random version-4 UUIDs as keys, made in one go (``uuid.uuid4()`` costs 10 µs each)."""
    raw = bytearray(os.urandom(16 * n))
    raw[6::16] = bytes((byte & 0x0F) | 0x40 for byte in raw[6::16])  # version 4
    raw[8::16] = bytes((byte & 0x3F) | 0x80 for byte in raw[8::16])  # RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}".encode()
        for i in range(0, 32 * n, 32)
    ]
