"""The course's child processes: start one logged, know if it lives, wait for it, stop it, free its port.

The broker, the KRaft cluster, the Spark and Flink clusters, the faults and ``CounterProcess`` all start
JVMs or Python children that must never outlive the course: each starts in its own session (a Ctrl-C
in a notebook does not kill it mid-write; its whole group can be signalled), can die with its parent,
and is stopped with a grace period before SIGKILL. This module is the one place that knows how.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from helpers.errors import CourseError
from helpers.wait import wait_until

LOG_LIMIT = 50 * 1024 * 1024  # bytes: a longer log becomes <log>.1 (the one before is dropped)


def _rotate(log: Path) -> None:
    """Keep a log that each start appends to from growing forever (a test broker's reached 300 MB)."""
    with contextlib.suppress(FileNotFoundError):  # no log yet
        if log.stat().st_size > LOG_LIMIT:
            os.replace(log, log.with_name(log.name + ".1"))


def start_logged(
    command: list[str],
    log: Path,
    env: dict | None = None,
    owned: bool = False,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``command`` in its own session, its output appended to ``log`` after a start line.

    ``owned``: it gets SIGTERM when this process dies (a notebook kernel, a test session), so it does
    not outlive it. ``env`` adds variables to this process's own.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    _rotate(log)
    with log.open("ab") as out:
        out.write(f"\n=== start {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
        out.flush()
        return subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent if owned else None,
        )


def die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started it dies (Linux), so none is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# --- alive or not -------------------------------------------------------------------------------------


def proc_status(pid: int) -> bytes:
    """``/proc/<pid>/status``, or nothing when the process is gone (or this is not Linux)."""
    try:
        return Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return b""


def alive(pid: int, running: str | None = None) -> bool:
    """True while ``pid`` runs and is not a zombie; with ``running``, only if its command line holds it.

    ``running`` guards against a recycled pid: a pid file's broker is ``kafka.Kafka``, not whatever
    process got its number since.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists():  # not Linux: the signal said it lives
        return True
    status = proc_status(pid)
    if not status or b"State:\tZ" in status:
        return False
    if running is None:
        return True
    text = cmdline.read_bytes()  # empty while the process exits: it still holds its ports
    return not text or running.encode() in text


def group_alive(pgid: int) -> bool:
    """True while the process group ``pgid`` has a live member: one that is not a zombie.

    The leader may be a zombie while a child of it (a JVM a script started) still runs; and a zombie
    whose parent never collects it holds no port or memory, so it does not count.
    """
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return any(state != "Z" for state in _group_states(pgid))


def _group_states(pgid: int) -> list[str]:
    """The states (R, S, Z, ...) of the processes in group ``pgid``, from /proc/<pid>/stat."""
    states = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after the name, which may hold spaces
        if len(fields) > 2 and int(fields[2]) == pgid:  # state, ppid, pgrp, ...
            states.append(fields[0])
    return states


def reap(pids: Iterable[int]) -> None:
    """Collect the exit of our own children among ``pids``: no zombie is left."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child, or already collected
            pass


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (binding it would succeed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


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


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, picked by the system (for a short-lived helper)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# --- why it died --------------------------------------------------------------------------------------


def last_lines(path: Path, count: int = 5) -> str:
    """The last lines of a log joined on one line: what an error message shows of why a JVM died.

    A Java stack trace ends in frames (``at …``, ``... 5 more``) that say nothing to a learner; they
    are left out, so the exception and its causes are what show.
    """
    try:
        with path.open(errors="replace") as handle:
            said = (line.strip() for line in handle)
            return " | ".join(deque((line for line in said if line and not _frame(line)), count))
    except OSError:
        return "(no log)"


def _frame(line: str) -> bool:
    """A stack trace's frame or elision line."""
    return line.startswith("at ") or (line.startswith("... ") and line.endswith(" more"))


class Started:
    """A process being waited for: what it is (for the error), whether it lives, where it logs."""

    def __init__(self, what: str, is_alive: Callable[[], bool], log: Path | str) -> None:
        self.what, self.is_alive, self.log = what, is_alive, Path(log)

    def died(self) -> str | None:
        """The one-line error when it has died, else None."""
        if self.is_alive():
            return None
        return f"The {self.what} exited at start; log {self.log}: {last_lines(self.log)}"


def wait_ready(ready: Callable[[], object], started: list[Started], timeout: float,
               every: float = 0.3) -> bool:  # fmt: skip
    """Wait until ``ready()``: True then, False when time ran out (the caller says what is missing).

    A started process that dies meanwhile fails it at once, with the end of its log.
    """

    def first_death() -> str | None:
        return next((why for process in started if (why := process.died())), None)

    return bool(
        wait_until(ready, timeout, "", every=every, fail_if=first_death, on_timeout="return")
    )


# --- stopping -----------------------------------------------------------------------------------------


def terminate(pid: int, grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaps the process when it is our child."""
    try:
        os.kill(pid, signal.SIGTERM)  # a JVM's shutdown hooks close its files cleanly
    except ProcessLookupError:
        return

    def gone() -> bool:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it, leave no zombie
            return bool(finished)
        except ChildProcessError:  # started by another process (the CLI): watch it go
            return not alive(pid)

    if not wait_until(gone, grace, "", every=0.1, on_timeout="return"):
        kill(pid)


def stop_groups(pgids: list[int], grace: float = 20.0) -> None:
    """SIGTERM every process group at once, then SIGKILL what is left after ``grace`` seconds."""
    for pgid in pgids:
        signal_group(pgid, signal.SIGTERM)

    def all_gone() -> bool:
        reap(pgids)
        return not any(group_alive(pgid) for pgid in pgids)

    if wait_until(all_gone, grace, "", on_timeout="return"):
        return
    for pgid in pgids:
        signal_group(pgid, signal.SIGKILL)
    wait_until(all_gone, 5, "", every=0.05, on_timeout="return")  # SIGKILL takes a moment too


def signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to a whole process group, if it is still there."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill(pid: int) -> None:
    """SIGKILL one process, if it is still there."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_hard(pid: int, what: str, group: bool = False, running: str | None = None) -> None:
    """SIGKILL, as a power cut would (no shutdown hook runs); wait until it is gone, and reap it."""
    if group:
        signal_group(pid, signal.SIGKILL)
        wait_until(lambda: not group_alive(pid), 30, f"the {what} to go")
    else:
        kill(pid)
        wait_until(lambda: not alive(pid, running), 30, f"the {what} to go")
    reap([pid])


def require_free_port(port: int, what: str, host: str = "127.0.0.1", hint: str = "") -> None:
    """A one-line error naming the port and what needs it, when something already listens there."""
    if not port_is_free(host, port):
        raise CourseError(f"Port {port} ({what}) is taken; stop what uses it{hint}.")
