"""Peak memory of a chapter's workload: every process involved (broker, this Python, Spark, Flink, workers).

A classroom container (public Binder) has about 2 GB; this measures what the course really takes.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from helpers import broker
from helpers.config import Settings, load

LABELS = (  # (a piece of the command line, what the process is); the first match names it
    ("kafka.Kafka", "kafka broker"),
    ("pyspark.daemon", "spark python workers"),
    ("SparkSubmit", "spark jvm"),
    ("PythonGatewayServer", "flink jvm"),
    ("pyflink", "flink python"),
)
WORKLOADS = {
    "03": ["kafka"],  # chapters 00-03 and 07: the broker, the producer, plain consumers
    "04": ["spark"],
    "05": ["flink"],
    "06": ["kafka", "spark", "flink"],
}


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> set[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in tree:
            tree.add(current)
            todo += _children(current)
    return tree


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Samples the total RSS of some process trees every ``every`` seconds; keeps the peak."""

    def __init__(self, roots: list[int], every: float = 0.25) -> None:
        self.roots = roots
        self.every = every
        self.peak = 0
        self.peak_by_process: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> int:
        """Total RSS now (and remember the peak)."""
        pids = set().union(*(process_tree(root) for root in self.roots))
        sizes = {pid: rss_bytes(pid) for pid in pids}
        total = sum(sizes.values())
        if total > self.peak:
            self.peak, self.peak_by_process = total, sizes
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def _name(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words if w)
    for marker, label in LABELS:
        if marker in text:
            return label
    return Path(words[0].decode(errors="replace")).name if words and words[0] else "?"


def measure(chapter: str, duration: float = 20.0, rate: float = 200.0,
            settings: Settings | None = None) -> dict:  # fmt: skip
    """Run the chapter's workload (the demo with its engines) and report the peak total memory."""
    from helpers.demo import run_demo

    settings = settings or load()
    if chapter not in WORKLOADS:
        raise ValueError(f"chapter must be one of {', '.join(WORKLOADS)}")
    status = broker.ensure_running(settings)
    roots = [os.getpid()] + ([status.pid] if status.pid else [])
    with PeakMemory(roots) as memory:
        result, info = run_demo(duration=duration, rate=rate, engines=WORKLOADS[chapter],
                                settings=settings, show_progress=False)  # fmt: skip
    by_kind: dict[str, int] = {}
    for pid, size in memory.peak_by_process.items():
        by_kind[_name(pid)] = by_kind.get(_name(pid), 0) + size
    mib = 1024 * 1024
    return {
        "chapter": chapter,
        "engines": WORKLOADS[chapter],
        "peak_total_mib": round(memory.peak / mib),
        "peak_by_process_mib": {k: round(v / mib) for k, v in sorted(by_kind.items())},
        "match": result.match,
        "broker_counted": bool(status.pid),
    }
