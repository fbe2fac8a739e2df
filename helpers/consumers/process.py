"""A counter in its own process, so it can crash for real: killed with SIGKILL, then started again.

A notebook kernel cannot kill its own JVM and carry on (Spark and Flink keep one gateway per Python
process), and a crash test needs a process to kill. So this counter runs ``python -m helpers consume
--engine E --group G --snapshot-file F`` in a new session and reads the snapshots the child writes
twice a second. ``kill()`` sends SIGKILL to the child's whole process group (Python and its JVM), with
no chance to clean up; a new ``CounterProcess`` on the same group then resumes from what the engine
keeps: the durable store of the plain consumer, Spark's and Flink's checkpoints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from helpers import processes
from helpers.config import PROJECT_ROOT, Settings
from helpers.consumers.base import Bound, Progress, Snapshot, WordCounter

KILLED = -signal.SIGKILL  # the return code of a process killed by SIGKILL


def write_snapshot(path: str | Path, snapshot: Snapshot) -> None:
    """The child's side (``consume --snapshot-file``): a snapshot as JSON, replaced atomically."""
    data = {**snapshot.as_json(), "lag": snapshot.lag, "partitions": snapshot.partitions}
    temporary = Path(f"{path}.tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def read_snapshot(path: Path) -> dict:
    """The parent's side: what :func:`write_snapshot` wrote last ({} before the first one)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet
        return {}


class CounterProcess(WordCounter):
    """Count with ``engine`` in a child process on consumer group ``group`` (resumable).

    ``in_memory`` (plain engine only) keeps the counts in memory, the naive contrast to the durable
    store; ``label`` names it in charts and verdicts (default: the engine).
    """

    def __init__(
        self,
        engine: str,
        topic: str | None = None,
        group: str | None = None,
        bound: Bound | None = None,
        settings: Settings | None = None,
        in_memory: bool = False,
        label: str | None = None,
    ) -> None:
        self.kind = engine
        self.engine = label or engine
        self.in_memory = in_memory
        group = group or f"course-{engine}-{uuid.uuid4().hex[:8]}"
        super().__init__(topic, group, from_beginning=False, bound=bound, settings=settings)
        self.snapshot_file = self.settings.data_dir / "processes" / f"{engine}-{self.group}.json"
        self.log = self.settings.logs_dir / f"process-{engine}-{self.group}.log"
        self.process: subprocess.Popen | None = None

    def _open(self) -> None:
        self.snapshot_file.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.snapshot_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "helpers", "consume", "--engine", self.kind,
                   "--topic", self.topic, "--group", self.group,
                   "--snapshot-file", str(self.snapshot_file)]  # fmt: skip
        if self.in_memory:
            command.append("--in-memory")
        # its own session: a kill takes the whole group, Python and its JVM
        self.process = processes.start_logged(command, self.log, cwd=PROJECT_ROOT)

    def _read(self) -> dict:
        return read_snapshot(self.snapshot_file)

    def _progress(self) -> Progress:
        data = self._read()
        ended = self.process is not None and self.process.poll() is not None
        return Progress(data.get("records", 0), caught_up=data.get("lag") == 0, ended=ended)

    def kill(self) -> str:
        """SIGKILL the child and its JVM, as a crash would; what was done, in one line."""
        if self.process is None or self.process.poll() is not None:
            return f"the {self.engine} counter was not running"
        processes.signal_group(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self._stop.set()
        self._finish(stopped=True)
        return (
            f"killed the {self.engine} counter's process group (pid {self.process.pid}) with "
            f"SIGKILL; start a new CounterProcess on group {self.group!r} to resume"
        )

    def _close(self, stopped: bool, timeout: float = 120.0) -> None:
        """Ask the child to stop (SIGTERM: it stops its engine and writes a last snapshot)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            processes.signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(30)

    def snapshot(self) -> Snapshot:
        """The child's latest snapshot (what it counted, as it wrote it)."""
        data = self._read()
        code = self.process.returncode if self.process is not None else None
        if self._error is None and code not in (None, 0, KILLED):
            self._error = f"the counter process failed (code {code}); see {self.log}"
        self._error = self._error or data.get("error")
        return self._snapshot(
            counts=data.get("counts", {}),
            records=data.get("records", 0),
            skipped=data.get("skipped_by_reason", {}),
            lag=data.get("lag"),
            partitions=data.get("partitions", []),
        )
