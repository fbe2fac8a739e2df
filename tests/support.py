"""Small shared steps of the engine tests."""

import ipaddress
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from helpers import processes
from helpers.config import PROJECT_ROOT
from helpers.producer import WordProducer
from helpers.wait import wait_until


def produce(topic, **options):
    """Send with a WordProducer until it ends by itself (count, duration or lines); its final stats."""
    return produced(topic, **options).stats()


def produced(topic, **options) -> WordProducer:
    """The WordProducer, stopped once it ended by itself: its stats, and its event-time windows."""
    options.setdefault("rate", math.inf)
    producer = WordProducer(topic=topic, **options).start()
    producer.wait(120)
    producer.stop()
    return producer


def counts_when_settled(
    counters, ledger: dict[str, int], timeout: float
) -> dict[str, dict[str, int]]:
    """Wait until every counter shows ``ledger`` (or ``timeout`` s pass); each one's counts by label."""
    wait_until(lambda: all(c.snapshot().counts == ledger for c in counters), timeout, "",
               every=0.25, on_timeout="return")  # fmt: skip
    return {c.label: c.snapshot().counts for c in counters}


def merged(*ledgers):
    """Ledgers added up, word by word."""
    total = {}
    for ledger in ledgers:
        for word, count in ledger.items():
            total[word] = total.get(word, 0) + count
    return total


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH. Missing: a failure on CI (.ci/run must install it),
    a skip on a laptop that lacks it."""
    import os
    import shutil

    import pytest

    for name in names:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail(f"{names[0]} is missing on CI: .ci/run must install it")
    pytest.skip(f"{names[0]} is not installed (apt-get install {names[0]})")


def cli(*args, env=None) -> subprocess.CompletedProcess:
    """``python -m helpers ARGS`` in a child process, with ``env`` added to this one's environment."""
    return subprocess.run(
        [sys.executable, "-m", "helpers", *args],
        capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})},
    )  # fmt: skip


def resume_and_match(consume: list[str], stats, env=None, timeout: float = 300) -> dict:
    """Run ``consume`` (a ``python -m helpers consume`` command) on its group again until idle; assert
    that it ends with the producer's ledger exactly, no record missing or counted twice."""
    resumed = subprocess.run(
        [*consume, "--until-idle", "3", "--json"], capture_output=True, text=True,
        timeout=timeout, env=env, cwd=PROJECT_ROOT,
    )  # fmt: skip
    result = json.loads(resumed.stdout)
    assert result.get("error") is None, result["error"]
    assert result["counts"] == stats.ledger
    assert result["records"] == stats.acked
    return result


def kill_mid_stream(counter: subprocess.Popen, producer, ready: Callable[[], bool], timeout: float,
                    what: str):  # fmt: skip
    """Once ``ready()``, SIGKILL the counter's process group while ``producer`` still sends; the stats.

    Words are counted for 2 s after ``ready`` (they must not count twice) and keep coming for 3 s with
    no counter running (they must not be lost).
    """

    def alive_and_ready() -> bool:
        assert counter.poll() is None, "the counter died by itself"
        return ready()

    try:
        wait_until(alive_and_ready, timeout, what)
        time.sleep(2)
        os.killpg(counter.pid, signal.SIGKILL)  # the counter and its JVM, no chance to clean up
        counter.wait(10)
        assert producer.running, "the producer ended before the kill: nothing was mid-stream"
        time.sleep(3)
    finally:
        stats = producer.stop()
        if counter.poll() is None:
            os.killpg(counter.pid, signal.SIGKILL)
    return stats


def _address(hex_address: str) -> str:
    """/proc/net/tcp's address (hex, in 32-bit little-endian words) as text: 127.0.0.1, ::1 ..."""
    words = [bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, len(hex_address), 8)]
    address = ipaddress.ip_address(b"".join(words))
    return str(getattr(address, "ipv4_mapped", None) or address)


def _fd_links(pid: int) -> list[str]:
    """Where each open descriptor of ``pid`` points; one closing while read is skipped, not the pid."""

    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []  # the process has ended
    links = []
    for descriptor in descriptors:
        try:
            links.append(os.readlink(descriptor))
        except OSError:
            continue  # closed between the listing and the read: a busy JVM does this all the time
    return links


def listening_sockets(root: int) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket listening in ``root``'s process tree."""

    listening = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                listening[fields[9]] = (_address(address), int(port, 16))
    found = []
    for pid in processes.process_tree(root):
        for link in _fd_links(pid):
            inode = link[len("socket:[") : -1] if link.startswith("socket:[") else None
            if inode in listening:
                found.append((*listening[inode], pid))
    return sorted(found)


# --- what a chapter shows: checked on nbmake's run, or on a browser test's saved notebook ------------

QUIET_CHAPTERS = {"04_count_with_spark", "05_count_with_flink", "06_count_three_ways_at_once"}
NOISE = re.compile(
    r"\bWARN(ING)?\b"  # a log level, Java's or Python's
    r"|\b(INFO|ERROR|DEBUG)\s+[\w.$]+:"  # a JVM log line: level, logger, message
    r"|^\s+at [\w.$]+\(|Traceback \(most recent call last\)|Exception in thread"  # stack traces
    r"|SLF4J|log4j",
    re.MULTILINE,
)


# A thread that died with a trace, or the live view's one line for a failure in its threads
FAILED_THREAD = re.compile(r"Exception in thread.*|live view error: .*")


def shown(cell: dict) -> str:
    """Everything a cell's outputs put in front of a learner."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for kind, value in output.get("data", {}).items():
            if kind.startswith("text/"):
                parts.append("".join(value))
        parts += output.get("traceback", [])
    return "\n".join(parts)


def noisy_cells(cells: list[dict]) -> dict[int, str]:
    """Cells whose outputs show a log line, a warning or a stack trace: {index: the match, in context}.

    The context (the match and what follows it) is what a failing CI run needs to find the cause.
    """
    return {
        index: text[match.start() : match.start() + 1500]
        for index, cell in enumerate(cells)
        if (text := shown(cell)) and (match := NOISE.search(text))
    }


def check_what_a_chapter_shows(chapter: str, cells: list[dict]) -> None:
    """No cell raised, no background thread failed, and a quiet chapter shows no log line or trace.

    A thread's failure does not stop a cell, so running every cell is not enough: its outputs are
    read for the trace of a dead thread or the live view's one-line failure.
    """
    raised = {i: o.get("ename") for i, cell in enumerate(cells) for o in cell.get("outputs", [])
              if o.get("output_type") == "error"}  # fmt: skip
    assert raised == {}, f"cells that raised (cell: exception): {raised}"
    failed = {i: FAILED_THREAD.search(shown(cell)).group(0) for i, cell in enumerate(cells)
              if FAILED_THREAD.search(shown(cell))}  # fmt: skip
    assert failed == {}, f"a background thread failed (cell: line): {failed}"
    if chapter in QUIET_CHAPTERS:
        noisy = noisy_cells(cells)
        assert noisy == {}, f"cells printing noise (cell: first match, in context): {noisy}"
        assert any(shown(cell) for cell in cells)  # it did show something
