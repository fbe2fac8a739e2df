"""Peak memory of a chapter's workload: every process involved (JupyterLab, broker, Python, Spark, Flink).

A classroom container (public Binder) has about 2 GB; this measures what the course really takes: a
JupyterLab server runs beside the workload, and this Python process stands in for the notebook's kernel.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers import broker, processes
from helpers.config import Settings, load
from helpers.wait import wait_until

LABELS = (  # (a piece of the command line, what the process is); the first match names it
    ("kafka.Kafka", "kafka broker"),
    ("pyspark.daemon", "spark python workers"),
    ("SparkSubmit", "spark jvm"),
    ("PythonGatewayServer", "flink jvm"),
    ("pyflink", "flink python"),
    ("jupyterlab", "jupyterlab server"),
)
WORKLOADS = {
    "03": ["kafka"],  # chapters 00-03 and 07: the broker, the producer, plain consumers
    "04": ["spark"],
    "05": ["flink"],
    "06": ["kafka", "spark", "flink"],
}


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
        self.names: dict[
            int, str
        ] = {}  # named while alive: a process gone by the end has no cmdline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def sample(self) -> int:
        """Total RSS now (and remember the peak)."""
        pids = set().union(*(processes.process_tree(root) for root in self.roots))
        sizes = {pid: rss_bytes(pid) for pid in pids}
        for pid in pids - self.names.keys():
            self.names[pid] = _name(pid)
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


@contextmanager
def _jupyterlab_server(timeout: float = 60.0) -> Iterator[subprocess.Popen]:
    """A JupyterLab server on a free port, as ``make lab`` starts it, answering before we measure."""
    from helpers.lab import lab_command

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*lab_command(port, open_browser=False), "--ServerApp.token=footprint"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{port}/api"), timeout, "JupyterLab to answer"
        )
        yield server
    finally:
        server.terminate()
        server.wait(30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def measure(chapter: str, duration: float = 20.0, rate: float = 200.0,
            settings: Settings | None = None) -> dict:  # fmt: skip
    """Run the chapter's workload (the demo with its engines) and report the peak total memory."""
    from helpers.demo import run_demo

    settings = settings or load()
    if chapter not in WORKLOADS:
        raise ValueError(f"chapter must be one of {', '.join(WORKLOADS)}")
    status = broker.ensure_running(settings)
    roots = [os.getpid()] + ([status.pid] if status.pid else [])
    with _jupyterlab_server() as lab, PeakMemory([*roots, lab.pid]) as memory:
        result, info = run_demo(duration=duration, rate=rate, engines=WORKLOADS[chapter],
                                settings=settings, show_progress=False)  # fmt: skip
    by_kind: dict[str, int] = {}
    for pid, size in memory.peak_by_process.items():
        name = memory.names.get(pid, "?")
        by_kind[name] = by_kind.get(name, 0) + size
    mib = 1024 * 1024
    return {
        "chapter": chapter,
        "engines": WORKLOADS[chapter],
        "peak_total_mib": round(memory.peak / mib),
        "peak_by_process_mib": {k: round(v / mib) for k, v in sorted(by_kind.items())},
        "match": result.match,
        "engines_match": {name: row["match"] for name, row in result.as_json()["engines"].items()},
        "broker_counted": bool(status.pid),
    }
