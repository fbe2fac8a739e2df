"""Keep the JVMs' console output out of notebooks: what Spark's and Flink's JVMs print goes to a log file.

pyspark and pyflink start their JVM as a child of this process, and the child inherits its standard output
and error. In a notebook those are the kernel's, so every JVM warning would land in a cell in red. While a
JVM is launched inside :func:`jvm_output_to`, both are pointed at a log file instead, for good; this
process's own output is back to normal as soon as the launch is done. Real errors still reach the learner,
as the one-line CourseError the counters raise.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.config import Settings

_REDIRECTING = threading.RLock()  # the process's descriptors 1 and 2 are one resource


def log_path(settings: Settings, name: str) -> Path:
    """Where the JVM called ``name`` (spark, flink) writes its console output."""
    return settings.logs_dir / f"{name}.log"


@contextmanager
def jvm_output_to(path: Path) -> Iterator[Path]:
    """Point file descriptors 1 and 2 at ``path`` while a JVM starts, then restore them.

    One thread at a time: two engines starting at once (one in the background) would otherwise
    each restore what the other had pointed the descriptors at.
    """
    with _REDIRECTING:
        yield from _redirected(path)


def _redirected(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    saved = [os.dup(1), os.dup(2)]
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log, 1)
        os.dup2(log, 2)
        yield path
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log):
            os.close(fd)
